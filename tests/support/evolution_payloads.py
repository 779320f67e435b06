"""Evolution v2 `messages.upsert` bodies shaped like shared/reference/evolution-api.md §2.5."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

_counter = itertools.count(1)


def new_key_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def upsert(
    instance: str,
    *,
    remote_jid: str,
    message: dict[str, Any],
    from_me: bool = False,
    key_id: str | None = None,
    timestamp: int | None = None,
    sender: str = "5511912345678@s.whatsapp.net",
    key_extra: dict[str, Any] | None = None,
    message_type: str = "conversation",
    push_name: str = "Maria Souza",
) -> dict[str, Any]:
    return {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {
                "remoteJid": remote_jid,
                "fromMe": from_me,
                "id": key_id or new_key_id(),
                **(key_extra or {}),
            },
            "pushName": push_name,
            "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
            "message": message,
            "messageType": message_type,
            "messageTimestamp": timestamp if timestamp is not None else int(time.time()),
            "instanceId": "4f0c2a7e-9a61-4c1e-8d0e-2b9f6a3c1d22",
            "source": "android",
        },
        "destination": "http://127.0.0.1/webhooks/evolution",
        "date_time": "2025-10-21T12:20:00.512Z",
        "sender": sender,
        "server_url": "http://127.0.0.1:8080",
        "apikey": None,
    }


def text(instance: str, chat: str, body: str, **kwargs: Any) -> dict[str, Any]:
    return upsert(instance, remote_jid=chat, message={"conversation": body}, **kwargs)


def new_chat() -> str:
    """A fresh private chat JID (a Brazilian mobile number)."""
    return f"55119{next(_counter):04d}{uuid.uuid4().int % 10000:04d}@s.whatsapp.net"


def body_reader(payload: Any) -> Callable[[], Awaitable[bytes]]:
    """`read_body` for `EvolutionInbox.handle` called without HTTP: the payload as JSON bytes."""

    async def read() -> bytes:
        return json.dumps(payload).encode()

    return read
