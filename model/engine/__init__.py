"""The batched engine: one thread per model steps every active sequence together.

    from model.engine import Engine
    engine = Engine(stack, vocab, name="shakespeare"); engine.start()
    ticket = engine.submit(request, sink)       # model/engine/loop.py

sequence.py keeps the rows, primer.py primes prompts (from prefix_cache.py's checkpoints),
work.py runs readings between steps.
"""

from model.engine.loop import Engine
from model.engine.prefix_cache import DEFAULT_BUDGET_BYTES
from model.engine.sequence import EngineClosed, Sink, Ticket
from model.engine.work import Work

__all__ = ["DEFAULT_BUDGET_BYTES", "Engine", "EngineClosed", "Sink", "Ticket", "Work"]
