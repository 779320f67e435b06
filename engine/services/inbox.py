"""The Evolution webhook inbox: authenticate, decide, persist — one transaction per post.

`EvolutionInbox.handle` finds the instance by the secret alone (before the body is read, so an
unauthenticated post costs one indexed lookup and nothing else, and says nothing about which
instance names exist), parses the payload (`engine.core.whatsapp`), keys an `@lid` chat by its
phone when a pair is known (`engine.core.identity`), reads the facts the decision needs, lets
`engine.core.inbound.decide_inbound` decide, and records that decision. Nothing is written
unless the post is authenticated and well-formed; what must reach a conversation actor comes back
as a `Delivery` for the caller to hand off after the ack.

With an `AckWriter` (the ingress), the common post — a customer's text in a one-to-one chat of a
served cliente — is written by one statement (`engine.db.ack`) from the instance route this
process cached for the secret; that statement re-checks the route, and anything it does not
vouch for (and every other kind of post) takes the general path above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core import identity, inbound, whatsapp
from engine.core.auth import hash_secret
from engine.core.behaviour import Behaviour
from engine.core.debounce import BurstMessage
from engine.core.inbound import ChatFacts, InboundOutcome
from engine.core.naming import session_id
from engine.core.reasons import IgnoreReason
from engine.core.statuses import (
    Author,
    ClienteStatus,
    Direction,
    InstanciaStatus,
    MessageStatus,
)
from engine.core.turns import Delivery
from engine.db import ack as ack_db
from engine.db import clientes as clientes_db
from engine.db import deliveries as deliveries_db
from engine.db import identity as identity_db
from engine.db import inbox as inbox_db
from engine.errors import InvalidJson, MalformedWebhook, PayloadTooLarge, Unauthenticated

log = logging.getLogger(__name__)

# One answer for a missing secret, a wrong one, and an instance that does not exist.
UNAUTHENTICATED = (
    "missing or wrong webhook secret: send the webhook_secret registered for this instance "
    "in the X-Conversa-Secret header"
)
OWN_ECHO = "own_message_echo"

ReadBody = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class WebhookOutcome:
    """What the webhook answers, and what (if anything) goes to a conversation actor."""

    status: InboundOutcome
    detail: str | None = None
    cliente_id: int | None = None
    delivery: Delivery | None = None
    # Actors (by session id) holding a conversation that was re-keyed or merged by this post:
    # retire them before the hand-off, so the unified conversation is restored in one place.
    retired_session_ids: tuple[str, ...] = ()


def decode_body(body: bytes) -> Any:
    """orjson for speed; what it refuses (or decodes differently: lone surrogates, NaN) is left
    to the standard decoder, whose answer (a value, or InvalidJson with the reason) stands."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return whatsapp.decode_body(body)


@dataclass(frozen=True)
class _CachedRoutes:
    routes: list[clientes_db.InstanceRoute]
    behaviours: dict[int, Behaviour]  # by instancia_id: the defaults with the overrides applied


