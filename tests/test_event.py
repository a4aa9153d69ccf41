"""The typed events a sequence produces (model/event.py)."""

from __future__ import annotations

import typing

from model.event import Done, Finished, FinishReason, Usage
from model.sampling.generate import Generation, GenerationRequest
from model.vocab import Vocab


def test_done_carries_the_finish_reason_seed_and_usage_of_an_ended_generation() -> None:
    gen = Generation(GenerationRequest("ab", 5, seed=7), Vocab.from_chars("abc"))
    gen.cancel()
    assert Done.of(gen) == Done("cancelled", 7, Usage(prompt_chars=2, generated_chars=0))


def test_clients_see_two_finish_reasons_and_the_server_four() -> None:
    assert set(typing.get_args(Finished)) == {"length", "stop"}
    reasons = {arg for a in typing.get_args(FinishReason) for arg in (typing.get_args(a) or (a,))}
    assert reasons == {"length", "stop", "cancelled", "error"}
