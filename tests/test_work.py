"""Work between steps (model/engine/work.py): slices within a budget, and every waiter hears
back."""

from __future__ import annotations

import threading

from model.engine.sequence import EngineClosed
from model.engine.work import WorkQueue


class Slices:
    def __init__(self, n: int, broken: bool = False) -> None:
        self.left, self.broken, self.cancelled = n, broken, False
        self.error: BaseException | None = None

    def run_slice(self) -> bool:
        if self.broken:
            raise RuntimeError("broke")
        self.left -= 1
        return self.left == 0

    def fail(self, exc: BaseException) -> None:
        self.error = exc


def test_runs_the_oldest_item_a_slice_at_a_time_until_done() -> None:
    queue = WorkQueue(threading.Condition())
    first, second = Slices(3), Slices(1)
    queue.append(first)
    queue.append(second)
    queue.run(budget=0.0)  # at least one slice, even with no time
    assert (first.left, len(queue)) == (2, 2)
    queue.run(budget=60.0)
    assert (first.left, second.left, len(queue)) == (0, 1, 1)


def test_cancelled_broken_and_drained_items_all_get_fail() -> None:
    queue = WorkQueue(threading.Condition())
    cancelled, broken, waiting = Slices(5), Slices(5, broken=True), Slices(5)
    cancelled.cancelled = True
    for item in (cancelled, broken, waiting):
        queue.append(item)
    queue.run(1.0)
    queue.run(1.0)
    assert isinstance(cancelled.error, EngineClosed) and isinstance(broken.error, RuntimeError)
    queue.fail_all(EngineClosed("stopped"))
    assert isinstance(waiting.error, EngineClosed) and len(queue) == 0
