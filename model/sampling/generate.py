"""Per-sequence sampling and stopping, pure Python/NumPy: shared by the engine, the CLI and training
samples.

A `Generation` holds one request's progress: it takes each sampled char (drawn with the
request's own `numpy.random.Generator`), applies stop strings and `max_chars`, and says
what text may be emitted now, as a `Chunk` (model/event.py).  It never touches the network,
so the batched engine (model/engine/loop.py) and the single-sequence `generate()` below drive the
same code, and a seed gives the same text either way:

    for chunk in generate(stack, vocab, GenerationRequest(prompt="ROMEO:", seed=1)):
        print(chunk.text, end="")

    ids = sample_next(gens, logits)             # the engine, after each batched step
    chunk = gens[r].accept(int(ids[r]), logits[r])   # each row: stop strings, max_chars, logprobs

The draw itself is model/sampling/sampler.py's (pure functions; penalties in
model/sampling/penalty.py).  Stop
strings: output ends before the first stop string that completes, which is never emitted;
chars that could still begin one are held back until they cannot (or until generation ends
for another reason, when they are released).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from model.event import CharLogprob, Chunk, Finished, FinishReason
from model.limits import DEFAULT_MAX_CHARS, MAX_LOGPROBS, MAX_SEED, MAX_STOP_CHARS, MAX_STOPS
from model.sampling.params import SamplingParams
from model.sampling.penalty import History
from model.sampling.sampler import log_softmax, sample_rows, top_alternatives
from model.vocab import Vocab


class Stepper(Protocol):
    """What the loop needs from a network (model/cells/stack.py's LSTMStack provides it)."""

    def prime(self, ids: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]: ...
    def step(self, ids: np.ndarray, state: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = ""
    max_chars: int = DEFAULT_MAX_CHARS
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    logprobs: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_chars, bool)
            or not isinstance(self.max_chars, int)
            or self.max_chars < 1
        ):
            raise ValueError("max_chars must be an integer ≥ 1")
        if not 0 <= self.logprobs <= MAX_LOGPROBS:
            raise ValueError(f"logprobs must be from 0 to {MAX_LOGPROBS}")
        if self.seed is not None and not 0 <= self.seed < MAX_SEED:
            raise ValueError("seed must be from 0 to 2**63 - 1")
        stop = tuple(self.stop or ())  # a list would make the request unhashable; None means none
        if len(stop) > MAX_STOPS or any(
            not isinstance(s, str) or not 1 <= len(s) <= MAX_STOP_CHARS for s in stop
        ):
            raise ValueError(f"at most {MAX_STOPS} stop strings, each 1 to {MAX_STOP_CHARS} chars")
        object.__setattr__(self, "stop", stop)


def draw_seed() -> int:
    return secrets.randbelow(MAX_SEED)


