"""Prompts primed together (LSTMStack.prime_rows, model/engine/primer.py): each gets the bits of
priming alone, none waits for another to finish, and an idle engine primes back to back.

    .venv/bin/pytest tests/test_batched_priming.py
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from model.cells.stack import PRIME_CHUNK, State
from model.engine.loop import Engine
from model.engine.prefix_cache import PrefixCache
from model.engine.primer import Primer
from model.engine.sequence import Batch, Sequence
from model.sampling.generate import GenerationRequest, generate
from model.sampling.params import SamplingParams
from tests.test_cell import random_stack
from tests.test_engine import MEDIUM_VOCAB, RecordingSink
from tests.test_engine import engine_of as engine_of  # a fixture
from tests.test_primer import VOCAB, prime_all, sequence_of


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("units", "layers", "threads"), [(17, 3, 2), (64, 2, 1), (64, 2, 2)])
def test_rows_primed_together_have_the_bits_of_each_alone(
    units: int, layers: int, threads: int
) -> None:
    stack = random_stack(units=units, vocab=20, layers=layers, threads=threads)
    rng = np.random.default_rng(units + threads)
    for _ in range(8):
        k = int(rng.integers(1, 12))
        chunks = [
            rng.integers(0, 20, int(rng.integers(1, PRIME_CHUNK + 1))) for _ in range(k)
        ]  # ragged
        together = [stack.prime(rng.integers(0, 20, int(rng.integers(0, 40))))[1] for _ in range(k)]
        alone = [s.copy() for s in together]
        logits_alone = [stack.prime_chunk(c, s) for c, s in zip(chunks, alone, strict=True)]
        logits_together = stack.prime_rows(chunks, together)
        for la, lt, sa, st in zip(logits_alone, logits_together, alone, together, strict=True):
            assert same_bits(la, lt) and same_bits(sa.h, st.h) and same_bits(sa.c, st.c)


def state_of(batch: Batch, seq: Sequence) -> State:
    return batch.state.rows([batch.seqs.index(seq)])


def test_prompts_primed_by_the_primer_together_end_in_the_state_of_each_alone() -> None:
    stack = random_stack(units=24, vocab=len(VOCAB))
    primer, batch = Primer(stack, PrefixCache(1 << 20)), Batch(stack)
    rng = np.random.default_rng(3)
    prompts = [
        "".join(rng.choice(list("abcdefghij"), size=n)) for n in (1, 15, 16, 17, 40, 100, 233, 40)
    ]
    # from the cache at 233 (where that text ended): a ragged first slice
    prompts.append(prompts[6] + "abcde")
    seqs = [sequence_of(p) for p in prompts]
    primed = prime_all(primer, batch, seqs[:7]) | prime_all(primer, batch, seqs[7:])
    assert seqs[-1].gen.cached_chars == 233
    for seq, prompt in zip(seqs, prompts, strict=True):
        logits, state = stack.prime(VOCAB.encode(prompt))
        assert same_bits(primed[id(seq)], logits)
        assert same_bits(state_of(batch, seq).h, state.h) and same_bits(
            state_of(batch, seq).c, state.c
        )


def test_rows_primed_in_steps_and_slices_end_in_the_state_of_priming_alone() -> None:
    """A row being primed feeds one prompt char per step beside generating rows, and more in slices:
    any mix of the two gives the state and logits of priming alone."""
    stack = random_stack(units=24, vocab=len(VOCAB))
    primer, batch = Primer(stack, PrefixCache(1 << 20)), Batch(stack)
    generating = sequence_of("ab")
    prime_all(primer, batch, [generating])
    generating.next_id = 3  # now a generating row
    rng = np.random.default_rng(5)
    seqs = [sequence_of("".join(rng.choice(list("abcdefghij"), size=n))) for n in (20, 37, 64, 90)]
    batch.add([s for s in seqs if not primer.admit(s)])
    done: dict[int, tuple[np.ndarray, State]] = {}  # when each was primed: its logits and state
    for turn in range(200):
        if turn % 3 == 2:  # a slice every third turn, else a step
            rows, logits = primer.prime(batch)
            for r, row_logits in zip(rows, logits, strict=True):
                done[id(batch.seqs[r])] = row_logits, batch.state.rows([r])
            continue
        feeding = [s.priming for s in batch.seqs]
        ids = np.array(
            [s.ids[s.primed] if f else s.next_id for s, f in zip(batch.seqs, feeding, strict=True)]
        )
        logits = stack.step(ids, batch.state)
        for r in primer.after_step(batch, feeding, logits, np.isfinite(logits).all(axis=1)):
            done[id(batch.seqs[r])] = logits[r], batch.state.rows([r])
        if not batch.priming_rows():
            break
    for seq in seqs:
        logits, state = stack.prime(seq.ids)
        assert same_bits(done[id(seq)][0], logits)
        assert same_bits(done[id(seq)][1].h, state.h) and same_bits(done[id(seq)][1].c, state.c)


def test_a_long_prompt_is_primed_in_its_own_slices_while_short_prompts_keep_arriving() -> None:
    """All prompts being primed advance in every slice: a long prompt is primed after as many
    slices as it alone needs, whatever arrives after it (counted in slices, not seconds)."""
    stack = random_stack(units=8, vocab=len(VOCAB))
    primer, batch = Primer(stack, PrefixCache(0)), Batch(stack)
    long = sequence_of("abcdefghij" * 50)  # 500 chars: 32 slices
    batch.add([long] if not primer.admit(long) else [])
    slices = 0
    while long.priming:
        short = sequence_of("jihgfedcba" * 2)  # a new short prompt every slice
        assert not primer.admit(short)
        batch.add([short])
        primer.prime(batch)
        slices += 1
    assert slices == math.ceil(500 / PRIME_CHUNK)
    assert len(batch.priming_rows()) == 1  # only the newest short one is left


def test_the_same_seed_gives_the_same_text_primed_together_beside_streams(engine_of) -> None:
    stack = random_stack(units=64, vocab=40)
    engine = engine_of(stack, MEDIUM_VOCAB)
    stream = RecordingSink()
    engine.submit(GenerationRequest("ab", 400, SamplingParams(1.0), seed=1), stream)
    rng = np.random.default_rng(7)
    chars = [c for c in MEDIUM_VOCAB.chars if c.isalpha()]
    requests = [
        GenerationRequest("".join(rng.choice(chars, size=n)), 30, SamplingParams(0.9), seed=10 + n)
        for n in (3, 16, 17, 50, 120, 299)
    ]
    sinks = [RecordingSink() for _ in requests]
    for request, sink in zip(requests, sinks, strict=True):
        engine.submit(request, sink)
    for request, sink in zip(requests, sinks, strict=True):
        assert sink.wait().text == "".join(c.text for c in generate(stack, MEDIUM_VOCAB, request))
    assert stream.wait().text == "".join(
        c.text
        for c in generate(
            stack, MEDIUM_VOCAB, GenerationRequest("ab", 400, SamplingParams(1.0), seed=1)
        )
    )


def test_slices_wait_their_turn_only_while_rows_generate() -> None:
    """After a long slice priming owes the generating rows time; with none generating it owes
    nothing: one long prompt on an idle engine primes slice after slice, at its single-sequence
    speed.  Beside generating rows it still feeds one char per step."""
    # not started: its loop driven here
    engine = Engine(random_stack(units=16, vocab=len(VOCAB)), VOCAB)
    long, short = sequence_of("abcdefghij" * 30), sequence_of("ab")
    engine._loop_once([long])
    assert long.primed == PRIME_CHUNK
    engine._credit = -3600.0  # as after a slice that took an hour
    engine._loop_once([])
    assert long.primed == 2 * PRIME_CHUNK  # no row generates: priming owes nothing
    engine._loop_once([short])  # primed in the same slice, it draws its first char and generates
    assert long.primed == 3 * PRIME_CHUNK and not short.priming and short.gen.sampled == 1
    engine._credit = -3600.0
    engine._loop_once([])
    assert long.primed == 3 * PRIME_CHUNK + 1 and short.gen.sampled == 2  # a step, no slice


def test_a_prompt_cancelled_while_it_is_primed_ends_and_leaves_the_batch(engine_of) -> None:
    engine = engine_of(random_stack(units=64, vocab=40), MEDIUM_VOCAB)
    stream, long = RecordingSink(), RecordingSink()
    engine.submit(GenerationRequest("ab", 10**6, seed=1), stream)
    # 18,000 chars to prime
    ticket = engine.submit(GenerationRequest("abcdefgh " * 2000, 5, seed=2), long)
    while engine.active < 2:
        time.sleep(0.001)
    ticket.cancel()
    assert long.wait().ended_with.finish_reason == "cancelled" and long.chunks == []
    while engine.active != 1:  # the stream goes on alone; pytest's timeout stops a hang
        time.sleep(0.001)
    assert not stream.ended.is_set()
