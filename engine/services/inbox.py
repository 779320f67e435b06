"""The Evolution webhook inbox: find the cliente, authenticate, classify, dedupe and persist.

`EvolutionInbox.handle` does all of it in one transaction and returns what the caller must tell
the conversation actor. Nothing is written unless the post is authenticated and well-formed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core import whatsapp
from engine.core.auth import secret_matches
from engine.core.debounce import DebouncePolicy, PendingMessage
from engine.db import clientes as clientes_db
from engine.db import inbox as inbox_db
from engine.db.models import (
    Author,
    ClienteStatus,
    Direction,
    GroupReplies,
    InstanciaStatus,
    MessageStatus,
)
from engine.errors import MalformedWebhook, Unauthenticated, UnknownInstance

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


_CONNECTION_STATES = {
    "open": InstanciaStatus.CONECTADA,
    "close": InstanciaStatus.DESCONECTADA,
    "refused": InstanciaStatus.ERRO,
}


@dataclass(frozen=True)
class Delivery:
    """An accepted customer message, to be handed to its conversation actor."""

    cliente_id: int
    conversation_id: int
    session_id: str
    chat_jid: str
    message: PendingMessage
    policy: DebouncePolicy


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # accepted | duplicate | ignored | recorded
    detail: str | None = None
    cliente_id: int | None = None
    delivery: Delivery | None = None


@dataclass(frozen=True)
class Envelope:
    event: str
    instance: str | None
    sender: str | None
    data: Any


def parse_envelope(payload: Any, *, path_event: str | None) -> Envelope:
    """Validate the outer shape of an Evolution post (all events share it)."""
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip():
        raise MalformedWebhook("`event` is required")
    event = whatsapp.normalize_event_name(event)
    if path_event is not None and whatsapp.event_path_to_name(path_event) != event:
        raise MalformedWebhook(f"event in the path ({path_event}) and body ({event}) disagree")
    instance = payload.get("instance")
    sender = payload.get("sender")
    if instance is not None and not isinstance(instance, str):
        raise MalformedWebhook("`instance` must be a string")
    if sender is not None and not isinstance(sender, str):
        raise MalformedWebhook("`sender` must be a string")
    if not instance and not sender:
        raise MalformedWebhook("`instance` (or `sender`) is required to identify the cliente")
    if "data" not in payload:
        raise MalformedWebhook("`data` is required")
    return Envelope(event, instance or None, sender or None, payload["data"])


class EvolutionInbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        default_policy: DebouncePolicy,
        human_pause_s: float,
    ):
        self._sessions = sessions
        self._default_policy = default_policy
        self._human_pause_s = human_pause_s

    async def handle(
        self, payload: Any, *, secret: str | None, path_event: str | None = None
    ) -> WebhookOutcome:
        envelope = parse_envelope(payload, path_event=path_event)
        async with self._sessions() as session:
            route = await clientes_db.find_instance_route(
                session, instance_id=envelope.instance, numero=whatsapp.numero_of(envelope.sender)
            )
            if route is None:
                raise UnknownInstance(
                    f"no WhatsApp instance {envelope.instance!r} is registered; "
                    "register it with POST /admin/clientes/{id}/instances"
                )
            if not secret_matches(secret, route.webhook_secret_sha256):
                raise Unauthenticated("missing or wrong webhook secret for this instance")

            if envelope.event == "messages.upsert":
                outcome = await self._message(session, route, envelope)
            elif envelope.event in ("connection.update", "qrcode.updated"):
                outcome = await self._instance_state(session, route, envelope)
            else:
                outcome = WebhookOutcome("ignored", f"event:{envelope.event}", route.cliente_id)
            await session.commit()
        return outcome

    async def _message(
        self, session: AsyncSession, route: clientes_db.InstanceRoute, envelope: Envelope
    ) -> WebhookOutcome:
        classified = whatsapp.classify_upsert(envelope.data)
        cliente_id = route.cliente_id
        if isinstance(classified, whatsapp.CustomerText) and classified.group is not None:
            if not self._answers_group(route, envelope, classified.group):
                classified = whatsapp.Ignored(classified.key_id, "group", classified.chat_jid)

        if isinstance(classified, whatsapp.Ignored):
            outcome = f"ignored:{classified.reason}"
        elif isinstance(classified, whatsapp.HumanTakeover):
            outcome = "human"
        elif route.cliente_status is not ClienteStatus.ATIVO:
            outcome = f"ignored:cliente_{route.cliente_status.value.lower()}"
        else:
            outcome = "accepted"
        source = inbox_db.evolution_source(route.instance_id)
        if not await inbox_db.claim_webhook_key(
            session, source=source, key=classified.key_id, outcome=outcome
        ):
            await session.rollback()
            return WebhookOutcome("duplicate", classified.key_id, cliente_id)

        if isinstance(classified, whatsapp.Ignored) and (
            classified.chat_jid is None or whatsapp.jid_kind_to_ignore(classified.chat_jid)
        ):
            return WebhookOutcome("ignored", classified.reason, cliente_id)  # not a private chat
        assert classified.chat_jid is not None
        conversation = await inbox_db.upsert_conversation(
            session,
            cliente_id=cliente_id,
            instancia_id=route.instancia_id,
            chat_jid=classified.chat_jid,
            push_name=classified.push_name
            if isinstance(classified, whatsapp.CustomerText)
            else None,
        )
        common: dict[str, Any] = {
            "conversation_id": conversation.id,
            "cliente_id": cliente_id,
            "instance_id": route.instance_id,
            "wa_message_id": classified.key_id,
        }
        if isinstance(classified, whatsapp.Ignored):
            await inbox_db.insert_message(
                session, **common, direction=Direction.INBOUND, author=Author.CUSTOMER,
                status=MessageStatus.IGNORADA, text="", message_type=None, wa_timestamp=None,
                ignored_reason=classified.reason,
            )  # fmt: skip
            return WebhookOutcome("ignored", classified.reason, cliente_id)
        if isinstance(classified, whatsapp.HumanTakeover):
            return await self._human(session, route, conversation, classified, common)

        paused = conversation.paused_until is not None and conversation.paused_until > _now()
        reason = outcome.removeprefix("ignored:") if outcome != "accepted" else None
        if reason is None and paused:
            reason = "paused"
        message_id = await inbox_db.insert_message(
            session, **common, direction=Direction.INBOUND, author=Author.CUSTOMER,
            status=MessageStatus.IGNORADA if reason else MessageStatus.RECEBIDA,
            text=classified.text, message_type=classified.message_type,
            wa_timestamp=classified.timestamp, ignored_reason=reason,
        )  # fmt: skip
        if reason is not None:
            return WebhookOutcome("recorded", reason, cliente_id)
        if message_id is None:  # same key.id stored under another idempotency source
            return WebhookOutcome("duplicate", classified.key_id, cliente_id)
        policy = self._default_policy.overridden(
            debounce_s=route.debounce_s, max_wait_s=route.max_wait_s
        )
        await inbox_db.set_answer_deadline(session, conversation.id, max_wait_s=policy.max_wait_s)
        delivery = Delivery(
            cliente_id=cliente_id,
            conversation_id=conversation.id,
            session_id=conversation.session_id,
            chat_jid=classified.chat_jid,
            message=PendingMessage(message_id, classified.text, classified.timestamp),
            policy=policy,
        )
        return WebhookOutcome("accepted", None, cliente_id, delivery)

    async def _human(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        conversation: inbox_db.ConversationRow,
        message: whatsapp.HumanTakeover,
        common: dict[str, Any],
    ) -> WebhookOutcome:
        """A message typed on the business phone: record it and pause the bot in this chat,
        unless it is the echo of a reply Conversa sent itself."""
        echo = await inbox_db.is_own_echo(session, conversation.id, message.text)
        message_id = await inbox_db.insert_message(
            session, **common, direction=Direction.OUTBOUND,
            author=Author.BOT if echo else Author.HUMAN, status=MessageStatus.ENVIADA,
            text=message.text, message_type=None, wa_timestamp=message.timestamp,
        )  # fmt: skip
        if echo or message_id is None:
            return WebhookOutcome("recorded", "own_message_echo", route.cliente_id)
        pause_s = route.human_pause_s if route.human_pause_s is not None else self._human_pause_s
        await inbox_db.pause(session, conversation.id, seconds=pause_s, by="human")
        log.info(
            "human took over; bot paused",
            extra={"cliente_id": route.cliente_id, "chat": message.chat_jid, "pause_s": pause_s},
        )
        return WebhookOutcome("recorded", "human_takeover", route.cliente_id)

    def _answers_group(
        self,
        route: clientes_db.InstanceRoute,
        envelope: Envelope,
        group: whatsapp.GroupContext,
    ) -> bool:
        if route.group_replies is not GroupReplies.MENTIONED:
            return False
        owner = {j for j in (envelope.sender,) if j}
        if route.numero:
            owner.add(f"{route.numero}{whatsapp.PHONE_SUFFIX}")
        return whatsapp.mentions(group, owner)

    async def _instance_state(
        self, session: AsyncSession, route: clientes_db.InstanceRoute, envelope: Envelope
    ) -> WebhookOutcome:
        data = envelope.data if isinstance(envelope.data, dict) else {}
        if envelope.event == "connection.update":
            status = _CONNECTION_STATES.get(str(data.get("state")))
            numero = (
                whatsapp.numero_of(data.get("wuid"))
                if status is InstanciaStatus.CONECTADA
                else None
            )
            if status is None:
                return WebhookOutcome(
                    "ignored", f"connection:{data.get('state')}", route.cliente_id
                )
            await clientes_db.set_instance_state(
                session, route.instancia_id, status=status, numero=numero
            )
            return WebhookOutcome("recorded", f"instance:{status.value}", route.cliente_id)
        qrcode = data.get("qrcode")
        code = (qrcode.get("base64") or qrcode.get("code")) if isinstance(qrcode, dict) else None
        if not isinstance(code, str) or not code:
            raise MalformedWebhook("qrcode.updated needs data.qrcode.base64 or data.qrcode.code")
        await clientes_db.set_instance_state(session, route.instancia_id, qr_code=code)
        return WebhookOutcome("recorded", "instance:qr_code", route.cliente_id)
