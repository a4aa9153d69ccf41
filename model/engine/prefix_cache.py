"""Recurrent states of recent texts, so a prompt that extends one primes only its new suffix.

Like llama.cpp's `cache_prompt`, for a char-LSTM: the whole past of a sequence is its state
(h and c of every layer, about 8 KB for 2×512), so keeping a state every `every` chars costs
little.  The engine records a checkpoint while it primes or generates a text (at each multiple
of `every` chars and at the end); a new prompt starts from the longest checkpoint whose text is a
prefix of it and primes the rest.  Continue after a 5,000-char generation primes one char;
a branch at char i primes at most `every` chars.

    cache = PrefixCache(budget_bytes=DEFAULT_BUDGET_BYTES, every=32)
    run = cache.run(prompt_ids)                       # a text being primed, then generated
    cache.record(run, 32, logits, state)              # the state after run.ids[:32]
    run.append(char_id)                               # a generated char, fed
    offset, logits, state = cache.lookup(new_ids)     # offset chars covered; (0, None, None): none

The same prompt gives the same bits either way only if the states came from the same arithmetic
as cold priming; the engine primes with its batch-invariant step for exactly that reason.
Memory: at most `budget_bytes` of states, ids and logits; the least recently used texts go first.
Not thread-safe: the engine thread owns it.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_EVERY = 32  # chars between checkpoints: a branch primes at most this many
DEFAULT_BUDGET_BYTES = 64 << 20  # ~7,500 checkpoints of the bundled 2×512 model
MAX_RUNS = 512  # texts remembered at most (bounds the work of a lookup)


@dataclass
class Run:
    """One text (prompt, then the chars fed after it) and the checkpoints taken along it."""

    ids: array  # int32 ids of the text so far
    # sorted checkpoint offsets (chars of the text)
    offsets: list[int] = field(default_factory=list)
    # offset → (logits, state)
    states: dict[int, tuple[np.ndarray, Any]] = field(default_factory=dict)
    nbytes: int = 0  # ids, logits and states
    counted: int = 0  # of nbytes, what the cache's total includes (0 while not remembered)

    def append(self, char_id: int) -> None:
        self.ids.append(int(char_id))
        self.nbytes += self.ids.itemsize

    def extend(self, char_ids: Sequence[int] | np.ndarray) -> None:
        self.ids.extend(np.asarray(char_ids, np.int32).tolist())
        self.nbytes += len(char_ids) * self.ids.itemsize

    def __len__(self) -> int:
        return len(self.ids)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two id arrays."""
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class PrefixCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES, every: int = DEFAULT_EVERY):
        if budget_bytes < 0 or every < 1:
            raise ValueError("budget_bytes must be ≥ 0 and every ≥ 1")
        self.budget_bytes, self.every = budget_bytes, every
        # id(run) → run, least recently used first
        self._runs: OrderedDict[int, Run] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.budget_bytes > 0

    def run(self, ids: np.ndarray) -> Run:
        """A run for a text whose first ids are `ids`; remembered once it records a checkpoint."""
        run = Run(array("i", np.asarray(ids, np.int32).tobytes()))
        run.nbytes = len(run.ids) * run.ids.itemsize
        return run

    def due(self, offset: int) -> bool:
        """Whether a checkpoint belongs at this offset (a multiple of `every`)."""
        return self.enabled and offset > 0 and offset % self.every == 0

    def due_between(self, before: int, after: int) -> bool:
        """Whether a checkpoint came due in offsets (before, after] (a burst of chars at once)."""
        return self.enabled and before // self.every != after // self.every

    def record(self, run: Run, offset: int, logits: np.ndarray, state: Any) -> None:
        """Keep copies of the logits and state after `run.ids[:offset]` (h, c: (layers, 1,
        units))."""
        if not self.enabled or not 0 < offset <= len(run) or offset in run.states:
            return
        entry = (np.array(logits, np.float32).reshape(-1), state.copy())
        size = entry[0].nbytes + entry[1].h.nbytes + entry[1].c.nbytes
        run.states[offset] = entry
        bisect.insort(run.offsets, offset)
        run.nbytes += size
        self._runs[id(run)] = run
        self._runs.move_to_end(id(run))
        # the new entry and the ids appended since the last one
        self.nbytes += run.nbytes - run.counted
        run.counted = run.nbytes
        self._evict(run)

    def lookup(self, ids: np.ndarray) -> tuple[int, np.ndarray | None, Any]:
        """The longest checkpoint whose text is a prefix of `ids`: (offset, logits copy, state
        copy)."""
        ids = np.asarray(ids, np.int32)
        best, best_run = 0, None
        for run in self._runs.values():
            if not run.offsets or run.offsets[0] > len(ids) or run.offsets[-1] <= best:
                continue  # cannot beat the best so far
            shared = common_prefix(np.frombuffer(run.ids, np.int32), ids)
            i = bisect.bisect_right(run.offsets, shared) - 1
            if i >= 0 and run.offsets[i] > best:
                best, best_run = run.offsets[i], run
        if best_run is None:
            self.misses += 1
            return 0, None, None
        self.hits += 1
        self._runs.move_to_end(id(best_run))
        logits, state = best_run.states[best]
        return best, logits.copy(), state.copy()

    def clear(self) -> None:
        for run in list(self._runs.values()):
            self._forget(run)
        self._runs.clear()

    def stats(self) -> dict[str, int]:
        checkpoints = sum(len(r.offsets) for r in self._runs.values())
        return {
            "texts": len(self._runs),
            "checkpoints": checkpoints,
            "bytes": self.nbytes,
            "hits": self.hits,
        }

    def _evict(self, keep: Run) -> None:
        """Forget least recently used texts (then the oldest checkpoints of `keep`) until under
        budget."""
        while (self.nbytes > self.budget_bytes or len(self._runs) > MAX_RUNS) and len(
            self._runs
        ) > 1:
            _, old = self._runs.popitem(last=False)
            self._forget(old)
        # one text over the budget: its oldest go
        while self.nbytes > self.budget_bytes and keep.offsets:
            logits, state = keep.states.pop(keep.offsets.pop(0))
            size = logits.nbytes + state.h.nbytes + state.c.nbytes
            keep.nbytes -= size
            keep.counted -= size
            self.nbytes -= size
        if not keep.offsets:
            self._runs.pop(id(keep), None)
            self._forget(keep)

    def _forget(self, run: Run) -> None:
        """Drop a run's states (the engine may still hold it while it generates)."""
        self.nbytes -= run.counted
        run.states.clear()
        run.offsets.clear()
        run.nbytes, run.counted = len(run.ids) * run.ids.itemsize, 0
