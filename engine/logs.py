"""Structured logs: one JSON object per line (python-json-logger), naming the cliente, the chat
(masked) and the message a line is about.

Use `log.info("message", extra={"cliente_id": 1, "chat": "5511…@s.whatsapp.net"})`; every key
given in `extra` becomes a field. A customer's number never reaches a log line whole: the
fields in `MASKED` are masked here, once, whoever logged them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from engine.core.masking import mask_jid, mask_session_id

MASKED: dict[str, Callable[[str], str]] = {
    "chat": mask_jid,
    "chat_jid": mask_jid,
    "number": mask_jid,
    "session_id": mask_session_id,
}
FIELDS = ("asctime", "levelname", "name", "message")
RENAMED = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"}


class ConversaJsonFormatter(JsonFormatter):
    """JSON lines with `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, the extra fields, and
    `traceback` for an exception."""

    converter = time.gmtime  # type: ignore[assignment]  # timestamps in UTC

    def __init__(self) -> None:
        super().__init__(
            list(FIELDS),
            rename_fields={**RENAMED, "exc_info": "traceback"},
            datefmt="%Y-%m-%dT%H:%M:%S",
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{super().formatTime(record, datefmt)}.{int(record.msecs):03d}Z"

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key, mask in MASKED.items():
            value = log_data.get(key)
            if isinstance(value, str) and value:
                log_data[key] = mask(value)
        return log_data


def configure_logging(level: str = "INFO") -> None:
    """Send Conversa's loggers to stderr as JSON lines (idempotent; safe in every Ray worker)."""
    for name in ("engine", "serve_app"):
        target = logging.getLogger(name)
        target.setLevel(level.upper())
        if not any(isinstance(h.formatter, ConversaJsonFormatter) for h in target.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(ConversaJsonFormatter())
            target.addHandler(handler)
        target.propagate = False
