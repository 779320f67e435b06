"""Structured logs: one JSON object per line, naming the cliente and chat a line is about.

Use `log.info("message", extra={"cliente_id": 1, "chat": "5511…@s.whatsapp.net"})`; every key
given in `extra` becomes a field.
"""

from __future__ import annotations

import json
import logging
import time

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send Conversa's loggers to stderr as JSON lines (idempotent; safe in every Ray worker)."""
    logger = logging.getLogger("engine")
    serve_logger = logging.getLogger("serve_app")
    for target in (logger, serve_logger):
        target.setLevel(level.upper())
        if not any(isinstance(h.formatter, JsonFormatter) for h in target.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            target.addHandler(handler)
        target.propagate = False
