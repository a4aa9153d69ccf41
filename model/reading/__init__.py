"""Reading a text with a model: per-char scores and cell activations, the gates and the cell state
at each char, each char's influence on a prediction, the figures of a model's card, the cell
finder, and the memorisation index of the training text.

    from model.reading import Probe, Reading  # score.py, run by the engine between steps
    python -m model.reading.figures --model DIR --corpus FILE    # figures.json
    python -m model.reading.finder --model DIR --corpus FILE     # cells.json
    python -m model.reading.memory --model DIR --corpus FILE     # the memorisation index
"""

from model.reading.figures import FIGURES_FILE
from model.reading.gates import MAX_UNITS, GateReading
from model.reading.influence import MAX_CONTEXT, Influence, memory_span
from model.reading.memory import INDEX_FILE, MemoryIndex, index_after_training
from model.reading.score import MAX_TOP, Probe, Reading

__all__ = [
    "FIGURES_FILE",
    "INDEX_FILE",
    "MAX_CONTEXT",
    "MAX_TOP",
    "MAX_UNITS",
    "GateReading",
    "Influence",
    "MemoryIndex",
    "Probe",
    "Reading",
    "index_after_training",
    "memory_span",
]
