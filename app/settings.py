"""Server settings, read once from `CHARLSTM_*` environment variables (pydantic-settings).

    CHARLSTM_MODELS_DIR=model/pretrained CHARLSTM_MAX_ACTIVE=64 uvicorn app.main:app

A bad value stops start-up with one line naming the variable (`load_settings` turns
pydantic's validation error into `SystemExit`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model.engine import DEFAULT_BUDGET_BYTES

ENV_PREFIX = "CHARLSTM_"
SSE_PING_S = 15.0  # a `: ping` after this much silence keeps proxies from cutting a long stream
ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    models_dir: Path = Field(
        default=ROOT / "model" / "pretrained", description="each sub-directory is one model"
    )
    default_model: str | None = Field(
        default=None, description='null: "shakespeare" if present, else the first by name'
    )
    max_active: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="sequences generating at once, all models together",
    )
    max_queue_s: float = Field(
        default=10,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="429 when the work queued would keep a new request from its first char "
        "longer than this",
    )
    max_prompt_chars: int = Field(default=10_000, ge=0, le=1_000_000)
    max_score_chars: int = Field(
        default=20_000, ge=1, le=1_000_000, description="longest text to score or inspect"
    )
    max_chars: int = Field(default=5_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=65_536, ge=1024, le=64 * 1024 * 1024)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    coalesce_ms: float = Field(
        default=20, ge=0, le=1000, description="at most one stream event per this many ms"
    )
    prefix_cache_mb: float = Field(
        default=DEFAULT_BUDGET_BYTES / 2**20,
        ge=0,
        le=65_536,
        description="per model: states of recent texts, so Continue skips priming; 0 = off",
    )

    sse_ping_s: float = Field(
        default=SSE_PING_S, gt=0, le=3600, description="a `: ping` comment after this much silence"
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token required on /api/* and /v1/*"
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated origins that browsers may call the API from, or *"
    )
    # Slow and idle clients (app/connection.py; applied by `python -m app.serve`, `make serve`, the
    # image)
    header_timeout_s: float = Field(
        default=10,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="the request line and headers must arrive within this of the connection's "
        "start (or of a later request's first byte); else 408 and the connection closes "
        "(one that sent nothing: closed)",
    )
    body_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="the body must arrive within this of the headers' end; "
        "else 408 and the connection closes",
    )
    keep_alive_s: float = Field(
        default=5,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="an idle connection between requests is closed",
    )
    stream_buffer_bytes: int = Field(
        default=65_536,
        ge=4096,
        le=64 * 2**20,
        description="the most unsent output one response holds in the server: "
        "a stream's generation pauses there",
    )
    slow_client_s: float = Field(
        default=30,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="a client that reads nothing of a full buffer for this long is cut off "
        "(its stream cancelled)",
    )
    replica_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]+$",
        description="the X-Replica header on every response; null: the host name",
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        return None if value == "" else value  # CHARLSTM_API_KEY= (empty) means no key

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and not (
                parts.scheme in ("http", "https") and parts.netloc and not parts.path
            ):
                raise ValueError(f"{origin!r} is not an origin such as https://example.com or *")
        return origins

    @field_validator("models_dir")
    @classmethod
    def _relative_to_repo(cls, value: Path) -> Path:
        # A relative path means the same thing whatever directory uvicorn was started from.
        return value if value.is_absolute() else ROOT / value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def load_settings() -> Settings:
    """Read the environment; on a bad value exit with a message naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False, include_input=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}")
        raise SystemExit("invalid setting: " + "; ".join(lines)) from None
