"""The engine-thread-to-event-loop bridge (app/collector.py): merged takes, few wake-ups, whole
ticks."""

from __future__ import annotations

import asyncio
import threading

from app.collector import Collector, Ticks
from model.event import Chunk, Done, Failed, Usage
from model.sampling.generate import Generation, GenerationRequest
from model.vocab import Vocab


def ended(prompt: str = "ab") -> Generation:
    gen = Generation(GenerationRequest(prompt, 5, seed=3), Vocab.from_chars("abc"))
    gen.cancel()
    return gen


def test_what_arrived_between_takes_is_merged_per_sequence_and_ends_are_taken_once() -> None:
    async def main() -> None:
        collector = Collector(2, asyncio.get_running_loop())
        first, second = collector.outputs

        def engine() -> None:
            first.on_chunk(Chunk("ab", [{"char": "a", "logprob": -1.0, "top": []}]))
            first.on_chunk(Chunk("c", [{"char": "c", "logprob": -2.0, "top": []}]))
            second.on_error(error := RuntimeError("x"))
            first.on_done(ended())
            assert isinstance(second.end, Failed) and second.end.error is error

        thread = threading.Thread(target=engine)
        thread.start()
        thread.join()
        await asyncio.wait_for(collector.wait(), 5)
        events = collector.take()
        assert [i for i, _ in events] == [0, 0, 1]
        assert events[0][1] == Chunk(
            "abc",
            [{"char": "a", "logprob": -1.0, "top": []}, {"char": "c", "logprob": -2.0, "top": []}],
        )
        assert events[1][1] == Done("cancelled", 3, Usage(2, 0))
        assert collector.finished and collector.take() == []

    asyncio.run(main())


def test_a_whole_text_request_wakes_only_when_a_sequence_ends() -> None:
    async def main() -> None:
        collector = Collector(1, asyncio.get_running_loop())
        collector.stream = False
        (out,) = collector.outputs
        out.on_chunk(Chunk("ab"))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(collector.all_ended())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        threading.Thread(target=out.on_done, args=(ended(),)).start()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_ticks_never_return_twice_in_one_tick() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ticks = Ticks(loop, 0.02)
        seen = []
        for _ in range(5):
            await ticks.next()
            seen.append(ticks.last)
        assert seen == sorted(set(seen)) and ticks.last * 0.02 <= loop.time() + 0.001

    asyncio.run(main())


def test_a_sequence_pauses_only_while_its_reader_is_stuck_sending() -> None:
    """An eighth of the bound held while the reader sends (took, not yet hushed) pauses it; the
    next take resumes it.  A reader waiting for its tick never pauses it, nor does a whole-text
    request."""

    class FakeTicket:
        paused = False

        def pause(self) -> None:
            self.paused = True

        def resume(self) -> None:
            self.paused = False

    async def main() -> None:
        collector = Collector(1, asyncio.get_running_loop())
        out, ticket = collector.outputs[0], FakeTicket()
        out.bind(ticket, bound=800)  # type: ignore[arg-type]  # pauses at 100 bytes held
        for _ in range(150):
            out.on_chunk(Chunk("a"))  # before any take: the reader is not sending
        assert not ticket.paused and len(out.text) < 64  # small pieces are joined as they come
        assert collector.take()[0][1] == Chunk("a" * 150)  # the reader is sending now
        for _ in range(99):
            out.on_chunk(Chunk("b"))
        assert not ticket.paused
        out.on_chunk(Chunk("b"))
        assert ticket.paused  # 100 bytes while stuck in a send
        collector.take()
        assert not ticket.paused  # read: room again
        collector.hush()  # its sends returned; it waits for the next tick
        for _ in range(300):
            out.on_chunk(Chunk("c"))
        assert not ticket.paused
        collector.take()
        for _ in range(200):
            # ~300 bytes each
            out.on_chunk(Chunk("d", [{"char": "d", "logprob": -1.0, "top": [("d", -1.0)]}]))
        assert ticket.paused
        collector.stream = False  # a whole-text request: nobody reads before the end
        assert not ticket.paused

    asyncio.run(main())
