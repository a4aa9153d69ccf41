"""Turn logits into next chars: temperature, top-k, top-p, min-p and one seeded draw per row.

    params = SamplingParams(temperature=0.8, top_k=None, top_p=0.95, repetition_penalty=1.2)
    ids = sample_rows(logits, [params] * batch, rngs, histories)  # logits (batch, vocab) → ids
    (batch,)
    char_id = sample(logits[0], params, rng)               # one row

Order, as in HF transformers and vLLM: first logit_bias and the penalties
(model/sampling/penalty.py, on
the rows that have any), then temperature, top-k, top-p and min-p (keep chars at least `min_p` ×
the top char's probability).  Each rewrite is skipped when its setting is neutral, so neutral
settings leave every bit as it was.  Greedy rows take the argmax of the rewritten logits.

Every row draws exactly one number from its own `numpy.random.Generator` per call (greedy
rows too), and each row's result depends only on that row: no op mixes rows, so a sequence
samples the same chars alone or in a batch of any size (the engine relies on this).
Temperature 0 is greedy argmax.  Work is done in float64 after subtracting each row's max
logit, so tiny temperatures give a one-hot distribution rather than inf/NaN.  The per-row loop
(weights and the draw) is compiled, in model/sampling/draw.py; this module checks and prepares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.sampling import draw
from model.sampling.params import SamplingParams
from model.sampling.penalty import History, rewrite_logits, rewrite_rows


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (float64) along the last axis."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def settings(params: Sequence[SamplingParams]) -> tuple[np.ndarray, ...]:
    """Each row's temperature, top_k (0: all), top_p (1: all) and min_p (0: none), as arrays for
    model/sampling/draw.py."""
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
    draw.weights(z, *settings(params), w)
    return w


def sample_rows(
    logits: np.ndarray,
    params: Sequence[SamplingParams],
    rngs: Sequence[np.random.Generator],
    histories: Sequence[History | None] | None = None,
) -> np.ndarray:
    """Draw one id per row of logits (batch, vocab) with that row's params, Generator and
    History."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(params) != len(logits) or len(rngs) != len(logits):
        raise ValueError("sample_rows needs logits (batch, vocab) and one params and rng per row")
    if not np.isfinite(logits).all():
        raise FloatingPointError("the model produced non-finite logits")
    # exactly one draw per row, greedy too
    u = np.fromiter((rng.random() for rng in rngs), np.float64, len(rngs))
    if any(p.rewrites_logits for p in params):  # bias or penalties on some row
        logits = rewrite_rows(logits, params, histories)
    z = np.ascontiguousarray(logits, np.float64)
    ids, w = np.empty(len(z), np.int64), np.empty_like(z)
    draw.draw(z, *settings(params), u, w, ids)
    return ids


def sample(
    logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator,
    history: History | None = None,
) -> int:
    """Draw one id from logits (vocab,): `sample_rows` for a batch of one."""
    return int(sample_rows(np.asarray(logits)[None], [params], [rng], [history])[0])


def probabilities(
    logits: np.ndarray, params: SamplingParams, history: History | None = None
) -> np.ndarray:
    """The distribution actually sampled from (vocab,), float64, summing to 1 (for checks and
    tests)."""
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
