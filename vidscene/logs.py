"""Structured logging: every record carries its ``extra`` context (scene, stage, job...) as key=value pairs,
or as one JSON object per line with ``VIDSCENE_LOG_JSON=1`` for log shippers."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ctx = _context(record)
        if not ctx:
            return base
        pairs = " ".join(f"{k}={v}" for k, v in ctx.items())
        head, sep, tail = base.partition("\n")
        return f"{head} [{pairs}]{sep}{tail}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                               "message": record.getMessage(), **_context(record)}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str | int = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("VIDSCENE_LOG_JSON") == "1":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pycolmap/numba/PIL are chatty at INFO/DEBUG.
    for noisy in ("numba", "PIL", "multipart", "kombu", "amqp", "celery.worker.consumer.mingle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
