"""Rewrite one row's logits before the draw: logit_bias, then the penalties on chars seen before.
Pure NumPy.

    history = History(len(vocab), window=64, prompt_ids=vocab.encode(prompt[-64:]))
    z = rewrite_logits(logits, params, history)   # (vocab,) float64, a copy; logits untouched
    history.add(char_id)                          # after each generated char

Order, as in HF transformers and vLLM: logit_bias, repetition_penalty (CTRL: a char seen in the
last `repetition_window` chars of prompt + output has a positive logit divided by the penalty, a
negative one multiplied), then presence/frequency penalties (OpenAI: minus `presence` once and
`frequency` per occurrence, counted over the generated chars).  model/sampling/sampler.py calls this
for
the rows whose settings are not neutral, then applies temperature, top-k, top-p and min-p.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from model.sampling.params import SamplingParams


class History:
    """The chars one sequence has seen, for the penalties: the last `window` chars of prompt and
    output (repetition_penalty) and how often each char was generated (presence/frequency)."""

    def __init__(self, vocab_size: int, window: int, prompt_ids: Iterable[int] = ()):
        self.recent: deque[int] = deque((int(i) for i in prompt_ids), maxlen=window)
        self.counts = np.zeros(vocab_size, np.int64)

    def add(self, char_id: int) -> None:
        self.recent.append(char_id)
        self.counts[char_id] += 1


def apply_logit_bias(z: np.ndarray, bias: Sequence[tuple[int, float]]) -> np.ndarray:
    """Add each (id, value) of `bias` to the logits z (vocab,), in place; ids beyond the vocab are
    ignored."""
    for i, b in bias:
        if i < z.shape[0]:
            z[i] += b
    return z


def apply_repetition_penalty(z: np.ndarray, recent: Iterable[int], penalty: float) -> np.ndarray:
    """CTRL's penalty (Keskar et al. 2019, as in HF transformers) on the chars in `recent`, in
    place."""
    seen = np.fromiter(set(recent), np.int64)
    if seen.size and penalty != 1:
        v = z[seen]
        z[seen] = np.where(v > 0, v / penalty, v * penalty)
    return z


def apply_presence_frequency(
    z: np.ndarray, counts: np.ndarray, presence: float, frequency: float
) -> np.ndarray:
    """OpenAI's penalties: z -= frequency × count + presence × (count > 0), in place."""
    if presence or frequency:
        z -= frequency * counts + presence * (counts > 0)
    return z


def rewrite_logits(
    logits: np.ndarray, params: SamplingParams, history: History | None
) -> np.ndarray:
    """One row's logits (vocab,) after bias and penalties, float64 (a copy)."""
    z = np.array(logits, np.float64)
    apply_logit_bias(z, params.logit_bias)
    if history is not None:
        apply_repetition_penalty(z, history.recent, params.repetition_penalty)
        apply_presence_frequency(
            z, history.counts, params.presence_penalty, params.frequency_penalty
        )
    return z


def rewrite_rows(
    logits: np.ndarray, params: Sequence[SamplingParams], histories: Sequence[History | None] | None
) -> np.ndarray:
    """The batch's logits (batch, vocab) with each row's bias and penalties; when no row has any,
    `logits` itself, so neutral settings leave every bit as it was."""
    rows = [r for r, p in enumerate(params) if p.rewrites_logits]
    if not rows:
        return logits
    z = np.array(logits, np.float64)
    for r in rows:
        z[r] = rewrite_logits(logits[r], params[r], histories[r] if histories else None)
    return z
