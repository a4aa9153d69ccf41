"""The chief's progress line for one epoch, as Keras users know it: steps, loss, chars/s, ETA.

    progress = Progress(epoch=0, epochs=20, steps=122, first=0, chars_per_step=64 * 128)
    progress.step(1, loss)   # ... after each optimizer step
    progress.end({"loss": 1.41, "val_loss": 1.52})

On a terminal the line is redrawn in place (at most 10 times a second); elsewhere (a log
file, CI) only the final line of each epoch is printed, so logs stay one line per epoch.
The ETA and chars/s count only the steps run by this process, so they stay right after a
resume in the middle of an epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

REDRAW_SECONDS = 0.1
BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


class Progress:
    """One epoch's progress, printed to `out` (stdout)."""

    def __init__(
        self,
        epoch: int,
        epochs: int,
        steps: int,
        first: int,
        chars_per_step: int,
        out: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.steps, self.first, self.chars_per_step = steps, first, chars_per_step
        self.out = out or sys.stdout
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.clock = clock
        self.start = self.drawn = self.last = clock()  # last: the end of the latest step
        self.total, self.done = 0.0, 0  # loss summed over the steps run here, and their count
        self.after_first = self.start
        self.width = len(str(steps))
        print(f"Epoch {epoch + 1}/{epochs}", file=self.out, flush=True)

    @property
    def loss(self) -> float:
        return self.total / max(1, self.done)

    def chars_per_s(self) -> float:
        """Training speed over the steps run here (held-out scoring not included)."""
        return self.done * self.chars_per_step / max(1e-9, self.last - self.start)

    def step(self, current: int, loss: float) -> None:
        """Step `current` (1-based) ended with this training loss."""
        self.total, self.done = self.total + loss, self.done + 1
        now = self.last = self.clock()
        if self.done == 1:  # the first step also traces the step function: leave it out of the ETA
            self.after_first = now
        if not self.interactive or (now - self.drawn < REDRAW_SECONDS and current < self.steps):
            return
        self.drawn = now
        filled = BAR_WIDTH * current // self.steps
        bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + "." * (BAR_WIDTH - filled - 1)
        per_step = (now - self.after_first) / (self.done - 1) if self.done > 1 else now - self.start
        eta = per_step * (self.steps - current)
        line = (
            f"{current:>{self.width}}/{self.steps} [{bar}] - ETA {_duration(eta)}"
            f" - loss: {self.loss:.4f}"
        )
        self.out.write(f"\r{line} - {self.chars_per_s():,.0f} chars/s\x1b[K")
        self.out.flush()

    def end(self, logs: dict[str, Any]) -> None:
        """The epoch's one final line: time, training loss, held-out losses, speed."""
        took = self.clock() - self.start
        scores = "".join(
            f" - {k}: {logs[k]:.4f}"
            for k in ("val_loss", "val_loss_ema")
            if logs.get(k) is not None
        )
        per_step = 1000 * (self.last - self.start) / max(1, self.done)
        line = (
            f"{self.steps}/{self.steps} - {took:.0f}s - {per_step:.0f}ms/step"
            f" - loss: {self.loss:.4f}{scores} - {self.chars_per_s():,.0f} chars/s"
        )
        self.out.write(f"\r{line}\x1b[K\n" if self.interactive else f"{line}\n")
        self.out.flush()
