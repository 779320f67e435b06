"""What travels between the ingress, a conversation actor and the reply workers.

Plain frozen dataclasses with no heavy imports: a conversation actor unpickles them, and must not
load a database driver or HTTP client to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.core.behaviour import Behaviour
from engine.core.debounce import BurstMessage, DebouncePolicy
from engine.core.turn_policy import TurnDecision, TurnKind


@dataclass(frozen=True)
class Delivery:
    """An accepted customer message, handed to its conversation actor (by the ingress after the
    ack, or by recovery)."""

    cliente_id: int
    conversation_id: int
    session_id: str  # also the actor's name: `cliente_{id}_{chat}`
    chat_jid: str
    message: BurstMessage
    policy: DebouncePolicy


class ReplyKind(StrEnum):
    """What produced a reply (stored in `turns.reply_kind`)."""

    LLM = "llm"
    OFFLINE = "offline"  # no model configured: the passages, labelled
    FALLBACK = "fallback"  # the model failed: the polite fallback message
    FINISH = "finish"
    MEDIA_UNSUPPORTED = "media_unsupported"
    OUT_OF_OFFICE = "out_of_office"
    HANDOFF = "handoff"  # nothing relevant enough was retrieved: "I don't know", a human is called
    TOO_MANY_MESSAGES = "too_many_messages"  # the contact sent too much: told once, a human called
    OVER_BUDGET = "llm_budget_exceeded"  # the cliente's LLM budget of the day: a human is called

    @classmethod
    def fixed(cls, kind: TurnKind) -> ReplyKind:
        """The kind of a fixed reply (no model involved) for a turn of this kind."""
        return cls(kind.value)


# Replies that carry the conversation forward (a fixed notice is not memory).
MEMORY_KINDS = frozenset({ReplyKind.LLM, ReplyKind.OFFLINE, ReplyKind.FALLBACK})


@dataclass(frozen=True)
class ConversationContext:
    """The conversation, its cliente's effective behaviour and the instance replies go through."""

    conversation_id: int
    cliente_id: int
    chat_jid: str
    instance_id: str | None
    instance_api_key: str | None
    behaviour: Behaviour


@dataclass(frozen=True)
class OutboundPart:
    message_id: int
    text: str
    claimed: bool = False  # claimed for its first send by the transaction that recorded it


@dataclass(frozen=True)
class TurnPlan:
    """A claimed burst and what to do with it; handed to the actor and back.

    The turn is owned by `lease_owner` until its lease expires; the reply worker renews the lease
    while it produces the reply, and records it only if the lease is still its own.
    """

    turn_id: int
    context: ConversationContext
    decision: TurnDecision
    lease_owner: str
    leased_at_s: float = 0.0  # epoch s, no later than the lease was taken (0: unknown)

    @property
    def user_text(self) -> str:
        return self.decision.user_text

    @property
    def new_session(self) -> bool:
        return self.decision.new_session

    @property
    def close_session(self) -> bool:
        return self.decision.close_session

    @property
    def needs_passages(self) -> bool:
        return self.decision.kind is TurnKind.ANSWER


@dataclass(frozen=True)
class TurnResult:
    reply_text: str
    reply_kind: ReplyKind
    delivered: bool  # every part confirmed by Evolution already (else owed: delivered later)
    discarded: bool = False  # the lease was lost before the reply was recorded: not sent

    @property
    def is_memory(self) -> bool:
        return self.reply_kind in MEMORY_KINDS
