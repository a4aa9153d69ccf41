"""The engine's own measured speeds, and the wait they predict for a new request's first char.

    # the part of the engine priming slices get beside generation
    rate = PrimeRate(share=PRIME_SHARE)
    rate.slice(seconds, chars=16, rows=6)   # after each priming slice (model/engine/primer.py)
    rate.step(seconds)                      # after each step (model/engine/loop.py)
    # seconds the work queued adds before a 2,000-char prompt's first char
    rate.wait([2000], [1500, 20], True)

A slice runs `chars` time steps, each one product per layer over the `rows` prompts primed together,
so its time per char is close to `a + b·rows`: `a` streams the weights (nearly all of a lone
prompt's cost), `b` is one row's sums.  Both are fitted by least squares over recent slices, and the
step's time `s` is a running mean (both exponentially weighted).  A row being primed advances one
char per slice char when no row generates; else one char per step plus its part of the slices, which
get `share` of the engine: `s·(1 + k) / (1 + s·k / (a + b·rows))` seconds a char, k = share / (1 -
share).  Every prompt being primed is a row at once, so a new prompt of L chars shares each of its
chars with the prompts that still have chars left then; summed over its L chars that is its time to
the first char, and `L·(a + b)` its time alone on an idle engine.  The difference is the wait the
queue causes, which the server compares with CHARLSTM_MAX_QUEUE_S (app/admission.py).  Written by
the engine thread, read from any: `fitted` is one tuple, replaced whole.
"""

from __future__ import annotations

PRIME_SHARE = (
    0.25  # of the engine's time, what priming slices get while rows generate (bench/mixed.py)
)
DECAY = 0.9  # weight of the past per new observation: about the last 10 slices or steps count
# b / a before the rows have varied enough to fit both (the bundled 2×512 model: 0.03 / 0.5 ms)
ROW_COST = 0.1


class PrimeRate:
    def __init__(
        self, share: float = PRIME_SHARE, fitted: tuple[float, float, float] | None = None
    ):
        """`fitted` (a, b, s) in seconds given: a fixed rate, for tests."""
        self.share = share
        self._sums = [0.0] * 5  # weighted Σ1, Σrows, Σy, Σrows², Σrows·y with y = seconds per char
        self._step: float | None = None
        self.fitted = fitted

    def slice(self, seconds: float, chars: int, rows: int) -> None:
        y, x = seconds / max(chars, 1), float(rows)
        self._sums = [
            DECAY * s + v for s, v in zip(self._sums, (1.0, x, y, x * x, x * y), strict=True)
        ]
        self._refit()

    def step(self, seconds: float) -> None:
        self._step = seconds if self._step is None else DECAY * self._step + (1 - DECAY) * seconds
        self._refit()

    def _refit(self) -> None:
        n, sx, sy, sxx, sxy = self._sums
        if n == 0:
            return
        mx, my = sx / n, sy / n
        var = sxx / n - mx * mx
        b = (sxy / n - mx * my) / var if var > 0.25 else -1.0  # rows spread by half a row or more
        # too little spread, or noise: keep the usual proportion of a to b
        if not 0 <= b * mx <= my:
            b = my * ROW_COST / (1 + ROW_COST * mx)
        a = my - b * mx
        self.fitted = (a, b, a + b if self._step is None else self._step)

    def wait(self, prompts: list[int], backlog: list[int], generating: bool) -> float:
        """Seconds the work queued adds before the last of `prompts` (chars to prime each) is
        primed, against each alone on an idle engine; `backlog`: chars left to prime of each prompt
        queued or being primed; `generating`: whether rows are generating (else slices run back to
        back).
        0 before any slice was measured."""
        if self.fitted is None or not prompts:
            return 0.0
        a, b, s = self.fitted
        k = self.share / (1 - self.share)

        def per_char(rows: int) -> float:  # seconds per char for each of `rows` rows being primed
            slice_char = a + b * rows
            return s * (1 + k) / (1 + s * k / slice_char) if generating else slice_char

        worst = 0.0
        for i, length in enumerate(prompts):
            cuts = sorted(min(r, length) for r in [*backlog, *prompts[:i], *prompts[i + 1 :]])
            seconds, done, rows = 0.0, 0, len(cuts) + 1
            for cut in [*cuts, length]:  # from each cut on, one row fewer shares the chars
                seconds, done, rows = seconds + (cut - done) * per_char(rows), cut, rows - 1
            worst = max(worst, seconds - length * (a + b))
        return worst
