"""The server's log lines: stamped with the time, through the standard `logging` tree.

    uvicorn app.main:app                                # app.* lines: time, level, logger, message
    uvicorn app.main:app --log-config docs/log-config.json     # JSON lines for every logger

Each module logs to `logging.getLogger("app.<module>")`.  When nothing is configured for them (no
handler on "app" or on the root logger), `configure_logging` gives "app" one stderr handler with
timestamps; when uvicorn's `--log-config` (or the embedding program) has set handlers, the lines go
there instead, so one config routes uvicorn's and the server's lines alike. `JsonFormatter` writes
one JSON object per line (`"()": "app.logs.JsonFormatter"` in a config).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message"} (+ "exception") on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    """Set the "app" loggers' level; give them a timestamped stderr handler if no config did."""
    logger = logging.getLogger("app")
    logger.setLevel(level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        logger.addHandler(handler)
