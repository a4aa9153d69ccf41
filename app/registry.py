"""Load every model directory under the models dir once, each with its own engine thread.

    registry = load_registry(settings)     # slow (Keras reads the weights); lifespan only
    registry.start(); model = registry.get("shakespeare"); ...; registry.stop()

A directory that cannot be used (missing, truncated or inconsistent files) stops start-up
with `StartupError`, whose message names the file; nothing is served half-loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import NOT_FOUND, ApiError
from app.settings import ENV_PREFIX, Settings
from model.vocab import Vocab

log = logging.getLogger("app.registry")
PREFERRED_DEFAULT = "shakespeare"


# Card entries /api/models passes on as they are; the rest (hyperparameters with the training
# machine's paths, hardware, versions) stays in the card file.
PUBLIC_CARD_KEYS = (
    "held_out_loss_nats",
    "held_out_bits_per_char",
    "epochs_run",
    "steps_per_epoch",
    "train_seconds",
    "weights",
    "created",
    "notes",
)


class StartupError(RuntimeError):
    """The server cannot start; the message says which file or setting is at fault."""


@dataclass
class LoadedModel:
    name: str
    vocab: Vocab
    card: dict[str, Any]
    params: int
    engine: Any  # model.engine.Engine; typed loosely so importing this module stays cheap
    created: int = field(default=0)  # Unix time of the directory, for /v1/models
    path: Path | None = (
        None  # the model directory (its optional files: cells.json, the memorisation index)
    )
    keras: Any = None  # the Keras model, for gradients (/api/influence); generation never uses it
    influence: Any = None  # model.reading.influence.Influence, built at the first request

    def info(self, default: bool) -> dict[str, Any]:
        """What a client needs to pick and describe the model: no host paths, no platform strings
        (the card file keeps the whole record)."""
        card, corpus = self.card, self.card.get("corpus") or {}
        cell = getattr(getattr(self.engine, "stack", None), "cell", None) or (
            card.get("config") or {}
        ).get("cell", "lstm")
        info = {k: card[k] for k in PUBLIC_CARD_KEYS if k in card}
        info["config"] = {**(card.get("config") or {}), "cell": cell}
        if isinstance(corpus, dict):
            info["corpus"] = {
                k: corpus[k] for k in ("name", "chars", "held_out_chars", "sha256") if k in corpus
            }
        return {
            **info,
            "name": self.name,
            "default": default,
            "cell": cell,
            "vocab_size": len(self.vocab),
            "params": self.params,
            "chars": list(self.vocab.chars),
        }  # a char's index is its id


class ModelRegistry:
    def __init__(self, models: dict[str, LoadedModel], default: str):
        self.models, self.default = models, default

    def get(self, name: str | None) -> LoadedModel:
        model = self.models.get(self.default if name is None else name)
        if model is None:
            # Never echo the name back: list what exists instead.
            raise ApiError(
                404,
                f"unknown model; available: {sorted(self.models)}",
                NOT_FOUND,
                "model",
                "model_not_found",
            )
        return model

    def start(self) -> None:
        for model in self.models.values():
            model.engine.start()

    def stop(self, timeout: float = 5.0) -> None:
        for model in self.models.values():
            model.engine.stop(timeout)

    @property
    def queued(self) -> int:
        return sum(int(m.engine.queued) for m in self.models.values())

    @property
    def generating(self) -> int:
        """Sequences the engines are stepping now (a cancelled one leaves within one step)."""
        return sum(int(m.engine.active) for m in self.models.values())


def model_dirs(models_dir: Path) -> list[Path]:
    """The model directories: `models_dir` itself if it is one, else its visible sub-directories."""
    from model.artifact import CARD_FILE, MODEL_FILE

    if not models_dir.is_dir():
        raise StartupError(f"{models_dir}: models directory not found (set {ENV_PREFIX}MODELS_DIR)")
    if (models_dir / MODEL_FILE).exists() or (models_dir / CARD_FILE).exists():
        return [models_dir]
    # Hidden entries are save_artifact's temporary siblings, never models.
    dirs = sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise StartupError(f"{models_dir}: no model directories in it (set {ENV_PREFIX}MODELS_DIR)")
    return dirs


def load_model(path: Path, max_active: int, prefix_cache_mb: float | None = None) -> LoadedModel:
    from model.artifact import ArtifactError, load_artifact
    from model.cells import LSTMStack
    from model.engine import Engine

    try:
        artifact = load_artifact(path)
    except ArtifactError as exc:
        raise StartupError(str(exc)) from None
    stack = LSTMStack.from_keras(artifact.model)
    params = artifact.card.get("params")
    if not isinstance(params, int):
        params = int(artifact.model.count_params())
    # Generation runs on the compiled stack only; the Keras model stays for /api/influence.
    # The engine's own limit matches admission's, so a just-cancelled sequence that is still
    # leaving (one step) queues a newcomer for that step rather than overfilling the batch.
    options = (
        {} if prefix_cache_mb is None else {"prefix_cache_bytes": int(prefix_cache_mb * 2**20)}
    )
    engine = Engine(stack, artifact.vocab, name=artifact.name, max_active=max_active, **options)
    created = int(path.stat().st_mtime)
    return LoadedModel(
        artifact.name, artifact.vocab, artifact.card, params, engine, created, path, artifact.model
    )


def load_registry(settings: Settings) -> ModelRegistry:
    models: dict[str, LoadedModel] = {}
    where: dict[str, Path] = {}
    for path in model_dirs(settings.models_dir):
        model = load_model(path, settings.max_active, settings.prefix_cache_mb)
        if model.name in models:
            raise StartupError(
                f"{path}: model name {model.name!r} is also used by {where[model.name]}"
            )
        models[model.name], where[model.name] = model, path
        log.info(
            "loaded model %s from %s (%d params, %d chars)",
            model.name,
            path,
            model.params,
            len(model.vocab),
        )
    default = settings.default_model
    if default is None:
        default = PREFERRED_DEFAULT if PREFERRED_DEFAULT in models else sorted(models)[0]
    elif default not in models:
        raise StartupError(
            f"{ENV_PREFIX}DEFAULT_MODEL: no model of that name in {settings.models_dir}"
        )
    return ModelRegistry(models, default)
