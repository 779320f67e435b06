"""What the web console decides without I/O: a chat's state as a business reads it, the weekly
business-hours editor's text form, and the session's signed token (bound to the API key or the
operator token it was opened with). Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.core.business_hours import DAYS

# --- a chat's state ---------------------------------------------------------------------------


class ChatState(StrEnum):
    """Most urgent first: what a person at the business should look at."""

    FAILED_SENDS = "failed_sends"  # a reply was dead-lettered: the customer did not get it
    NEEDS_HUMAN = "needs_human"  # the bot did not know and asked for a person
    PAUSED_BY_HUMAN = "paused_by_human"  # someone answered (phone or console): bot silent
    PAUSED_BY_OPERATOR = "paused_by_operator"  # paused from the API or the console
    BOT = "bot"  # the bot answers


def chat_state(
    *,
    now: datetime,
    paused_until: datetime | None,
    paused_by: str | None,
    needs_human_since: datetime | None,
    failed_sends: int,
) -> ChatState:
    if failed_sends > 0:
        return ChatState.FAILED_SENDS
    if needs_human_since is not None:
        return ChatState.NEEDS_HUMAN
    if paused_until is not None and paused_until > now:
        return ChatState.PAUSED_BY_HUMAN if paused_by == "human" else ChatState.PAUSED_BY_OPERATOR
    return ChatState.BOT


# --- the weekly business-hours editor -----------------------------------------------------------

_INTERVAL = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$")


def weekly_to_text(business_hours: Mapping[str, Any] | None) -> dict[str, str]:
    """One text box per day, "09:00-12:00, 13:00-18:00"; empty = closed."""
    weekly = (business_hours or {}).get("weekly", {})
    return {day: ", ".join(f"{a}-{b}" for a, b in weekly.get(day, [])) for day in DAYS}


def weekly_from_text(timezone: str, days: Mapping[str, str]) -> dict[str, Any] | None:
    """The business_hours JSON from the editor's boxes; None when every day is empty (no hours:
    always open). ValueError names the day and the text that is not "HH:MM-HH:MM"."""
    weekly: dict[str, list[list[str]]] = {}
    for day in DAYS:
        text = (days.get(day) or "").strip()
        if not text:
            continue
        intervals = []
        for part in text.split(","):
            found = _INTERVAL.match(part)
            if found is None:
                raise ValueError(f"{day}: {part.strip()!r} is not HH:MM-HH:MM")
            intervals.append([_two_digits(found[1]), _two_digits(found[2])])
        weekly[day] = intervals
    if not weekly:
        return None
    return {"timezone": timezone.strip(), "weekly": weekly}


def _two_digits(hhmm: str) -> str:
    hours, minutes = hhmm.split(":")
    return f"{int(hours):02d}:{minutes}"


# --- the session token --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleSession:
    """Who signed in. `key_sha256`: the API key's hash (a cliente's session; the key itself is
    never kept) so that revoking the key ends the session; `operator`: signed in with the
    operator token, `cliente_id` then being the cliente they are looking at (None: none yet)."""

    cliente_id: int | None
    key_sha256: str | None
    operator: bool
    csrf: str
    issued_at: float


def seal_session(session: ConsoleSession, *, secret: bytes) -> str:
    """`payload.signature`, both base64url; the signature is HMAC-SHA256 over the payload."""
    payload = json.dumps(
        {
            "c": session.cliente_id,
            "k": session.key_sha256,
            "o": session.operator,
            "x": session.csrf,
            "t": session.issued_at,
        },
        separators=(",", ":"),
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(body, secret)}"


def open_session(
    token: str | None, *, secret: bytes, now: float, ttl_s: float
) -> ConsoleSession | None:
    """The session in a cookie, or None when it is missing, forged, malformed or expired."""
    if not token or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(body, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = ConsoleSession(
            cliente_id=data["c"] if isinstance(data["c"], int) else None,
            key_sha256=data["k"] if isinstance(data["k"], str) else None,
            operator=data["o"] is True,
            csrf=str(data["x"]),
            issued_at=float(data["t"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not 0 <= now - session.issued_at <= ttl_s:
        return None
    if not session.operator and (session.key_sha256 is None or session.cliente_id is None):
        return None
    return session


def _sign(body: str, secret: bytes) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def session_secret(secrets_key: str, admin_token: str) -> bytes:
    """The signing key: derived from SECRETS_KEY and the operator token, so changing either ends
    every console session (an operator's session is bound to the token it was opened with)."""
    return hashlib.sha256(f"conversa-console\0{secrets_key}\0{admin_token}".encode()).digest()


def served_over_https(scheme: str, forwarded_proto: str | None, *, trust_forwarded: bool) -> bool:
    """Whether the browser reached us over HTTPS (the cookie is then `Secure`). Anyone can send
    `X-Forwarded-Proto`, and uvicorn behind Serve's local proxy rewrites the scheme from it, so
    while the header is not trusted a request carrying it proves nothing either way."""
    if forwarded_proto:
        if not trust_forwarded:
            return False
        return forwarded_proto.split(",")[0].strip().lower() == "https"
    return scheme == "https"
