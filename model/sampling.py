"""Turn logits into a next char: temperature, top-k, top-p, seeded draws.  Pure NumPy.

    params = SamplingParams(temperature=0.8, top_k=None, top_p=0.95)
    char_id = sample(logits, params, np.random.default_rng(seed))

Temperature 0 is greedy argmax.  Work is done in float64 after subtracting the max logit,
so tiny temperatures give a one-hot distribution rather than inf/NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError("temperature must be a finite number ≥ 0")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be ≥ 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (float64) along the last axis."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def probabilities(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The distribution actually sampled from (vocab,), float64, summing to 1."""
    z = np.asarray(logits, np.float64)
    if params.temperature == 0:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    z = (z - z.max()) / params.temperature  # max is 0: exp never overflows
    if params.top_k is not None and params.top_k < z.size:
        kth = np.partition(z, -params.top_k)[-params.top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z)
    p /= p.sum()
    if params.top_p is not None and params.top_p < 1:
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p[order])
        # Keep the smallest prefix whose mass reaches top_p (always at least the top char).
        keep = int(np.searchsorted(cumulative, params.top_p * cumulative[-1])) + 1
        mask = np.zeros_like(p, dtype=bool)
        mask[order[:keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return p


def sample(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """Draw one id.  Exactly one draw from `rng` per call (greedy too), so streams stay aligned."""
    u = rng.random()
    if params.temperature == 0:
        return int(np.argmax(logits))
    cumulative = np.cumsum(probabilities(logits, params))
    return int(min(np.searchsorted(cumulative, u * cumulative[-1], side="right"), cumulative.size - 1))


def top_alternatives(logprobs: np.ndarray, n: int) -> list[int]:
    """Ids of the n most likely chars, most likely first (ties by id)."""
    order = np.argsort(-logprobs, kind="stable")
    return [int(i) for i in order[:n]]
