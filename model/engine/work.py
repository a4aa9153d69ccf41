"""Model work besides generation (model/reading/score.py's Reading), run by the engine between
steps.

    engine.submit_work(reading)      # model/engine/loop.py queues it here; returns at once
    queue.run(budget_s)              # the engine thread, once a loop: slices of the oldest item

Each item runs a slice at a time (about one step's worth), so the streams keep stepping while a long
text is read; a cancelled item, or one that raises, gets `fail()` so its waiter always hears.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from model.engine.sequence import EngineClosed


class Work(Protocol):
    """A slice-at-a-time job for the engine thread."""

    cancelled: bool

    def run_slice(self) -> bool: ...  # about one step's worth of work; True when finished
    def fail(self, exc: BaseException) -> None: ...


class WorkQueue:
    """Work items in order; `append` from any thread holding `lock`, `run` on the engine thread."""

    def __init__(self, lock: threading.Condition):
        self._lock = lock  # the engine's condition: appending wakes its thread
        self._items: deque[Work] = deque()  # guarded by _lock

    def __len__(self) -> int:
        return len(self._items)

    def append(self, work: Work) -> None:
        """Call with the lock held."""
        self._items.append(work)

    def run(self, budget: float) -> None:
        """Slices of the oldest item until `budget` seconds are spent (at least one slice)."""
        deadline = time.perf_counter() + budget
        with self._lock:
            work = self._items[0]
        while True:
            if work.cancelled:  # the waiter gets an answer even so (a shutdown drain cancels it)
                work.fail(EngineClosed("cancelled"))
                break
            try:
                if work.run_slice():
                    break
            except Exception as exc:
                work.fail(exc)
                break
            if time.perf_counter() >= deadline:
                return
        with self._lock:
            self._items.popleft()

    def fail_all(self, exc: Exception) -> None:
        """At shutdown: every queued item fails with `exc`."""
        with self._lock:
            items, self._items = list(self._items), deque()
        for item in items:
            item.fail(exc)
