"""Read a text through the network: how surprised the model is by each char, and what its cells do.

    reading = Reading(stack, vocab, "ROMEO:\\nWhat", top=3, probe=Probe(layer=1, units=(5, 9)))
    reading.run()                       # or, on the engine thread, run_slice() until it returns
    True
    reading.result()                    # {"chars": [...], "summary": {...}, "activations"?: [...]}

Each char's log-probability (nats) is the model's prediction of it from everything before it; the
first char is predicted from the start state (zero state: the logits are the output bias, as in
generation from an empty prompt).  A char outside the vocab cannot be fed: it is reported as
unscored and skipped, and the state carries on from the char before it.  A `Probe` records the
chosen cells' h or c of one layer after each char (after a skipped char: unchanged).

Only the step API of model/cells/stack.py is used (`zero_state`, `step`, `dense_b`), one char per
call, so the engine can interleave a long text with the streams it runs (`Reading` is a
`model.engine.Work`): `run_slice` reads SLICE_CHARS chars and returns.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.sampling.sampler import log_softmax, top_alternatives
from model.vocab import Vocab

SLICE_CHARS = (
    1  # chars per run_slice: one step's worth of time, so a running stream waits no longer
)
MAX_TOP = 5


@dataclass(frozen=True)
class Probe:
    """Which activations to record after each char: `what` ("h" or "c") of `units` of `layer`."""

    layer: int
    units: tuple[int, ...]
    what: str = "h"

    def check(self, layers: int, units: int, has_c: bool = True) -> None:
        """ValueError naming the bad field (the API turns it into a 422)."""
        if not 0 <= self.layer < layers:
            raise ValueError(f"layer: Pick a layer from 0 to {layers - 1}.")
        if any(not 0 <= u < units for u in self.units):
            raise ValueError(f"units: Pick cells (units) from 0 to {units - 1}.")
        if self.what not in ("h", "c"):
            raise ValueError('what: Ask for "h" (the output) or "c" (the cell state).')
        if self.what == "c" and not has_c:
            raise ValueError(
                'what: This model (a GRU or a plain RNN) has no cell state c: ask for "h".'
            )


class Reading:
    """One text read char by char through a network with the step API of model/cells/stack.py."""

    def __init__(
        self,
        stack: Any,
        vocab: Vocab,
        text: str,
        top: int = 0,
        probe: Probe | None = None,
        on_done: Callable[[Reading], None] | None = None,
    ):
        if not 0 <= top <= MAX_TOP:
            raise ValueError(f"top: must be from 0 to {MAX_TOP}")
        if probe is not None:
            probe.check(stack.num_layers, stack.units, getattr(stack, "cell_units", 1) > 0)
        self.stack, self.vocab, self.text, self.top, self.probe = stack, vocab, text, top, probe
        self.on_done = on_done
        lookup = {ch: i for i, ch in enumerate(vocab.chars)}
        # -1: not in vocab
        self.ids = np.fromiter((lookup.get(ch, -1) for ch in text), np.int64, len(text))
        self.logprob = np.full(len(text), np.nan)  # nan: unscored
        self.top_ids = np.zeros((len(text), top), np.int64)
        self.top_lp = np.zeros((len(text), top))
        self.activations = np.zeros((len(text), len(probe.units) if probe else 0), np.float32)
        self.state = stack.zero_state(1)
        # the start state's prediction (a kernel may pad the bias past the vocab)
        self.logits = np.array(stack.dense_b[: stack.vocab_size], np.float32)
        self.pos = 0
        self.cancelled = False
        self.error: BaseException | None = None
        self.finished = threading.Event()

    # --- engine.Work ----------------------------------------------------------------------------
    def run_slice(self) -> bool:
        """Read the next SLICE_CHARS chars; True (and on_done called) once the whole text is
        read."""
        for _ in range(SLICE_CHARS):
            if self.pos >= len(self.text):
                break
            self._read(self.pos)
            self.pos += 1
        if self.pos >= len(self.text):
            self._end()
            return True
        return False

    def cancel(self) -> None:
        """Thread-safe: the engine drops the reading before its next slice."""
        self.cancelled = True

    def fail(self, exc: BaseException) -> None:
        if not self.finished.is_set():
            self.error = exc
            self._end()

    def run(self) -> Reading:
        """Read the whole text here (CLI, tests); raises what a slice raised."""
        while not self.run_slice():
            pass
        return self

    # --- internals --------------------------------------------------------------------------
    def _read(self, t: int) -> None:
        char_id = int(self.ids[t])
        if char_id >= 0:
            lp = log_softmax(self.logits)
            self.logprob[t] = lp[char_id]
            if self.top:
                alts = top_alternatives(lp, self.top)
                self.top_ids[t], self.top_lp[t] = alts, lp[alts]
            self.logits = self.stack.step(np.array([char_id]), self.state)[0]
        if self.probe is not None:
            layer = self.probe.layer
            source = self.state.h if self.probe.what == "h" else self.state.c
            self.activations[t] = source[layer, 0, list(self.probe.units)]

    def _end(self) -> None:
        if not self.finished.is_set():
            self.finished.set()
            if self.on_done is not None:
                self.on_done(self)

    # --- results ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        scored = ~np.isnan(self.logprob)
        n = int(scored.sum())
        nats = float(-self.logprob[scored].sum()) if n else 0.0
        per_char = nats / n if n else None
        return {
            "total_nats": round(nats, 4),
            "nats_per_char": None if per_char is None else round(per_char, 4),
            "bits_per_char": None if per_char is None else round(per_char / math.log(2), 4),
            "perplexity": None if per_char is None else round(math.exp(per_char), 4),
            "scored_chars": n,
            "unscored_chars": len(self.text) - n,
        }

    def chars(self) -> list[dict[str, Any]]:
        """Per char: {"char", "logprob" (null: unscored), "top"?: [[char, logprob], ...]}."""
        chars = self.vocab.chars
        out: list[dict[str, Any]] = []
        for t, ch in enumerate(self.text):
            scored = not math.isnan(self.logprob[t])
            entry: dict[str, Any] = {
                "char": ch,
                "logprob": round(float(self.logprob[t]), 4) if scored else None,
            }
            if self.top:
                entry["top"] = (
                    [
                        [chars[int(i)], round(float(v), 4)]
                        for i, v in zip(self.top_ids[t], self.top_lp[t], strict=True)
                    ]
                    if scored
                    else []
                )
            out.append(entry)
        return out

    def activation_rows(self) -> list[list[float]]:
        """Per char, the probed cells' activations after it (rounded to 1e-5)."""
        return np.round(self.activations.astype(np.float64), 5).tolist()
