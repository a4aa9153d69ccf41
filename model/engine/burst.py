"""Several chars per row in one compiled call: step, draw, feed what was drawn (a burst).

    ids, u, forced = inputs(batch.seqs, chars)
    drawn, logits = burst(stack, ids, state, u, settings, forced)
    # ids (rows,) the chars fed first; u (chars, rows) each generating row's uniforms, drawn in
    # order from its own Generator; forced (chars, rows) the prompt chars a row being primed feeds
    # next (-1: feed what it drew); settings = model/sampling/sampler.py's `settings(params)`
    # → drawn (steps, rows), -1 where a row's logits were not finite (the burst ends there);
    #   logits (rows, vocab) of the last step; state advanced by `steps` chars

Between two steps the engine's Python (bookkeeping, the prefix cache, `Generation.accept`, the
sink) costs about 200 µs at one stream and 570 µs at 32 (the bundled 2×512 model on the 2-core
Xeon): half the step at one stream.  When no generating row needs Python between its chars, the
engine hands the batch to one burst instead, and pays that once for all of its chars.  Each of the
burst's steps is `_step`'s body (model/cells/kernel.py's `forward`), then every row's draw
(model/sampling/draw.py's `draw_rows`, its strict maths unchanged) with u[t, row], on float64
copies of the float32 logits as `sample_rows` makes them.  The same operations in the same order
as a step and a draw, so a row's chars and state have the bits of one char at a time;
tests/test_burst.py checks it.  Rows being primed ride along as they do in a step, one prompt char
a step; the engine ends the burst where the first of them runs out of prompt, and that row draws
its first char in Python.

A generating row may burst when nothing about it changes between chars but its state
(`Generation.bursts`: no stop strings, logprobs or penalties) and its `max_chars` is not passed
(the engine sizes the burst).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model.cells import kernel
from model.cells.kernel import F2, F3, F4, forward
from model.cells.stack import Stack, State
from model.engine.sequence import Sequence
from model.runtime.jit import compiled
from model.sampling.draw import draw_rows

MAX_BURST = 16  # chars per row in one burst
BURST_S = 0.008  # a burst's length in seconds: how long a new request may wait for admission
D1, D2 = "float64[::1]", "float64[:, ::1]"


@compiled(
    f"int64(int64, int64[::1], {F2}, {F4}, {F4}, {F3}, {F3}, {F3}, {F2}, {F3}, {F3}, {F2}, "
    f"{F2}, {F2}, {D2}, {D1}, int64[::1], {D1}, {D1}, {D2}, {D2}, int64[:, ::1], int64[:, ::1])",
    parallel=True,
)
def _burst(
    kind,
    ids,
    table,
    w_in,
    w_rec,
    b_in,
    b_rec,
    dense_w,
    dense_b,
    c,
    h,
    x,
    r,
    logits,
    u,
    temperature,
    top_k,
    top_p,
    min_p,
    z,
    w,
    drawn,
    forced,
):
    """len(u) steps, each drawing drawn[t] with u[t] and feeding it (or forced[t] where ≥ 0);
    returns the steps run."""
    rows, vocab = ids.shape[0], z.shape[1]
    for t in range(u.shape[0]):
        forward(kind, ids, table, w_in, w_rec, b_in, b_rec, dense_w, dense_b, c, h, x, r, logits)
        finite = True
        for row in range(rows):
            for j in range(vocab):
                z[row, j] = logits[row, j]
                finite = finite and np.isfinite(logits[row, j])
        draw_rows(z, temperature, top_k, top_p, min_p, u[t], w, drawn[t])
        if not finite:  # the engine fails those rows; the others keep what they drew
            for row in range(rows):
                if not np.isfinite(z[row]).all():
                    drawn[t, row] = -1
            return t + 1
        for row in range(rows):
            ids[row] = forced[t, row] if forced[t, row] >= 0 else drawn[t, row]
    return u.shape[0]


def inputs(seqs: list[Sequence], chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A burst's ids, u and forced for the batch's rows (module docstring).  A generating row feeds
    its last char and draws with `chars` uniforms from its own Generator, as `chars` draws one by
    one would; a row being primed feeds its prompt and draws nothing (its Generator untouched)."""
    rows = len(seqs)
    ids, u = np.empty(rows, np.int64), np.zeros((chars, rows))
    forced = np.full((chars, rows), -1, np.int64)
    for r, seq in enumerate(seqs):
        if seq.priming:
            ids[r] = seq.ids[seq.primed]
            ahead = seq.ids[seq.primed + 1 : seq.primed + chars + 1]
            forced[: len(ahead), r] = ahead
        else:
            ids[r] = seq.next_id
            u[:, r] = seq.gen.rng.random(chars)
    return ids, u, forced


def burst(
    stack: Stack,
    ids: np.ndarray,
    state: State,
    u: np.ndarray,
    settings: tuple[np.ndarray, ...],
    forced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run len(u) chars per row (module docstring); returns (drawn, last logits)."""
    forced = np.full(u.shape, -1, np.int64) if forced is None else forced
    work, (rows, vocab) = stack.buffers(state), (state.batch, stack.vocab_size)
    z, drawn = np.empty((rows, vocab)), np.empty(u.shape, np.int64)
    args: list[Any] = [stack.kind, np.array(ids, np.int64), stack.table, stack.w_in, stack.w_rec]
    args += [work["b_in"], work["b_rec"], stack.dense_w, work["dense_b"], state.c, state.h]
    args += [work["x"], work["r"], work["logits"], np.ascontiguousarray(u, np.float64)]
    args += [*settings, z, np.empty_like(z), drawn, np.ascontiguousarray(forced, np.int64)]
    with kernel.launching(stack.threads, rows, stack.w_rec[0]):
        steps = _burst(*args)
    return drawn[:steps], work["logits"][:, :vocab].copy()


def warm(stack: Stack) -> None:
    """Compile (or load from the cache) the burst kernel: one char on one zero row, greedy."""
    greedy = (np.zeros(1), np.zeros(1, np.int64), np.ones(1), np.zeros(1))
    burst(stack, np.zeros(1, np.int64), stack.zero_state(1), np.zeros((1, 1)), greedy)
