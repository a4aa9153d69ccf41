"""`python -m model`: streams the sample, reproducible with --seed, one clear line for bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model.cli import main, run
from tests.conftest import ROOT


def sample(model_dir: Path, *args: str) -> str:
    parts: list[str] = []
    assert run(["--model", str(model_dir), *args], out=parts.append) == 0
    return "".join(parts)


def test_prompt_then_sample_reproducible_with_a_seed(tiny_model_dir: Path) -> None:
    text = sample(tiny_model_dir, "--prompt", "ROMEO:", "--max-chars", "60", "--seed", "5")
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 60 + 1  # + the final newline
    assert sample(tiny_model_dir, "--prompt", "ROMEO:", "--max-chars", "60", "--seed", "5") == text
    only = sample(
        tiny_model_dir, "--prompt", "ROMEO:", "--max-chars", "60", "--seed", "5", "--no-prompt"
    )
    assert only == text[len("ROMEO:") :]


def test_greedy_top_k_top_p_and_stop(tiny_model_dir: Path) -> None:
    greedy = sample(
        tiny_model_dir, "--prompt", "A", "--temperature", "0", "--max-chars", "40", "--no-prompt"
    )
    assert greedy == sample(
        tiny_model_dir, "--prompt", "A", "--temperature", "0", "--max-chars", "40", "--no-prompt"
    )
    text = sample(
        tiny_model_dir, "--max-chars", "300", "--seed", "2", "--top-k", "3", "--top-p", "0.9"
    )
    assert len(text) == 301
    cut = text[
        100:102
    ]  # a stop string that occurs: the sample ends right before its first occurrence
    stopped = sample(
        tiny_model_dir,
        "--max-chars",
        "300",
        "--seed",
        "2",
        "--top-k",
        "3",
        "--top-p",
        "0.9",
        "--stop",
        cut,
    )
    assert stopped == text[: text.index(cut)] + "\n"


def test_drawn_seed_is_reported_on_stderr(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample(tiny_model_dir, "--max-chars", "5")
    err = capsys.readouterr().err
    assert err.startswith("seed: ") and int(err.split()[1]) >= 0


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--model", "/no/such/dir"], ["--model", "/no/such/dir"]),
        (["--prompt", "ROMEO@"], ["--prompt", "'@'"]),
        (["--temperature", "-1"], ["--temperature"]),
        (["--temperature", "nan"], ["--temperature"]),
        (["--temperature", "1e999"], ["--temperature"]),
        (["--max-chars", "0"], ["--max-chars"]),
        (["--max-chars", "ten"], ["--max-chars"]),
        (["--top-k", "0"], ["--top-k"]),
        (["--top-p", "1.5"], ["--top-p"]),
        (["--seed", "-3"], ["--seed"]),
        (["--stop", ""], ["--stop"]),
        (["--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"], ["--stop"]),
        (["--nonsense"], ["--nonsense"]),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(
    args: list[str], names: list[str], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = [] if "--model" in args else ["--model", str(tiny_model_dir)]
    assert main([*model, *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("python -m model: error:")
    assert "Traceback" not in err and all(name in err for name in names)


def test_a_model_dir_missing_a_file_is_named(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.keras", "card.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    assert main(["--model", str(broken)]) == 2
    assert "vocab.json: missing" in capsys.readouterr().err


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--prompt",
        "--temperature",
        "--max-chars",
        "--top-k",
        "--top-p",
        "--seed",
        "--stop",
    ):
        assert flag in text


@pytest.mark.slow
def test_the_module_streams_to_stdout_while_it_samples(tiny_model_dir: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "model",
        "--model",
        str(tiny_model_dir),
        "--prompt",
        "A",
        "--max-chars",
        "10000000",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = proc.stdout.read(50)  # arrives long before ten million chars could be done
        assert len(first) == 50 and first.startswith(b"A")
        assert proc.poll() is None  # still sampling: the first chars came before the end
    finally:
        proc.kill()
        proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    # nothing else: TensorFlow's load-time lines stay off stderr
    assert re.fullmatch(r"seed: \d+\n", err), err


@pytest.mark.slow
def test_the_module_exits_2_with_one_line_for_bad_input() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model", "--model", "/no/such/dir"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "python -m model: error: argument --model: /no/such/dir: model directory not found"
    ]
