"""Masking a customer's phone number wherever it would be written down (logs)."""

from __future__ import annotations

KEEP_FIRST = 5  # country + area code: where a customer writes from, not who
KEEP_LAST = 4  # enough to tell two chats apart when reading logs


def mask_jid(jid: str) -> str:
    """`5511987654321@s.whatsapp.net` -> `55119****4321@s.whatsapp.net`: the user part keeps its
    first 5 and last 4 characters (only the last 4 when it is shorter than 11); the domain stays.
    """
    user, at, domain = jid.partition("@")
    if len(user) >= KEEP_FIRST + KEEP_LAST + 2:
        hidden = len(user) - KEEP_FIRST - KEEP_LAST
        user = user[:KEEP_FIRST] + "*" * hidden + user[-KEEP_LAST:]
    elif len(user) > KEEP_LAST:
        user = "*" * (len(user) - KEEP_LAST) + user[-KEEP_LAST:]
    else:
        user = "*" * len(user)
    return user + at + domain


def mask_session_id(session_id: str) -> str:
    """`cliente_7_5511987654321@s.whatsapp.net` -> `cliente_7_55119****4321@s.whatsapp.net`."""
    prefix, sep, rest = session_id.partition("_")
    cliente, sep2, chat = rest.partition("_")
    if prefix != "cliente" or not (sep and sep2 and cliente.isdigit()):
        return mask_jid(session_id)
    return f"cliente_{cliente}_{mask_jid(chat)}"
