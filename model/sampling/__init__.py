"""Per-sequence sampling: the controls, the penalties, the draw, and the generation loop.

    from model.sampling import GenerationRequest, generate

    from model.sampling.params import SamplingParams
    for chunk in generate(stack, vocab, GenerationRequest("ROMEO:", sampling=SamplingParams(0.8))):
    ...

Imports neither TensorFlow nor FastAPI; model/engine/ drives the same loop for a batch.
"""

from model.sampling.generate import Generation, GenerationRequest, draw_seed, generate, sample_next
from model.sampling.params import SamplingParams
from model.sampling.sampler import log_softmax, top_alternatives

__all__ = [
    "Generation",
    "GenerationRequest",
    "SamplingParams",
    "draw_seed",
    "generate",
    "log_softmax",
    "sample_next",
    "top_alternatives",
]
