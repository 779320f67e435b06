"""What travels between a conversation actor and the reply workers during one turn.

Plain frozen dataclasses with no heavy imports: a conversation actor unpickles them, and must not
load a database driver or HTTP client to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.turn_policy import TurnKind

# Replies that carry the conversation forward (a fixed notice is not memory).
MEMORY_KINDS = ("llm", "offline", "fallback")


@dataclass(frozen=True)
class ConversationContext:
    """The conversation, its cliente's settings and the instance replies go through."""

    conversation_id: int
    cliente_id: int
    chat_jid: str
    instance_id: str | None
    instance_api_key: str | None
    cliente: dict[str, Any]  # the cliente's behaviour columns (None = global default)


@dataclass(frozen=True)
class OutboundPart:
    message_id: int
    text: str


@dataclass(frozen=True)
class Resumable:
    """A turn whose reply was recorded but not (entirely) confirmed sent: finish sending it."""

    turn_id: int
    reply_text: str
    reply_kind: str
    unsent: tuple[OutboundPart, ...]
    message_ids: tuple[int, ...]


@dataclass(frozen=True)
class TurnPlan:
    """A claimed burst and what to do with it; handed to the actor and back."""

    turn_id: int
    context: ConversationContext
    kind: TurnKind
    user_text: str
    fixed_reply: str | None
    new_session: bool
    close_session: bool
    max_wait_s: float
    resumable: Resumable | None = None

    @property
    def needs_passages(self) -> bool:
        return self.kind is TurnKind.ANSWER and self.resumable is None


@dataclass(frozen=True)
class TurnResult:
    reply_text: str
    reply_kind: str
    delivered: bool

    @property
    def is_memory(self) -> bool:
        return self.reply_kind in MEMORY_KINDS
