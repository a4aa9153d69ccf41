"""The generation loop: stop strings, max_chars, logprobs and seeds, on scripted and tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.event import Chunk
from model.sampling.generate import Generation, GenerationRequest, generate
from model.sampling.params import SamplingParams
from model.sampling.sampler import log_softmax
from model.vocab import Vocab

VOCAB = Vocab.from_chars("abcdexENDX \n")


class ScriptedStepper:
    """A 'network' whose next char is always the next char of a script (as greedy picks it)."""

    def __init__(self, script: str, vocab: Vocab = VOCAB):
        self.ids = vocab.encode(script)
        self.vocab = vocab
        self.dense_b = np.zeros(len(vocab), np.float32)
        self.pos = 0

    def _logits(self) -> np.ndarray:
        logits = np.linspace(0, 1, len(self.vocab)).astype(np.float32)  # a spread for logprobs
        logits[self.ids[self.pos % len(self.ids)]] = 5.0
        self.pos += 1
        return logits

    def zero_state(self, batch: int = 1) -> None:
        return None

    def prime(self, ids: np.ndarray, state: object = None) -> tuple[np.ndarray, None]:
        return self._logits(), None

    def step(self, ids: np.ndarray, state: object) -> np.ndarray:
        return self._logits()[None]


def run(script: str, prompt: str = "a", **kwargs) -> list[Chunk]:
    kwargs.setdefault("sampling", SamplingParams(0.0))
    request = GenerationRequest(prompt=prompt, **kwargs)
    return list(generate(ScriptedStepper(script), VOCAB, request))


def finish_of(script: str, **kwargs) -> tuple[str, str]:
    gen_box: list[Generation] = []
    request = GenerationRequest(prompt="a", sampling=SamplingParams(0.0), **kwargs)
    text = "".join(
        c.text for c in generate(ScriptedStepper(script), VOCAB, request, on_start=gen_box.append)
    )
    assert gen_box[0].emitted == len(text)
    return text, str(gen_box[0].finish_reason)


def test_max_chars_counts_generated_chars() -> None:
    assert finish_of("abcde", max_chars=7) == ("abcdeab", "length")
    assert finish_of("abcde", max_chars=1) == ("a", "length")


def test_stop_string_is_cut_and_never_emitted() -> None:
    assert finish_of("abcENDab", max_chars=50, stop=("END",)) == ("abc", "stop")
    assert finish_of("Eabc", max_chars=50, stop=("E",)) == ("", "stop")  # at the very first char


def test_stop_string_spanning_chunks_is_held_back_then_released_when_it_fails() -> None:
    chunks = run("abENxEND", max_chars=50, stop=("END",))
    texts = [c.text for c in chunks]
    assert "".join(texts) == "abENx"
    assert texts == ["a", "b", "ENx"]  # 'E', 'N' were held until 'x' ruled the stop string out
    # a possible stop prefix is never shown early
    assert not any(t.endswith(("E", "EN")) for t in texts)


def test_stop_string_that_never_completes_is_released_at_the_end() -> None:
    assert finish_of("abcEND", max_chars=6, stop=("ENDING",)) == ("abcEND", "length")


def test_the_first_stop_string_to_complete_wins() -> None:
    assert finish_of("xabcdX", max_chars=50, stop=("abcd", "bc")) == ("xa", "stop")
    assert finish_of("xabcdX", max_chars=50, stop=("cd", "abcde")) == ("xab", "stop")


def test_logprobs_have_one_entry_per_emitted_char() -> None:
    chunks = run("abENxEND", max_chars=50, stop=("END",), logprobs=3)
    entries = [e for c in chunks for e in (c.logprobs or [])]
    assert "".join(e["char"] for e in entries) == "abENx"
    for e in entries:
        # what the model said for that char
        expected = log_softmax(ScriptedStepper(e["char"])._logits())
        assert len(e["top"]) == 3 and e["top"][0][0] == e["char"]
        assert e["logprob"] == pytest.approx(float(expected.max()), abs=1e-4)
        assert [lp for _, lp in e["top"]] == sorted((lp for _, lp in e["top"]), reverse=True)
    assert run("ab", max_chars=3)[0].logprobs is None  # only when asked for


def test_cancel_drops_held_back_chars() -> None:
    gen = Generation(GenerationRequest(max_chars=10, stop=("END",)), VOCAB)
    logits = np.zeros(len(VOCAB), np.float32)
    assert gen.accept(VOCAB.chars.index("E"), logits).text == ""
    gen.cancel()
    assert gen.finish_reason == "cancelled" and gen.emitted == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_chars": 0},
        {"max_chars": True},
        {"logprobs": 6},
        {"seed": -1},
        {"seed": 2**63},
        {"stop": ("",)},
    ],
)
def test_bad_requests_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GenerationRequest(**kwargs)


def test_seeded_generation_on_a_tiny_model_is_reproducible(tiny_model_dir: Path) -> None:
    from model.artifact import load_artifact
    from model.cells.stack import LSTMStack

    art = load_artifact(tiny_model_dir)
    stack = LSTMStack.from_keras(art.model)

    def text(seed: int, prompt: str = "ROMEO:") -> str:
        request = GenerationRequest(prompt, 120, SamplingParams(1.0, top_p=0.95), seed=seed)
        return "".join(c.text for c in generate(stack, art.vocab, request))

    first = text(7)
    assert len(first) == 120 and set(first) <= set(art.vocab.chars)
    assert text(7) == first
    assert text(8) != first
    assert text(7, prompt="") != first  # the prompt primes the state
    seeds: list[int] = []
    drawn = "".join(
        c.text
        for c in generate(
            stack, art.vocab, GenerationRequest("A", 30), on_start=lambda g: seeds.append(g.seed)
        )
    )
    assert 0 <= seeds[0] < 2**63 and len(drawn) == 30
