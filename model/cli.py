"""Generate text from a model directory on the command line, streaming chars as they are sampled.

    python -m model --model model/pretrained/shakespeare --prompt "ROMEO:" --temperature 0.8 \\
        --max-chars 500 --seed 1 [--top-k 20] [--top-p 0.95] [--stop "\\n\\n"]

Runs the same loop as the server (model/sampling/generate.py), so a seed gives the same text here
and
there.  Bad input (a missing or broken model directory, unknown prompt chars, out-of-range
values) prints one error line naming the flag or file and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from model.limits import (
    DEFAULT_MAX_CHARS,
    DEFAULT_TEMPERATURE,
    MAX_SEED,
    MAX_STOP_CHARS,
    MAX_STOPS,
    MAX_TEMPERATURE,
)

DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "shakespeare"


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{message} (see --help)")


def _number(
    kind: Callable[[str], float], low: float, high: float, what: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: {what}")
        return value

    return parse


def _stop(text: str) -> str:
    text = text.encode("utf-8", "surrogatepass").decode("unicode_escape") if "\\" in text else text
    if not 1 <= len(text) <= MAX_STOP_CHARS:
        raise argparse.ArgumentTypeError(f"a stop string must be 1 to {MAX_STOP_CHARS} chars")
    return text


def build_parser() -> Parser:
    p = Parser(
        prog="python -m model",
        description="Sample text from a trained char-LSTM, printing each char as soon as it is "
        "released.",
        epilog="Exit status: 0 done, 2 bad input (one error line on stderr), 130 interrupted.",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        metavar="DIR",
        help="model directory holding model.keras, vocab.json and card.json "
        "(default: model/pretrained/shakespeare, the bundled model)",
    )
    p.add_argument(
        "--prompt",
        default="",
        help="text that primes the network; every char must be in the model's vocabulary "
        "(default: empty, the model's start state); it is printed before the sample",
    )
    p.add_argument(
        "--temperature",
        type=_number(float, 0, MAX_TEMPERATURE, f"a number from 0 to {MAX_TEMPERATURE:g}"),
        default=DEFAULT_TEMPERATURE,
        metavar="T",
        help="0 = always the most likely char (greedy); below 1 safer, above 1 wilder "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--max-chars",
        type=_number(int, 1, 10**7, "a whole number ≥ 1"),
        default=DEFAULT_MAX_CHARS,
        metavar="N",
        help="how many chars to sample at most (default: %(default)s)",
    )
    p.add_argument(
        "--top-k",
        type=_number(int, 1, 10**6, "a whole number ≥ 1"),
        default=None,
        metavar="K",
        help="sample only among the K most likely chars (default: off)",
    )
    p.add_argument(
        "--top-p",
        type=_number(float, 1e-12, 1, "a number in (0, 1]"),
        default=None,
        metavar="P",
        help="nucleus sampling: only the most likely chars whose mass reaches P (default: off)",
    )
    p.add_argument(
        "--seed",
        type=_number(int, 0, MAX_SEED - 1, "a whole number from 0 to 2**63-1"),
        default=None,
        help="random seed: the same model, prompt, settings and seed give the same text "
        "(default: drawn at random and printed on stderr)",
    )
    p.add_argument(
        "--stop",
        type=_stop,
        action="append",
        default=[],
        metavar="TEXT",
        help=f"end the sample before TEXT (not printed); repeat for up to {MAX_STOPS}; "
        "backslash escapes such as \\n are understood",
    )
    p.add_argument(
        "--no-prompt", action="store_true", help="print only the sample, not the prompt before it"
    )
    return p


def run(argv: list[str] | None = None, out: Callable[[str], None] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.stop) > MAX_STOPS:
        raise UsageError(f"argument --stop: at most {MAX_STOPS} stop strings")
    from model.artifact import CARD_FILE, MODEL_FILE, VOCAB_FILE, ArtifactError, load_artifact
    from model.cells.stack import LSTMStack
    from model.runtime import configure, import_tensorflow
    from model.sampling.generate import GenerationRequest, draw_seed, generate
    from model.sampling.params import SamplingParams
    from model.vocab import Vocab, VocabError

    try:  # the cheap checks first: loading the network imports TensorFlow, which takes seconds
        if not args.model.is_dir():
            raise ArtifactError(f"{args.model}: model directory not found")
        for name in (MODEL_FILE, VOCAB_FILE, CARD_FILE):
            if not (args.model / name).is_file():
                raise ArtifactError(f"{args.model / name}: missing")
        vocab = Vocab.load(args.model / VOCAB_FILE)
    except (ArtifactError, VocabError) as exc:
        raise UsageError(f"argument --model: {exc}") from None
    unknown = vocab.unknown(args.prompt)
    if unknown:
        raise UsageError(f"argument --prompt: chars not in the model's vocabulary: {unknown!r}")
    configure()  # numba: kernel cache, threading layer (model/runtime)
    # before Keras: its load-time chatter is not an error (model/runtime/native_log.py)
    import_tensorflow(min_level=3)
    try:
        artifact = load_artifact(args.model)
    except ArtifactError as exc:
        raise UsageError(f"argument --model: {exc}") from None
    seed = draw_seed() if args.seed is None else int(args.seed)
    if args.seed is None:
        print(f"seed: {seed}", file=sys.stderr, flush=True)
    stack = LSTMStack.from_keras(artifact.model)
    sampling = SamplingParams(args.temperature, args.top_k, args.top_p)
    request = GenerationRequest(
        args.prompt, int(args.max_chars), sampling, tuple(args.stop), seed=seed
    )
    write = out or _stdout
    if args.prompt and not args.no_prompt:
        write(args.prompt)
    for chunk in generate(stack, artifact.vocab, request):
        write(chunk.text)
    write("\n")
    return 0


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"python -m model: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `python -m model ... | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
