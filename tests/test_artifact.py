"""Model directory: identical logits after a round trip, checked loading, atomic saving."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model.artifact import ArtifactError, load_artifact, save_artifact
from tests.conftest import ROOT, build_tiny_model_dir


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    return build_tiny_model_dir(tmp_path / "m", chars="abcdefgh \nПривет🎭")


def test_round_trip_gives_identical_logits(model_dir: Path, tmp_path: Path) -> None:
    art = load_artifact(model_dir)
    ids = np.array([[0, 3, 5, 1, 7, 2]], np.int32)
    before = np.asarray(art.model(ids))
    save_artifact(tmp_path / "copy", art.model, art.vocab, art.card)
    again = load_artifact(tmp_path / "copy")
    np.testing.assert_array_equal(np.asarray(again.model(ids)), before)
    assert again.vocab == art.vocab and again.card == art.card
    assert "🎭" in again.vocab and again.name == "tiny"


def test_saved_model_is_inference_only(model_dir: Path, tmp_path: Path) -> None:
    import zipfile

    import keras

    art = load_artifact(model_dir)
    art.model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    ids = np.zeros((2, 5), np.int32)
    art.model.train_on_batch(ids, ids)  # now it carries optimizer state
    save_artifact(tmp_path / "trained", art.model, art.vocab, art.card)
    with zipfile.ZipFile(tmp_path / "trained" / "model.keras") as zf:
        names = zf.namelist()
        config = json.loads(zf.read("config.json"))
    assert not any("optimizer" in n for n in names)
    assert not config.get("compile_config")


def test_truncated_model_is_reported_as_corrupt(model_dir: Path) -> None:
    path = model_dir / "model.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=r"model\.keras: corrupt or truncated"):
        load_artifact(model_dir)


def test_garbage_model_is_reported_as_corrupt(model_dir: Path) -> None:
    (model_dir / "model.keras").write_bytes(b"\x00" * 100)
    with pytest.raises(ArtifactError, match="corrupt or truncated"):
        load_artifact(model_dir)


@pytest.mark.parametrize("name", ["model.keras", "vocab.json", "card.json"])
def test_missing_file_is_named(model_dir: Path, name: str) -> None:
    (model_dir / name).unlink()
    with pytest.raises(ArtifactError, match=rf"{name}: missing"):
        load_artifact(model_dir)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="nowhere: model directory not found"):
        load_artifact(tmp_path / "nowhere")


def test_vocab_that_disagrees_with_the_weights_is_named(model_dir: Path) -> None:
    (model_dir / "vocab.json").write_text(json.dumps({"chars": list("abc")}), "utf-8")
    with pytest.raises(
        ArtifactError, match=r"vocab\.json: 3 chars, but .*model\.keras has \d+ embedding rows"
    ):
        load_artifact(model_dir)


def test_card_that_disagrees_is_named(model_dir: Path) -> None:
    card = json.loads((model_dir / "card.json").read_text("utf-8"))
    (model_dir / "card.json").write_text(json.dumps({**card, "vocab_size": 999}), "utf-8")
    with pytest.raises(ArtifactError, match=r"card\.json: vocab_size 999"):
        load_artifact(model_dir)
    (model_dir / "card.json").write_text("[1, 2", "utf-8")
    with pytest.raises(ArtifactError, match=r"card\.json: not a valid model card"):
        load_artifact(model_dir)


def test_failed_save_leaves_the_previous_directory(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    art = load_artifact(model_dir)
    before = (model_dir / "model.keras").read_bytes()

    def crash(self: object, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(model_dir, art.model, art.vocab, {**art.card, "name": "new"})
    assert (model_dir / "model.keras").read_bytes() == before
    assert load_artifact(model_dir).name == "tiny"
    assert [p.name for p in model_dir.parent.iterdir()] == ["m"]  # no temporary left behind


SAVE_LOOP = """
import sys
from pathlib import Path
from model.artifact import load_artifact, save_artifact
art = load_artifact(Path(sys.argv[1]))
print("ready", flush=True)
n = 0
while True:
    n += 1
    save_artifact(art.path, art.model, art.vocab, {**art.card, "name": f"save-{n}"})
"""


@pytest.mark.slow
def test_kill_during_save_leaves_a_loadable_directory(model_dir: Path) -> None:
    for delay in (0.3, 0.7, 1.1):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(model_dir)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill()
        proc.wait(10)
        art = load_artifact(model_dir)  # whatever save was in flight, the directory is whole
        assert art.name.startswith(("tiny", "save-"))
    for leftover in model_dir.parent.glob(".m.*"):
        shutil.rmtree(leftover)
