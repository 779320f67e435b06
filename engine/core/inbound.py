"""The inbound decision: what Conversa does with one `messages.upsert`, decided once, purely.

The inbox (`engine.services.inbox`) parses the post (`engine.core.whatsapp`), reads the facts
this needs (the instance's cliente and behaviour, the chat's pause, whether a `fromMe` text is
our own reply), calls `decide_inbound`, and persists the decision. A redelivery of a key already
processed is found while persisting (the idempotency claim is the only race-free place for it)
and answered `duplicate`.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.core.behaviour import Behaviour, is_paused
from engine.core.reasons import IgnoreReason
from engine.core.statuses import ClienteStatus, GroupReplies, InstanciaStatus
from engine.core.whatsapp import (
    PHONE_SUFFIX,
    Classified,
    CustomerText,
    HumanTakeover,
    Ignored,
    mentions,
    numero_of,
    storable_text,
)
from engine.errors import MalformedWebhook


class InboundOutcome(StrEnum):
    """The webhook's answer (`status` of the ack), also recorded with the idempotency key."""

    ACCEPTED = "accepted"  # persisted and handed to its conversation actor
    DUPLICATE = "duplicate"  # a redelivery of a key already processed: nothing written
    IGNORED = "ignored"  # not something the bot answers (the message's kind or chat)
    RECORDED = "recorded"  # stored in its conversation, not answered (see the reason)


@dataclass(frozen=True)
class ChatFacts:
    """What PostgreSQL knows about the chat a message belongs to, read before deciding."""

    paused_until: datetime | None = None
    own_echo: bool = False  # a `fromMe` text equal to a reply Conversa recorded recently


@dataclass(frozen=True)
class Accept:
    """A customer's message to answer: persisted, then handed to its conversation actor."""

    message: CustomerText
    outcome = InboundOutcome.ACCEPTED

    @property
    def detail(self) -> str | None:
        return None


@dataclass(frozen=True)
class Ignore:
    """Not something the bot answers. Recorded (IGNORADA) only when it is in a one-to-one chat."""

    message: Ignored
    outcome = InboundOutcome.IGNORED

    @property
    def detail(self) -> str:
        return self.message.reason.value


@dataclass(frozen=True)
class Record:
    """A customer's message stored in its conversation (IGNORADA) but not answered."""

    message: CustomerText
    reason: IgnoreReason  # paused, or the cliente is not ATIVO
    outcome = InboundOutcome.RECORDED

    @property
    def detail(self) -> str:
        return self.reason.value


@dataclass(frozen=True)
class Takeover:
    """A message typed on the business phone: a human answers this chat, so the bot pauses for
    `pause_s` — unless it is the echo of a reply Conversa sent itself (`own_echo`)."""

    message: HumanTakeover
    own_echo: bool
    pause_s: float
    outcome = InboundOutcome.RECORDED

    @property
    def detail(self) -> str:
        return "own_message_echo" if self.own_echo else "human_takeover"


InboundDecision = Accept | Ignore | Record | Takeover


def decide_inbound(
    message: Classified,
    *,
    cliente_status: ClienteStatus,
    behaviour: Behaviour,
    owner_jids: AbstractSet[str],
    chat: ChatFacts,
    now: datetime,
) -> InboundDecision:
    """What to do with a classified `messages.upsert` for this cliente and chat.

    Only an ATIVO cliente is answered; groups only when the cliente answers mentions and the
    business (one of `owner_jids`) is mentioned or replied to; a paused chat is left to the
    human. A `fromMe` message pauses the bot even for an inactive cliente (a human is there).
    """
    if isinstance(message, Ignored):
        return Ignore(message)
    if isinstance(message, HumanTakeover):
        return Takeover(message, own_echo=chat.own_echo, pause_s=behaviour.human_pause_s)
    if message.group is not None and not (
        behaviour.group_replies is GroupReplies.MENTIONED and mentions(message.group, owner_jids)
    ):
        return Ignore(Ignored(message.key_id, IgnoreReason.GROUP, message.chat_jid))
    if cliente_status is not ClienteStatus.ATIVO:
        return Record(message, IgnoreReason.for_status(cliente_status))
    if is_paused(chat.paused_until, now=now):
        return Record(message, IgnoreReason.PAUSED)
    return Accept(message)


def owner_jids(*, sender: str | None, numero: str | None) -> frozenset[str]:
    """The business's own JIDs: the envelope's `sender` and the instance's registered number."""
    jids = {sender} if sender else set()
    if numero:
        jids.add(f"{numero}{PHONE_SUFFIX}")
    return frozenset(jids)


def needs_chat_facts(message: Classified) -> bool:
    """Whether `decide_inbound` needs to know about the message's chat (customers' messages and
    takeovers: pause and echo); ignored kinds are decided from the payload alone."""
    return not isinstance(message, Ignored)


@dataclass(frozen=True)
class InstanceUpdate:
    """What a `connection.update` or `qrcode.updated` event changes on its instance."""

    detail: str
    status: InstanciaStatus | None = None
    numero: str | None = None  # learned when the instance connects
    qr_code: str | None = None  # the raw QR string (`code`), rendered as a PNG by Conversa
    pairing_code: str | None = None  # the 8-character code typed on the phone instead


_CONNECTION_STATES = {
    "open": InstanciaStatus.CONECTADA,
    "close": InstanciaStatus.DESCONECTADA,
    "refused": InstanciaStatus.ERRO,
}


def decide_instance_event(event: str, data: Any) -> InstanceUpdate | None:
    """The instance change an event carries; None for an event or state that changes nothing
    (`connecting`, events Conversa does not use). Raises MalformedWebhook for a QR event
    without a code."""
    data = data if isinstance(data, dict) else {}
    if event == "connection.update":
        state = data.get("state")
        status = _CONNECTION_STATES.get(state) if isinstance(state, str) else None
        if status is None:
            return None
        numero = numero_of(data.get("wuid")) if status is InstanciaStatus.CONECTADA else None
        return InstanceUpdate(f"instance:{status.value}", status=status, numero=numero)
    if event == "qrcode.updated":
        qrcode = data.get("qrcode")
        qrcode = qrcode if isinstance(qrcode, dict) else {}
        # The raw code when Evolution gives it (Conversa draws the PNG); else its data URL.
        code = qrcode.get("code") or qrcode.get("base64")
        if not isinstance(code, str) or not storable_text(code):
            raise MalformedWebhook("qrcode.updated needs data.qrcode.base64 or data.qrcode.code")
        pairing = qrcode.get("pairingCode")
        pairing = (
            storable_text(pairing) if isinstance(pairing, str) and len(pairing) <= 16 else None
        )
        return InstanceUpdate("instance:qr_code", qr_code=storable_text(code), pairing_code=pairing)
    return None


def unused_event_detail(event: str, data: Any) -> str:
    """Why an event changed nothing (the ack's `detail`): `connection:connecting`, `event:…`."""
    if event == "connection.update":
        state = data.get("state") if isinstance(data, dict) else None
        # Only a string is echoed: the repr of a deeply nested value would recurse too far.
        return storable_text(f"connection:{state if isinstance(state, str) else '?'}")[:80]
    return storable_text(f"event:{event}")[:80]
