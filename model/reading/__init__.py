"""Reading a text with a model: per-char scores and cell activations, the cell finder, and the
memorisation index of the training text.

    from model.reading import Probe, Reading  # score.py, run by the engine between steps
    python -m model.reading.finder --model DIR --corpus FILE     # cells.json
    python -m model.reading.memory --model DIR --corpus FILE     # the memorisation index
"""

from model.reading.memory import INDEX_FILE, MemoryIndex
from model.reading.score import MAX_TOP, Probe, Reading

__all__ = ["INDEX_FILE", "MAX_TOP", "MemoryIndex", "Probe", "Reading"]