class Generation:
    """One request's sampling state: `advance(logits)` samples and accepts the next char."""

    def __init__(self, request: GenerationRequest, vocab: Vocab):
        self.request = request
        self.vocab = vocab
        self.seed = draw_seed() if request.seed is None else request.seed
        self.rng = np.random.default_rng(self.seed)
        self.sampled = 0  # chars drawn so far
        self.emitted = 0  # chars released to the client
        self.cached_chars = 0  # prompt chars whose state the engine's prefix cache supplied
        self.finish_reason: FinishReason | None = None
        self._pending = ""  # chars held back: they could still start a stop string
        self._pending_lp: list[CharLogprob] = []
        self.history: History | None = None  # what the penalties look at, when the request has any
        sampling = request.sampling
        if sampling.uses_history:
            recent = vocab.encode(request.prompt[-sampling.repetition_window :])
            self.history = History(len(vocab), sampling.repetition_window, recent.tolist())
        # Nothing to do between two chars but the draw: the engine may draw several in one
        # compiled call (model/engine/burst.py) and take them with `accept_burst`.
        self.bursts = not (
            request.stop or request.logprobs or sampling.uses_history or sampling.rewrites_logits
        )

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def prompt_chars(self) -> int:
        return len(self.request.prompt)

    def advance(self, logits: np.ndarray) -> tuple[int, Chunk]:
        """Sample the next char from `logits` (vocab,); return its id and what to emit now."""
        next_id = int(sample_next([self], np.asarray(logits)[None])[0])
        return next_id, self.accept(next_id, logits)

    def accept(self, next_id: int, logits: np.ndarray) -> Chunk:
        """Take a char sampled (by the caller, with `self.rng`) from `logits`; return what to emit
        now."""
        req = self.request
        char = self.vocab.chars[next_id]
        self.sampled += 1
        if self.history is not None:
            self.history.add(next_id)
        text = self._pending + char
        if req.logprobs:
            lp = log_softmax(logits)
            alts = [
                (self.vocab.chars[i], round(float(lp[i]), 4))
                for i in top_alternatives(lp, req.logprobs)
            ]
            self._pending_lp.append(
                CharLogprob(char=char, logprob=round(float(lp[next_id]), 4), top=alts)
            )
        if req.stop:
            hits = [i for i in (text.find(s) for s in req.stop) if i >= 0]
            if hits:
                return self._release(text, min(hits), "stop")
        if self.sampled >= req.max_chars:
            return self._release(text, len(text), "length")
        return self._release(text, len(text) - self._held_back(text), None)

    def accept_burst(self, ids: Sequence[int]) -> Chunk:
        """Take chars drawn in one burst, never past max_chars (only when `bursts`: no stop
        strings or logprobs, so the chars are released at once)."""
        assert self.bursts and self.sampled + len(ids) <= self.request.max_chars
        text = "".join([self.vocab.chars[i] for i in ids])
        self.sampled += len(ids)
        return self._release(text, len(text), "length" if self.chars_left == 0 else None)

    @property
    def chars_left(self) -> int:
        """Chars still to draw before max_chars."""
        return self.request.max_chars - self.sampled

    def _held_back(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        best = 0
        for s in self.request.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best

    def _release(self, text: str, upto: int, finish: Finished | None) -> Chunk:
        out, self._pending = text[:upto], ("" if finish else text[upto:])
        lps = None
        if self.request.logprobs:
            lps, self._pending_lp = (
                self._pending_lp[:upto],
                ([] if finish else self._pending_lp[upto:]),
            )
        self.emitted += len(out)
        self.finish_reason = finish
        return Chunk(out, lps)

    def cancel(self, reason: FinishReason = "cancelled") -> None:
        """End now; chars held back for a possible stop string are dropped."""
        if not self.done:
            self.finish_reason = reason
            self._pending, self._pending_lp = "", []


def sample_next(gens: Sequence[Generation], logits: np.ndarray) -> np.ndarray:
    """Each generation's next char id (batch,) from its row of logits (batch, vocab), drawn with
    its own params, Generator and History; rows never mix, so a batch samples as each row alone."""
    return sample_rows(
        logits, [g.request.sampling for g in gens], [g.rng for g in gens], [g.history for g in gens]
    )


def start_logits(stepper: Any) -> tuple[np.ndarray, Any]:
    """The model's start state for an empty prompt: zero state, logits of the zero output."""
    state = stepper.zero_state(1)
    return _zero_output_logits(stepper), state


def _zero_output_logits(stepper: Any) -> np.ndarray:
    """The output layer's bias: the logits of a zero state (vocab,); a kernel may pad dense_b."""
    vocab = getattr(stepper, "vocab_size", len(stepper.dense_b))
    return np.array(stepper.dense_b[:vocab], np.float32)


def prime_prompt(stepper: Any, vocab: Vocab, prompt: str) -> tuple[np.ndarray, Any]:
    """Logits after the prompt (vocab,) and the state; raises VocabError for unknown chars."""
    if not prompt:
        return start_logits(stepper)
    return stepper.prime(vocab.encode(prompt))  # in slices, with the bits of one step per char


def generate(
    stepper: Stepper,
    vocab: Vocab,
    request: GenerationRequest,
    on_start: Callable[[Generation], None] | None = None,
) -> Iterator[Chunk]:
    """Generate for one request on its own; yields non-empty chunks as they are released."""
    gen = Generation(request, vocab)
    logits, state = prime_prompt(stepper, vocab, request.prompt)
    if on_start:
        on_start(gen)
    while not gen.done:
        next_id, chunk = gen.advance(logits)
        if chunk.text:
            yield chunk
        if not gen.done:
            logits = stepper.step(np.array([next_id], np.int32), state)[0]
