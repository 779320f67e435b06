"""Log lines are JSON objects naming the cliente, the chat (masked) and the message."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from engine.logs import ConversaJsonFormatter, configure_logging


class Captured(logging.Logger):
    stream: io.StringIO


@pytest.fixture
def lines() -> Iterator[Captured]:
    """A logger writing through Conversa's formatter into a buffer."""
    logger = logging.getLogger("engine.test_logs")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConversaJsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.stream = stream  # type: ignore[attr-defined]
    yield logger  # type: ignore[misc]
    logger.removeHandler(handler)


def _read(lines: Captured) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines.stream.getvalue().splitlines()]


def test_a_line_carries_the_cliente_the_masked_chat_and_the_message_id(lines: Captured) -> None:
    lines.info(
        "webhook",
        extra={
            "cliente_id": 7,
            "chat": "5511987654321@s.whatsapp.net",
            "session_id": "cliente_7_5511987654321@s.whatsapp.net",
            "message_id": 42,
        },
    )
    (line,) = _read(lines)
    assert line["msg"] == "webhook" and line["level"] == "INFO"
    assert line["logger"] == "engine.test_logs"
    assert line["cliente_id"] == 7 and line["message_id"] == 42
    assert line["chat"] == "55119****4321@s.whatsapp.net"
    assert line["session_id"] == "cliente_7_55119****4321@s.whatsapp.net"
    assert str(line["ts"]).endswith("Z") and "T" in str(line["ts"])


def test_a_number_in_any_masked_field_never_appears_whole(lines: Captured) -> None:
    lines.warning(
        "x", extra={"chat_jid": "5511987654321@s.whatsapp.net", "number": "5511987654321"}
    )
    raw = lines.stream.getvalue()
    assert "987654321" not in raw and "98765" not in raw


def test_an_exception_is_one_line_with_its_traceback_and_text_stays_readable(
    lines: Captured,
) -> None:
    try:
        raise ValueError("não")
    except ValueError:
        lines.exception("ingestão falhou", extra={"cliente_id": 1, "chat": None})
    (line,) = _read(lines)
    assert line["msg"] == "ingestão falhou" and line["chat"] is None
    assert "ValueError: não" in str(line["traceback"])


def test_configuring_twice_adds_no_second_handler() -> None:
    configure_logging("INFO")
    configure_logging("DEBUG")
    handlers = logging.getLogger("engine").handlers
    assert sum(isinstance(h.formatter, ConversaJsonFormatter) for h in handlers) == 1
    assert logging.getLogger("engine").level == logging.DEBUG
