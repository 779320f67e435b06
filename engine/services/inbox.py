"""The Evolution webhook inbox: authenticate, decide, persist — one transaction per post.

`EvolutionInbox.handle` finds the instance the post claims to come from, checks its secret,
parses the payload (`engine.core.whatsapp`), reads the facts the decision needs, lets
`engine.core.inbound.decide_inbound` decide, and records that decision. Nothing is written
unless the post is authenticated and well-formed; what must reach a conversation actor comes back
as a `Delivery` for the caller to hand off after the ack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core import inbound, whatsapp
from engine.core.auth import secret_matches
from engine.core.behaviour import Behaviour
from engine.core.debounce import BurstMessage
from engine.core.inbound import ChatFacts, InboundOutcome
from engine.core.reasons import IgnoreReason
from engine.core.statuses import Author, Direction, MessageStatus
from engine.core.turns import Delivery
from engine.db import clientes as clientes_db
from engine.db import deliveries as deliveries_db
from engine.db import inbox as inbox_db
from engine.errors import MalformedWebhook, Unauthenticated, UnknownInstance

log = logging.getLogger(__name__)

OWN_ECHO = "own_message_echo"


@dataclass(frozen=True)
class WebhookOutcome:
    """What the webhook answers, and what (if anything) goes to a conversation actor."""

    status: InboundOutcome
    detail: str | None = None
    cliente_id: int | None = None
    delivery: Delivery | None = None


class EvolutionInbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, defaults: Behaviour):
        self._sessions = sessions
        self._defaults = defaults

    async def handle(
        self, payload: Any, *, secret: str | None, path_event: str | None = None
    ) -> WebhookOutcome:
        envelope = whatsapp.parse_envelope(payload, path_event=path_event)
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
            elif envelope.event == "send.message":
                outcome = await self._sent_through_api(session, route, envelope)
            else:
                outcome = await self._instance_event(session, route, envelope)
            await session.commit()
        return outcome

    async def _message(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        envelope: whatsapp.Envelope,
    ) -> WebhookOutcome:
        message = whatsapp.classify_upsert(envelope.data)
        behaviour = self._defaults.overridden_by(route.overrides)
        chat = ChatFacts()
        if inbound.needs_chat_facts(message) and message.chat_jid:
            chat = await inbox_db.chat_facts(
                session,
                cliente_id=route.cliente_id,
                chat_jid=message.chat_jid,
                echo_text=message.text if isinstance(message, whatsapp.HumanTakeover) else None,
            )
        decision = inbound.decide_inbound(
            message,
            cliente_status=route.cliente_status,
            behaviour=behaviour,
            owner_jids=inbound.owner_jids(sender=envelope.sender, numero=route.numero),
            chat=chat,
            now=datetime.now(UTC),
        )
        claimed = await inbox_db.claim_webhook_key(
            session,
            source=inbox_db.evolution_source(route.instance_id),
            key=message.key_id,
            outcome=f"{decision.outcome.value}:{decision.detail or ''}",
        )
        if not claimed:
            await session.rollback()
            return WebhookOutcome(InboundOutcome.DUPLICATE, message.key_id, route.cliente_id)
        recorded = _Recorder(session, route)
        match decision:
            case inbound.Ignore(message=ignored):
                if ignored.in_private_chat:
                    await recorded.inbound(ignored, reason=ignored.reason)
            case inbound.Record(message=text, reason=reason):
                await recorded.inbound(text, reason=reason)
            case inbound.Takeover():
                if await recorded.confirms_own_part(decision.message):
                    return WebhookOutcome(decision.outcome, OWN_ECHO, route.cliente_id)
                await self._takeover(recorded, decision)
            case inbound.Accept(message=text):
                return await self._accept(session, recorded, route, behaviour, text)
        return WebhookOutcome(decision.outcome, decision.detail, route.cliente_id)

    async def _sent_through_api(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        envelope: whatsapp.Envelope,
    ) -> WebhookOutcome:
        """`send.message`: Evolution's echo of a message sent through its API; it confirms the
        reply part it matches (whose send's outcome may be unknown). Anything else is ignored."""
        try:
            message = whatsapp.classify_upsert(envelope.data)
        except MalformedWebhook:
            message = None
        if isinstance(message, whatsapp.HumanTakeover) and await _Recorder(
            session, route
        ).confirms_own_part(message):
            return WebhookOutcome(InboundOutcome.RECORDED, OWN_ECHO, route.cliente_id)
        return WebhookOutcome(InboundOutcome.IGNORED, "event:send.message", route.cliente_id)

    async def _accept(
        self,
        session: AsyncSession,
        recorded: _Recorder,
        route: clientes_db.InstanceRoute,
        behaviour: Behaviour,
        text: whatsapp.CustomerText,
    ) -> WebhookOutcome:
        conversation, message_id = await recorded.inbound(text, reason=None)
        if message_id is None:  # the same key.id stored under another idempotency source
            return WebhookOutcome(InboundOutcome.DUPLICATE, text.key_id, route.cliente_id)
        policy = behaviour.debounce
        await inbox_db.set_answer_deadline(session, conversation.id, max_wait_s=policy.max_wait_s)
        delivery = Delivery(
            cliente_id=route.cliente_id,
            conversation_id=conversation.id,
            session_id=conversation.session_id,
            chat_jid=text.chat_jid,
            message=BurstMessage(message_id, text.text, text.message_type, text.timestamp),
            policy=policy,
        )
        return WebhookOutcome(InboundOutcome.ACCEPTED, None, route.cliente_id, delivery)

    async def _takeover(self, recorded: _Recorder, decision: inbound.Takeover) -> None:
        """Record a message typed on the business phone; pause the bot unless it is our echo."""
        message = decision.message
        conversation, message_id = await recorded.outbound_typed(message, own=decision.own_echo)
        if decision.own_echo or message_id is None:
            return
        await inbox_db.pause(
            recorded.session, conversation.id, seconds=decision.pause_s, by="human"
        )
        context = {"cliente_id": recorded.route.cliente_id, "chat": message.chat_jid}
        log.info("human took over; bot paused", extra={**context, "pause_s": decision.pause_s})

    async def _instance_event(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        envelope: whatsapp.Envelope,
    ) -> WebhookOutcome:
        update = inbound.decide_instance_event(envelope.event, envelope.data)
        if update is None:
            state = envelope.data.get("state") if isinstance(envelope.data, dict) else None
            detail = (
                f"connection:{state}"
                if envelope.event == "connection.update"
                else f"event:{envelope.event}"
            )
            return WebhookOutcome(InboundOutcome.IGNORED, detail, route.cliente_id)
        await clientes_db.set_instance_state(
            session,
            route.instancia_id,
            status=update.status,
            numero=update.numero,
            qr_code=update.qr_code,
        )
        return WebhookOutcome(InboundOutcome.RECORDED, update.detail, route.cliente_id)


@dataclass
class _Recorder:
    """Writes one webhook's message into its conversation (upserting the conversation)."""

    session: AsyncSession
    route: clientes_db.InstanceRoute

    async def inbound(
        self, message: whatsapp.CustomerText | whatsapp.Ignored, *, reason: IgnoreReason | None
    ) -> tuple[inbox_db.ConversationRow, int | None]:
        """A customer's message: RECEBIDA (to answer), or IGNORADA with `reason`."""
        status = MessageStatus.IGNORADA if reason else MessageStatus.RECEBIDA
        if isinstance(message, whatsapp.Ignored):
            conversation = await self._conversation(message.chat_jid or "", push_name=None)
            return conversation, await self._insert(
                conversation, message.key_id, status=status, ignored_reason=reason
            )
        conversation = await self._conversation(message.chat_jid, push_name=message.push_name)
        message_id = await self._insert(
            conversation,
            message.key_id,
            status=status,
            ignored_reason=reason,
            text=message.text,
            message_type=message.message_type,
            wa_timestamp=message.timestamp,
        )
        return conversation, message_id

    async def confirms_own_part(self, message: whatsapp.HumanTakeover) -> bool:
        """Whether this `fromMe` message is the echo of one of our reply parts (which it then
        confirms as delivered: see `engine.db.deliveries.confirm_by_echo`)."""
        return await deliveries_db.confirm_by_echo(
            self.session,
            cliente_id=self.route.cliente_id,
            chat_jid=message.chat_jid,
            instance_id=self.route.instance_id,
            wa_message_id=message.key_id,
            text=message.text,
        )

    async def outbound_typed(
        self, message: whatsapp.HumanTakeover, *, own: bool
    ) -> tuple[inbox_db.ConversationRow, int | None]:
        """A message typed on the business phone (a human's), or the echo of our own send."""
        conversation = await self._conversation(message.chat_jid, push_name=None)
        message_id = await self._insert(
            conversation,
            message.key_id,
            direction=Direction.OUTBOUND,
            author=Author.BOT if own else Author.HUMAN,
            status=MessageStatus.ENVIADA,
            text=message.text,
            wa_timestamp=message.timestamp,
        )
        return conversation, message_id

    async def _conversation(
        self, chat_jid: str, *, push_name: str | None
    ) -> inbox_db.ConversationRow:
        return await inbox_db.upsert_conversation(
            self.session,
            cliente_id=self.route.cliente_id,
            instancia_id=self.route.instancia_id,
            chat_jid=chat_jid,
            push_name=push_name,
        )

    async def _insert(
        self,
        conversation: inbox_db.ConversationRow,
        key_id: str,
        *,
        status: MessageStatus,
        direction: Direction = Direction.INBOUND,
        author: Author = Author.CUSTOMER,
        ignored_reason: IgnoreReason | None = None,
        text: str = "",
        message_type: str | None = None,
        wa_timestamp: int | None = None,
    ) -> int | None:
        return await inbox_db.insert_message(
            self.session,
            conversation_id=conversation.id,
            cliente_id=self.route.cliente_id,
            instance_id=self.route.instance_id,
            wa_message_id=key_id,
            direction=direction,
            author=author,
            status=status,
            text=text,
            message_type=message_type,
            wa_timestamp=wa_timestamp,
            ignored_reason=ignored_reason,
        )