class EvolutionInbox:
    """`ack`: the one-statement writer of the common case (None: every post takes the general
    path, in one SQLAlchemy transaction)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        defaults: Behaviour,
        ack: ack_db.AckWriter | None = None,
        route_cache_size: int = 10_000,
    ):
        self._sessions = sessions
        self._defaults = defaults
        self._ack = ack
        # secret hash → routes. Only hits are kept, and only the one-statement path trusts them
        # (its statement re-checks what it uses); every other post reads its routes afresh.
        self._routes: dict[str, _CachedRoutes] = {}
        self._route_cache_size = route_cache_size

    async def handle(
        self, *, secret: str | None, read_body: ReadBody, path_event: str | None = None
    ) -> WebhookOutcome:
        """Authenticate by `secret`, then read (`read_body`), parse, decide and persist a post."""
        if not secret:
            raise Unauthenticated(UNAUTHENTICATED)
        secret_sha256 = hash_secret(secret)
        if self._ack is None:
            return await self._general(secret_sha256, read_body, path_event)
        cached = self._routes.get(secret_sha256) or await self._lookup(secret_sha256)
        if cached is None:
            raise Unauthenticated(UNAUTHENTICATED)
        try:
            body = await read_body()
        except PayloadTooLarge:
            if await self._lookup(secret_sha256) is None:  # the cached secret is gone
                raise Unauthenticated(UNAUTHENTICATED) from None
            raise
        try:
            payload = decode_body(body)
            envelope = whatsapp.parse_envelope(payload, path_event=path_event)
        except (InvalidJson, MalformedWebhook):
            payload = None  # refused by the general path, once it re-authenticated
        else:
            outcome = await self._one_statement(secret_sha256, cached, envelope)
            if outcome is not None:
                return outcome

        # Not the common case, or the cache no longer vouched for it: read everything afresh.
        async def same_body() -> bytes:
            return body

        return await self._general(secret_sha256, same_body, path_event, payload=payload)

    async def _lookup(self, secret_sha256: str) -> _CachedRoutes | None:
        async with self._sessions() as session:
            routes = await clientes_db.instance_routes_by_secret(
                session, secret_sha256=secret_sha256
            )
        if not routes:
            return None
        if len(self._routes) >= self._route_cache_size:
            self._routes.clear()  # rare (thousands of instances per replica): start over
        cached = _CachedRoutes(
            routes, {r.instancia_id: self._defaults.overridden_by(r.overrides) for r in routes}
        )
        self._routes[secret_sha256] = cached
        return cached

    async def _one_statement(
        self, secret_sha256: str, cached: _CachedRoutes, envelope: whatsapp.Envelope
    ) -> WebhookOutcome | None:
        """A customer's text in a one-to-one chat, accepted in one statement; None when the post
        is anything else (or the statement's guard did not vouch for the cache)."""
        assert self._ack is not None
        if envelope.event != "messages.upsert":
            return None
        route = clientes_db.route_named(
            cached.routes, instance=envelope.instance, numero=whatsapp.numero_of(envelope.sender)
        )
        if route is None:
            return None
        if route.cliente_status is not ClienteStatus.ATIVO:
            self._routes.pop(secret_sha256, None)  # re-read once it may be served again
            return None
        behaviour = cached.behaviours[route.instancia_id]
        now = datetime.now(UTC)
        try:
            message = whatsapp.classify_upsert(envelope.data, received_at_s=int(now.timestamp()))
        except MalformedWebhook:
            return None  # answered by the general path, after it re-authenticated
        if (
            not isinstance(message, whatsapp.CustomerText)
            or message.group is not None
            or identity.is_lid(message.chat_jid)
            or identity.lid_pairs(envelope.data)
        ):
            return None
        policy = behaviour.debounce
        sid = session_id(route.cliente_id, message.chat_jid)
        accepted = await self._ack.accept(
            ack_db.AcceptTarget(
                instancia_id=route.instancia_id,
                instance_id=route.instance_id,
                cliente_id=route.cliente_id,
                numero=route.numero,
                secret_sha256=secret_sha256,
                debounce_s_override=route.overrides.debounce_s,
                max_wait_s_override=route.overrides.max_wait_s,
            ),
            ack_db.AcceptedText(
                key_id=message.key_id,
                chat_jid=message.chat_jid,
                session_id=sid,
                push_name=message.push_name,
                text=message.text,
                message_type=message.message_type,
                wa_timestamp=message.timestamp,
                max_wait_s=policy.max_wait_s,
            ),
        )
        if not accepted.vouched:
            self._routes.pop(secret_sha256, None)  # something changed: the next post re-reads
            return None
        if accepted.conversation_id is None or accepted.message_id is None:
            return WebhookOutcome(InboundOutcome.DUPLICATE, message.key_id, route.cliente_id)
        delivery = Delivery(
            cliente_id=route.cliente_id,
            conversation_id=accepted.conversation_id,
            session_id=sid,
            chat_jid=message.chat_jid,
            message=BurstMessage(
                accepted.message_id,
                message.text,
                message.message_type,
                message.timestamp,
                accepted_at_s=time.time(),
            ),
            policy=policy,
        )
        return WebhookOutcome(InboundOutcome.ACCEPTED, None, route.cliente_id, delivery)

    async def _general(
        self,
        secret_sha256: str,
        read_body: ReadBody,
        path_event: str | None,
        *,
        payload: Any = None,
    ) -> WebhookOutcome:
        """Any post, in one SQLAlchemy transaction (`payload`: the body already decoded)."""
        async with self._sessions() as session:
            # The secret's hash finds the instance: an unknown instance and a wrong secret are
            # the same miss of the same indexed lookup, and the body is not even read for it.
            routes = await clientes_db.instance_routes_by_secret(
                session, secret_sha256=secret_sha256
            )
            if not routes:
                raise Unauthenticated(UNAUTHENTICATED)
            if payload is None:
                payload = decode_body(await read_body())
            envelope = whatsapp.parse_envelope(payload, path_event=path_event)
            route = clientes_db.route_named(
                routes, instance=envelope.instance, numero=whatsapp.numero_of(envelope.sender)
            )
            if route is None:  # a secret of one instance used for another
                raise Unauthenticated(UNAUTHENTICATED)

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
        now = datetime.now(UTC)
        message = whatsapp.classify_upsert(envelope.data, received_at_s=int(now.timestamp()))
        message, phones_by_lid = await self._keyed_by_phone(session, route, envelope.data, message)
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
            now=now,
        )
        claimed, lid_chats = await self._claim(session, route, message, decision, phones_by_lid)
        if not claimed:
            await session.rollback()
            return WebhookOutcome(InboundOutcome.DUPLICATE, message.key_id, route.cliente_id)
        retired = await self._unify(session, route, {lid: phones_by_lid[lid] for lid in lid_chats})
        outcome = await self._record(session, route, behaviour, decision)
        return replace(outcome, retired_session_ids=retired)

    async def _keyed_by_phone(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        data: Any,
        message: whatsapp.Classified,
    ) -> tuple[whatsapp.Classified, dict[str, str]]:
        """The message keyed by its contact's phone when known, and every lid of this post's
        contacts with its phone (the pairs to remember, and lids whose own conversation, if any,
        is to be unified). Looks a pair up only for an `@lid` chat the payload gives no phone for.
        """
        phones_by_lid = {p.lid_jid: p.phone_jid for p in identity.lid_pairs(data)}
        lid = message.chat_jid
        if lid is not None and identity.is_lid(lid):
            phone = await identity_db.phone_for_lid(
                session, cliente_id=route.cliente_id, lid_jid=lid
            )
            if phone is not None:
                message = replace(message, chat_jid=phone)
                phones_by_lid[lid] = phone
        return message, phones_by_lid

    async def _claim(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        message: whatsapp.Classified,
        decision: inbound.InboundDecision,
        phones_by_lid: dict[str, str],
    ) -> tuple[bool, tuple[str, ...]]:
        """Claim the idempotency key (False: a redelivery); with lids about, in the same
        statement remember their pairs and learn which still have a conversation of their own."""
        claim = {
            "source": inbox_db.evolution_source(route.instance_id),
            "key": message.key_id,
            "outcome": f"{decision.outcome.value}:{decision.detail or ''}",
        }
        if not phones_by_lid:
            return await inbox_db.claim_webhook_key(session, **claim), ()
        result = await identity_db.claim_and_learn(
            session,
            **claim,
            cliente_id=route.cliente_id,
            instancia_id=route.instancia_id,
            pairs=[identity.LidPair(lid, phone) for lid, phone in phones_by_lid.items()],
            lids=list(phones_by_lid),
        )
        return result.claimed, result.lid_chats

    async def _unify(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        phones_by_lid: dict[str, str],
    ) -> tuple[str, ...]:
        """Fold conversations opened under a lid into the contact's phone conversation."""
        retired: list[str] = []
        for lid, phone in phones_by_lid.items():
            unified = await identity_db.unify(
                session, cliente_id=route.cliente_id, lid_jid=lid, phone_jid=phone
            )
            if unified is None:
                continue
            retired += unified.retired_session_ids
            log.info(
                "lid conversation unified with the phone's",
                extra={
                    "cliente_id": route.cliente_id,
                    "chat": phone,
                    "conversation_id": unified.conversation_id,
                    "merged": unified.merged,
                },
            )
        return tuple(retired)

    async def _record(
        self,
        session: AsyncSession,
        route: clientes_db.InstanceRoute,
        behaviour: Behaviour,
        decision: inbound.InboundDecision,
    ) -> WebhookOutcome:
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
            message = whatsapp.classify_upsert(
                envelope.data, received_at_s=int(datetime.now(UTC).timestamp())
            )
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
            message=BurstMessage(
                message_id,
                text.text,
                text.message_type,
                text.timestamp,
                accepted_at_s=time.time(),
            ),
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
            detail = inbound.unused_event_detail(envelope.event, envelope.data)
            return WebhookOutcome(InboundOutcome.IGNORED, detail, route.cliente_id)
        await clientes_db.set_instance_state(
            session,
            route.instancia_id,
            status=update.status,
            numero=update.numero,
            qr_code=update.qr_code,
            pairing_code=update.pairing_code,
            clear_qr=update.status is InstanciaStatus.CONECTADA,
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
