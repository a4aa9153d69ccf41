"""The cell's gates and memory on any text: per char, for chosen units of one layer.

    reading = GateReading(stack, vocab, "ROMEO:\\nWhat", layer=1, units=(5, 9))
    reading.run()                     # or, on the engine thread, run_slice() until it returns True
    reading.result()                  # {"cell", "gates": ["i", "f", "g", "o"], "values": {...},
    ...}

An LSTM gives i, f, g (the candidate C̃), o, the cell state c and the output h; a GRU z, r, n (its
candidate) and h; a plain RNN only h (it has no gates).  The values come from the engine's own
kernel: the text runs through `Stack.run_layer` (the step's compiled code, the bits generation
uses) in slices of PRIME_CHUNK chars, which also hands back each char's x and recurrent product;
the cell's `gate_values` (lstm.py, gru.py) turns those into the gates with the same equations.
A char outside the vocab cannot be fed: its row is null and the state carries on past it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from model.cells import PRIME_CHUNK, Stack
from model.cells.kernel import CELLS
from model.vocab import Vocab

MAX_UNITS = 16  # units per request: 16 strips of each gate already fill a page
DIGITS = 5  # decimals kept in the JSON: far below the 1e-4 the values are checked to


def check_units(stack: Stack, layer: int, units: tuple[int, ...]) -> None:
    """ValueError naming the bad field (the API turns it into a 422)."""
    if not 0 <= layer < stack.num_layers:
        raise ValueError(f"layer: Pick a layer from 0 to {stack.num_layers - 1}.")
    if not 1 <= len(units) <= MAX_UNITS:
        raise ValueError(f"units: Pick 1 to {MAX_UNITS} cells.")
    if any(not 0 <= u < stack.units for u in units):
        raise ValueError(f"units: Pick cells (units) from 0 to {stack.units - 1}.")


class GateReading:
    """One text through layers 0..layer, recording the gates of `units` of `layer` at each char."""

    def __init__(
        self,
        stack: Stack,
        vocab: Vocab,
        text: str,
        layer: int,
        units: tuple[int, ...],
        on_done: Callable[[GateReading], None] | None = None,
    ):
        check_units(stack, layer, units)
        self.stack, self.text, self.layer, self.units = stack, text, layer, tuple(units)
        self.on_done = on_done
        lookup = {ch: i for i, ch in enumerate(vocab.chars)}
        self.ids = np.fromiter((lookup.get(ch, -1) for ch in text), np.int64, len(text))
        self.known = np.flatnonzero(self.ids >= 0)  # positions fed to the network, in order
        equations = CELLS[stack.cell]
        self.gate_names: tuple[str, ...] = equations.GATES
        self.has_c = equations.HAS_CELL_STATE
        k, t = len(units), len(text)
        self.gates = np.full((len(self.gate_names), t, k), np.nan, np.float32)
        self.c = np.full((t, k), np.nan, np.float32)
        self.h = np.full((t, k), np.nan, np.float32)
        self.state = stack.zero_state(1)
        self.done_chars = 0  # known chars read so far
        self.cancelled = False
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def run_slice(self) -> bool:
        """Read the next PRIME_CHUNK known chars; True when the whole text is read."""
        at = self.known[self.done_chars : self.done_chars + PRIME_CHUNK]
        if at.size:
            self._read(at)
            self.done_chars += at.size
        if self.done_chars < self.known.size:
            return False
        self.finished.set()
        if self.on_done is not None:
            self.on_done(self)
        return True

    def _read(self, at: np.ndarray) -> None:
        stack, units = self.stack, np.asarray(self.units, np.int64)
        ids = self.ids[at][:, None]  # (time, 1 row)
        xs, run = stack.run_layers(ids, self.state, self.layer + 1, record=True)[-1]
        # (time, columns)
        x, r = np.ascontiguousarray(xs[:, 0]), np.ascontiguousarray(run["rs"][:, 0])
        out = np.zeros((len(self.gate_names), len(at), len(units)), np.float32)
        CELLS[stack.cell].gate_values(x, r, stack.units, units, out)
        self.gates[:, at] = out
        self.h[at] = run["hs"][:, 0][:, units]
        if self.has_c:
            self.c[at] = run["cs"][:, 0][:, units]

    def run(self) -> GateReading:
        while not self.run_slice():
            pass
        return self

    def cancel(self) -> None:
        """Thread-safe: the engine drops the reading before its next slice."""
        self.cancelled = True

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.finished.set()
        if self.on_done is not None:
            self.on_done(self)

    def result(self) -> dict[str, Any]:
        """JSON-ready: per value name, one row per char of the chosen units (null: not in the
        vocab)."""
        values = {name: self.gates[g] for g, name in enumerate(self.gate_names)}
        if self.has_c:
            values["c"] = self.c
        values["h"] = self.h
        return {
            "cell": self.stack.cell,
            "layer": self.layer,
            "units": list(self.units),
            "gates": list(self.gate_names),
            "chars": list(self.text),
            "values": {name: rows(v) for name, v in values.items()},
        }


def rows(values: np.ndarray) -> list[list[float] | None]:
    """(time, units) → per char, the units' values rounded, or None for an unread char."""
    out: list[list[float] | None] = []
    for row in np.round(values.astype(np.float64), DIGITS):
        out.append(None if np.isnan(row[0]) else row.tolist())
    return out
