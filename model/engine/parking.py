"""Parking: sequences whose reader has fallen behind wait outside the batch, their state kept as it
was.

    ticket.pause()     # its sink holds as much unsent text as it may (app/collector.py)
    ticket.resume()    # the reader caught up: it rejoins the batch at the engine's next loop

A parked sequence is not stepped: its state row, the char it feeds next and its Generator stay as
they were, and the kernels give a row the same bits in any batch (model/cells/kernel.py), so the
text it goes on with is the text it would have made without the pause.  Only a sequence that has
sent text is ever paused, so a parked one is past its prompt.  Engine thread only
(model/engine/loop.py).
"""

from __future__ import annotations

from collections.abc import Callable

from model.cells.stack import State
from model.engine.sequence import Batch, Sequence


class Parking:
    def __init__(self) -> None:
        self.seqs: list[Sequence] = []

    def __len__(self) -> int:
        return len(self.seqs)

    def ready(self) -> bool:
        """A parked sequence was resumed or cancelled: the engine has work to do for it."""
        return any(not s.ticket.paused or s.ticket.cancelled for s in self.seqs)

    def exchange(self, batch: Batch, remember_end: Callable[[Sequence, State, int], None]) -> None:
        """Paused rows leave the batch with their state; resumed sequences rejoin it as its last
        rows;
        cancelled ones end (where a text ends is where a Continue starts: `remember_end`)."""
        rows = [r for r, s in enumerate(batch.seqs) if s.ticket.paused and not s.ticket.cancelled]
        for r in rows:
            batch.seqs[r].state = batch.state.rows([r])  # (1, units) per layer, a copy
        parked = [batch.seqs[r] for r in rows]
        batch.drop(rows)
        back = [s for s in self.seqs if not s.ticket.paused or s.ticket.cancelled]
        if back:
            self.seqs = [s for s in self.seqs if s.ticket.paused and not s.ticket.cancelled]
        self.seqs.extend(parked)
        for seq in (s for s in back if s.ticket.cancelled):
            assert seq.state is not None
            remember_end(seq, seq.state, 0)
            seq.finish()
        batch.add([s for s in back if not s.ticket.cancelled])

    def finish_all(self) -> None:
        """The engine is stopping: each parked sequence ends "cancelled"."""
        seqs, self.seqs = self.seqs, []
        for seq in seqs:
            seq.finish()
