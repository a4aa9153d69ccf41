"""A request's sampling controls, checked once: `SamplingParams` (temperature, top-k, top-p, min-p,
the penalties and logit_bias), every range from model/limits.py.

    params = SamplingParams(temperature=0.8, top_p=0.95, repetition_penalty=1.2)
    params.uses_history      # whether the draw looks at the chars seen so far (the penalties)

model/sampling/sampler.py draws with them; model/sampling/penalty.py rewrites logits with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.limits import (
    DEFAULT_REPETITION_WINDOW,
    DEFAULT_TEMPERATURE,
    MAX_LOGIT_BIAS,
    MAX_PENALTY,
    MAX_REPETITION_PENALTY,
    MAX_REPETITION_WINDOW,
    MAX_TEMPERATURE,
    MAX_TOP_K,
    MIN_REPETITION_PENALTY,
)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0
    repetition_window: int = DEFAULT_REPETITION_WINDOW
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (char id, added logit), ids unique

    def __post_init__(self) -> None:
        t = self.temperature
        if (
            isinstance(t, bool)
            or not isinstance(t, int | float)
            or not (np.isfinite(t) and 0 <= t <= MAX_TEMPERATURE)
        ):
            raise ValueError(f"temperature must be a finite number from 0 to {MAX_TEMPERATURE:g}")
        k = self.top_k
        if k is not None and (
            isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K
        ):
            raise ValueError(f"top_k must be an integer from 1 to {MAX_TOP_K}")
        if self.top_p is not None and not (
            isinstance(self.top_p, int | float) and 0 < self.top_p <= 1
        ):
            raise ValueError("top_p must be a number in (0, 1]")
        _check_number("min_p", self.min_p, 0, 1, allow_none=True)
        _check_number(
            "repetition_penalty",
            self.repetition_penalty,
            MIN_REPETITION_PENALTY,
            MAX_REPETITION_PENALTY,
        )
        w = self.repetition_window
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_REPETITION_WINDOW:
            raise ValueError(
                f"repetition_window must be an integer from 1 to {MAX_REPETITION_WINDOW}"
            )
        _check_number("presence_penalty", self.presence_penalty, -MAX_PENALTY, MAX_PENALTY)
        _check_number("frequency_penalty", self.frequency_penalty, -MAX_PENALTY, MAX_PENALTY)
        bias = tuple((int(i), float(b)) for i, b in self.logit_bias)
        if len({i for i, _ in bias}) != len(bias) or any(i < 0 for i, _ in bias):
            raise ValueError("logit_bias ids must be distinct and ≥ 0")
        for _, b in bias:
            _check_number("logit_bias", b, -MAX_LOGIT_BIAS, MAX_LOGIT_BIAS)
        object.__setattr__(self, "logit_bias", bias)

    @property
    def uses_history(self) -> bool:
        """Whether sampling depends on the chars seen so far (the penalties)."""
        return (
            self.repetition_penalty != 1
            or self.presence_penalty != 0
            or self.frequency_penalty != 0
        )

    @property
    def rewrites_logits(self) -> bool:
        return self.uses_history or bool(self.logit_bias)


def _check_number(name: str, value: object, lo: float, hi: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (np.isfinite(value) and lo <= value <= hi)
    ):
        raise ValueError(f"{name} must be a finite number from {lo:g} to {hi:g}")
