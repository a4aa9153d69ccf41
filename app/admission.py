"""Admission: at most MAX_ACTIVE sequences at once across all models, refused at once beyond.

    check_wait(engine.predicted_wait([...]), settings.max_queue_s)  # 429 when the queue is too long
    # ApiError 429 (with Retry-After) when full, 503 when draining
    lease = state.admission.acquire(n)
    lease.tickets.append(ticket)          # what `cancel()` and the shutdown drain cancel
    lease.release()                       # idempotent: the slots are free again

Used on the event loop only, where check-and-take needs no lock.  A text-generation-inference style
slot limit: work is refused rather than queued without bound.  Slots alone do not bound a wait (64
long prompts fit in 64 slots), so a request is also refused when the engine predicts, from its own
measured rates (model/engine/rate.py), that the work queued would keep it from its first char longer
than MAX_QUEUE_S; Retry-After then says when that wait should be back under the limit.
"""

from __future__ import annotations

import math
from typing import Protocol

from app.errors import OVERLOADED, ApiError, unavailable


class Cancellable(Protocol):
    """An engine ticket (model/engine/loop.py) or any other work the drain must end."""

    def cancel(self) -> None: ...


class Lease:
    """`n` admitted sequences; `release` (idempotent) gives their slots back."""

    def __init__(self, admission: Admission, n: int):
        self.admission, self.n = admission, n
        self.tickets: list[Cancellable] = []
        self.released = False

    def cancel(self) -> None:
        for ticket in self.tickets:
            ticket.cancel()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission.give_back(self)


def check_wait(wait_s: float, limit_s: float) -> None:
    """ApiError 429 with Retry-After when the predicted wait is over the limit
    (CHARLSTM_MAX_QUEUE_S)."""
    if wait_s <= limit_s:
        return
    retry = max(1, math.ceil(wait_s - limit_s))
    raise ApiError(
        429,
        f"the work queued would keep this request waiting about {wait_s:.0f} s "
        f"(limit {limit_s:g} s, MAX_QUEUE_S); retry in {retry} s",
        OVERLOADED,
        code="queue_full",
        headers={"Retry-After": str(retry)},
    )


class Admission:
    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self.draining = False
        self._leases: set[Lease] = set()

    def acquire(self, n: int) -> Lease:
        if self.draining:
            raise unavailable(shutting_down=True)
        if self.active + n > self.limit:
            raise ApiError(
                429,
                f"too many active sequences (limit {self.limit}); retry shortly",
                OVERLOADED,
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        self.active += n
        lease = Lease(self, n)
        self._leases.add(lease)
        return lease

    def give_back(self, lease: Lease) -> None:
        """Called by `Lease.release` only."""
        self.active -= lease.n
        self._leases.discard(lease)

    def drain(self) -> int:
        """Stop admitting and cancel every open sequence; returns how many requests were open."""
        self.draining = True
        leases = list(self._leases)
        for lease in leases:
            lease.cancel()
        return len(leases)
