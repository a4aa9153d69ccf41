"""Turn logits into next chars: temperature, top-k, top-p, min-p and one seeded draw per row.

    params = SamplingParams(temperature=0.8, top_k=None, top_p=0.95, repetition_penalty=1.2)
    ids = sample_rows(logits, [params] * batch, rngs, histories)  # logits (batch, vocab) → ids (batch,)
    char_id = sample(logits[0], params, rng)               # one row

Order, as in HF transformers and vLLM: first logit_bias and the penalties (model/penalty.py, on
the rows that have any), then temperature, top-k, top-p and min-p (keep chars at least `min_p` ×
the top char's probability).  Each rewrite is skipped when its setting is neutral, so neutral
settings leave every bit as it was.  Greedy rows take the argmax of the rewritten logits.

Every row draws exactly one number from its own `numpy.random.Generator` per call (greedy
rows too), and each row's result depends only on that row: no op mixes rows, so a sequence
samples the same chars alone or in a batch of any size (the engine relies on this).
Temperature 0 is greedy argmax.  Work is done in float64 after subtracting each row's max
logit, so tiny temperatures give a one-hot distribution rather than inf/NaN.  The per-row loop
(weights and the draw) is compiled, in model/draw.py; this module checks and prepares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model import draw
from model.limits import (
    DEFAULT_REPETITION_WINDOW,
    DEFAULT_TEMPERATURE,
    MAX_LOGIT_BIAS,
    MAX_PENALTY,
    MAX_REPETITION_PENALTY,
    MAX_REPETITION_WINDOW,
    MAX_TEMPERATURE,
)
from model.penalty import History, rewrite_logits, rewrite_rows


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
        if isinstance(t, bool) or not isinstance(t, int | float) or not (np.isfinite(t) and 0 <= t <= MAX_TEMPERATURE):
            raise ValueError(f"temperature must be a finite number from 0 to {MAX_TEMPERATURE:g}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError("top_k must be an integer ≥ 1")
        if self.top_p is not None and not (isinstance(self.top_p, int | float) and 0 < self.top_p <= 1):
            raise ValueError("top_p must be a number in (0, 1]")
        _check_number("min_p", self.min_p, 0, 1, allow_none=True)
        _check_number("repetition_penalty", self.repetition_penalty, 0, MAX_REPETITION_PENALTY)
        if self.repetition_penalty == 0:
            raise ValueError("repetition_penalty must be > 0")
        w = self.repetition_window
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_REPETITION_WINDOW:
            raise ValueError(f"repetition_window must be an integer from 1 to {MAX_REPETITION_WINDOW}")
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
        return self.repetition_penalty != 1 or self.presence_penalty != 0 or self.frequency_penalty != 0

    @property
    def rewrites_logits(self) -> bool:
        return self.uses_history or bool(self.logit_bias)


def _check_number(name: str, value: object, lo: float, hi: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not (np.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be a finite number from {lo:g} to {hi:g}")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (float64) along the last axis."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _settings(params: Sequence[SamplingParams]) -> tuple[np.ndarray, ...]:
    """Each row's temperature, top_k (0: all), top_p (1: all) and min_p (0: none), as arrays for model/draw.py."""
    n = len(params)
    return (
        np.fromiter((p.temperature for p in params), np.float64, n),
        np.fromiter((p.top_k or 0 for p in params), np.int64, n),
        np.fromiter((1.0 if p.top_p is None else p.top_p for p in params), np.float64, n),
        np.fromiter((p.min_p or 0.0 for p in params), np.float64, n),
    )


def _weights(logits: np.ndarray, params: Sequence[SamplingParams]) -> np.ndarray:
    """Unnormalised sampling weights (batch, vocab), float64: temperature, top-k, top-p, min-p."""
    z = np.ascontiguousarray(logits, np.float64)
    w = np.empty_like(z)
    draw.weights(z, *_settings(params), w)
    return w


def sample_rows(
    logits: np.ndarray,
    params: Sequence[SamplingParams],
    rngs: Sequence[np.random.Generator],
    histories: Sequence[History | None] | None = None,
) -> np.ndarray:
    """Draw one id per row of logits (batch, vocab) with that row's params, Generator and History."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(params) != len(logits) or len(rngs) != len(logits):
        raise ValueError("sample_rows needs logits (batch, vocab) and one params and rng per row")
    if not np.isfinite(logits).all():
        raise FloatingPointError("the model produced non-finite logits")
    u = np.fromiter((rng.random() for rng in rngs), np.float64, len(rngs))  # exactly one draw per row, greedy too
    z = np.ascontiguousarray(rewrite_rows(logits, params, histories), np.float64)
    ids, w = np.empty(len(z), np.int64), np.empty_like(z)
    draw.draw(z, *_settings(params), u, w, ids)
    return ids


def sample(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator, history: History | None = None) -> int:
    """Draw one id from logits (vocab,): `sample_rows` for a batch of one."""
    return int(sample_rows(np.asarray(logits)[None], [params], [rng], [history])[0])


def probabilities(logits: np.ndarray, params: SamplingParams, history: History | None = None) -> np.ndarray:
    """The distribution actually sampled from (vocab,), float64, summing to 1 (for checks and tests)."""
    logits = np.asarray(logits)
    if params.rewrites_logits:
        logits = rewrite_logits(logits, params, history)
    if params.temperature == 0:
        p = np.zeros(logits.shape[-1])
        p[int(np.argmax(logits))] = 1.0
        return p
    w = _weights(logits[None], [params])[0]
    return w / w.sum()


def top_alternatives(logprobs: np.ndarray, n: int) -> list[int]:
    """Ids of the n most likely chars, most likely first (ties by id)."""
    order = np.argsort(-logprobs, kind="stable")
    return [int(i) for i in order[:n]]
