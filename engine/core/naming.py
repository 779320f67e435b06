"""Names of persisted and addressable things, all keyed by cliente (isolation by construction)."""

from __future__ import annotations


def get_collection_name(cliente_id: int) -> str:
    """The Chroma collection (and retriever actor name) that holds one cliente's knowledge."""
    return f"tenant_{int(cliente_id)}"


def session_id(cliente_id: int, chat_jid: str) -> str:
    """The conversation's session id, also the name of its Ray actor: `cliente_{id}_{chat}`."""
    if not chat_jid:
        raise ValueError("chat_jid is required")
    return f"{session_id_prefix(cliente_id)}{chat_jid}"


def session_id_prefix(cliente_id: int) -> str:
    """What every session id (and conversation actor name) of one cliente starts with."""
    return f"cliente_{int(cliente_id)}_"


def reply_worker_name(index: int) -> str:
    return f"reply_worker_{index}"


EMBEDDER_NAME = "embedder"
SUPERVISOR_NAME = "supervisor"
CONVERSATION_SLOT = "conversation_slot"  # Ray resource: each node offers MAX_LIVE_CONVERSATIONS


def cliente_of_session(session_id: str) -> int | None:
    """The cliente id in a session id (`cliente_{id}_{chat}`); None if it is not one."""
    prefix, _, rest = session_id.partition("_")
    cliente, sep, chat = rest.partition("_")
    if prefix != "cliente" or not sep or not chat or not cliente.isdigit():
        return None
    return int(cliente)
