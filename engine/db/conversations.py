"""Queries the conversation pipeline needs: claiming bursts, memory, turns, replies, recovery.

A turn moves PROCESSANDO → ENVIANDO → RESPONDIDA (or FALHOU, dead-lettered). While PROCESSANDO
it is owned by a lease (`lease_owner`, `lease_expires_at`) that its reply worker renews; recovery
takes a turn over only once its lease expired, and every status change is a compare-and-set on
the status (and the owner), so a turn gets one reply even if two workers worked on it. The reply
and each of its parts are recorded (parts owed, PENDENTE) before anything is sent; delivering
them is `engine.db.deliveries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.behaviour import ClienteOverrides
from engine.core.chat_limits import ChatActivity, Sent
from engine.core.debounce import BurstMessage
from engine.core.prompt import Exchange
from engine.core.statuses import Author, ClienteStatus, Direction, MessageStatus, TurnStatus
from engine.core.turn_policy import ConversationState
from engine.core.turns import MEMORY_KINDS, ConversationContext, OutboundPart, ReplyKind
from engine.db.clientes import OVERRIDE_COLUMNS, overrides_of
from engine.db.deliveries import claim_new_part, settle_turn
from engine.db.models import Cliente, Conversation, InstanciaWhatsApp, Message, Turn
from engine.errors import NotFound

ACTIVITY_ROWS = 500  # a chat judged for loops and floods: its last messages are enough

# Turns whose messages still wait for a reply: being produced (maybe by a dead worker, whose
# lease will expire) or given up before a reply existed.
UNFINISHED_TURNS = (TurnStatus.PROCESSANDO, TurnStatus.ABANDONADA)


@dataclass(frozen=True)
class Claim:
    """A conversation's unanswered messages, claimed (row-locked) for one turn."""

    conversation_id: int
    cliente_id: int
    chat_jid: str
    instance_id: str | None
    instance_api_key_encrypted: str | None
    cliente_status: ClienteStatus
    overrides: ClienteOverrides
    burst: tuple[BurstMessage, ...]
    state: ConversationState


def _pending(conversation_id: int) -> Any:  # a Select; typed Any to keep rows' attributes
    """Inbound messages waiting for a reply: in no turn yet, or in an unfinished one. Messages
    of a turn whose reply is owed or dead-lettered are unanswered too, but not pending: that
    reply is delivered (or re-sent) as it is, never produced again."""
    return (
        select(
            Message.id,
            Message.text,
            Message.message_type,
            Message.wa_timestamp,
            Message.turn_id,
            Turn.status.label("turn_status"),
        )
        .outerjoin(Turn, Turn.id == Message.turn_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.status == MessageStatus.RECEBIDA,
            or_(Message.turn_id.is_(None), Turn.status.in_(UNFINISHED_TURNS)),
        )
        .order_by(Message.wa_timestamp, Message.id)
    )


def _burst_message(row: Any) -> BurstMessage:
    return BurstMessage(row.id, row.text, row.message_type, row.wa_timestamp or 0)


async def load_pending(session: AsyncSession, conversation_id: int) -> list[BurstMessage]:
    rows = await session.execute(_pending(conversation_id))
    return [_burst_message(row) for row in rows]


async def load_memory(session: AsyncSession, conversation_id: int, limit: int) -> list[Exchange]:
    """The last `limit` answered turns of the current session, oldest first."""
    rows = await session.execute(
        select(Turn.user_text, Turn.reply_text)
        .join(Conversation, Conversation.id == Turn.conversation_id)
        .where(
            Turn.conversation_id == conversation_id,
            Turn.status == TurnStatus.RESPONDIDA,
            Turn.reply_kind.in_(MEMORY_KINDS),
            Turn.reply_text.is_not(None),
            Conversation.session_started_at.is_not(None),
            Turn.created_at >= Conversation.session_started_at,
        )
        .order_by(Turn.id.desc())
        .limit(limit)
    )
    return [Exchange(row.user_text, row.reply_text) for row in reversed(rows.all())]


async def pending_audio(session: AsyncSession, conversation_id: int) -> list[tuple[int, str, str]]:
    """Unanswered voice messages with no text yet: (message id, instance, WhatsApp key id)."""
    rows = await session.execute(
        select(Message.id, Message.instance_id, Message.wa_message_id).where(
            Message.conversation_id == conversation_id,
            Message.status == MessageStatus.RECEBIDA,
            Message.message_type == "audioMessage",
            Message.text == "",
        )
    )
    return [(row.id, row.instance_id, row.wa_message_id) for row in rows]


async def set_text(session: AsyncSession, message_id: int, text: str) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(text=text))


async def claim(session: AsyncSession, conversation_id: int) -> Claim | None:
    """Lock the conversation and gather its pending messages; None if there are none, or if a
    turn still holds a live lease on some of them (its owner is working: its reply will come,
    and recovery looks again once the lease expires).

    Every pending message is claimed, not only those an actor happens to hold, so a message
    whose hand-off to the actor was lost is still answered by the conversation's next turn.
    """
    row = (
        await session.execute(
            select(
                Conversation.cliente_id,
                Conversation.chat_jid,
                Conversation.paused_until,
                Conversation.session_started_at,
                Conversation.out_of_office_sent_at,
                InstanciaWhatsApp.instance_id,
                InstanciaWhatsApp.api_key_encrypted,
                Cliente.status,
                *OVERRIDE_COLUMNS,
            )
            .join(Cliente, Cliente.id == Conversation.cliente_id)
            .outerjoin(InstanciaWhatsApp, InstanciaWhatsApp.id == Conversation.instancia_id)
            .where(Conversation.id == conversation_id)
            .with_for_update(of=Conversation)
        )
    ).first()
    if row is None:
        return None
    pending = (await session.execute(_pending(conversation_id))).all()
    if not pending:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(answer_due_at=None)
        )
        return None
    in_progress = {m.turn_id for m in pending if m.turn_status is TurnStatus.PROCESSANDO}
    if in_progress and await _abandon_expired(session, in_progress) != in_progress:
        return None  # a live lease: its owner answers these; the deadline stays for recovery
    last_activity = await session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation_id, Message.id < min(m.id for m in pending)
        )
    )
    return Claim(
        conversation_id=conversation_id,
        cliente_id=row.cliente_id,
        chat_jid=row.chat_jid,
        instance_id=row.instance_id,
        instance_api_key_encrypted=row.api_key_encrypted,
        cliente_status=row.status,
        overrides=overrides_of(row),
        burst=tuple(_burst_message(m) for m in pending),
        state=ConversationState(
            paused_until=row.paused_until,
            session_started_at=row.session_started_at,
            last_activity_at=last_activity,
            out_of_office_sent_at=row.out_of_office_sent_at,
        ),
    )


async def _abandon_expired(session: AsyncSession, turn_ids: set[int]) -> set[int]:
    """Mark ABANDONADA those of these PROCESSANDO turns whose lease expired (compare-and-set:
    an owner that records its reply first keeps its turn); returns the ids abandoned."""
    result = await session.execute(
        update(Turn)
        .where(
            Turn.id.in_(turn_ids),
            Turn.status == TurnStatus.PROCESSANDO,
            or_(Turn.lease_expires_at.is_(None), Turn.lease_expires_at < func.now()),
        )
        .values(status=TurnStatus.ABANDONADA, lease_owner=None)
        .returning(Turn.id)
    )
    return set(result.scalars())


async def start_turn(
    session: AsyncSession,
    claim: Claim,
    *,
    user_text: str,
    new_session: bool,
    out_of_office: bool,
    lease_owner: str,
    lease_s: float,
) -> int:
    """A PROCESSANDO turn owning the claimed messages, leased to `lease_owner` for `lease_s`."""
    turn = Turn(
        conversation_id=claim.conversation_id,
        cliente_id=claim.cliente_id,
        status=TurnStatus.PROCESSANDO,
        user_text=user_text,
        lease_owner=lease_owner,
        lease_expires_at=func.now() + timedelta(seconds=lease_s),
    )
    session.add(turn)
    await session.flush()
    ids = [m.message_id for m in claim.burst]
    await session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == MessageStatus.RECEBIDA)
        .values(turn_id=turn.id)
    )
    changes: dict[str, Any] = {}
    if new_session:
        changes["session_started_at"] = func.now()
    if out_of_office:
        changes["out_of_office_sent_at"] = func.now()
    if changes:
        await session.execute(
            update(Conversation).where(Conversation.id == claim.conversation_id).values(**changes)
        )
    return turn.id


async def renew_lease(
    session: AsyncSession, turn_id: int, *, lease_owner: str, lease_s: float
) -> bool:
    """Extend the turn's lease if it is still PROCESSANDO and ours; False: it was taken over."""
    result = await session.execute(
        update(Turn)
        .where(
            Turn.id == turn_id,
            Turn.status == TurnStatus.PROCESSANDO,
            Turn.lease_owner == lease_owner,
        )
        .values(lease_expires_at=func.now() + timedelta(seconds=lease_s))
        .returning(Turn.id)
    )
    return result.first() is not None


async def chat_activity(
    session: AsyncSession,
    conversation_id: int,
    cliente_id: int,
    *,
    window_s: float,
    count_tokens: bool,
) -> ChatActivity:
    """The contact's messages and our reply parts of the last `window_s` (at most
    ACTIVITY_ROWS), and the cliente's LLM tokens of the day (UTC) when `count_tokens`."""
    at = func.coalesce(Message.last_attempt_at, Message.created_at)  # a part: when it was sent
    rows = (
        await session.execute(
            select(Message.direction, Message.text, at.label("at"))
            .where(
                Message.conversation_id == conversation_id,
                Message.created_at >= func.now() - timedelta(seconds=window_s),
                or_(Message.direction == Direction.INBOUND, Message.author == Author.BOT),
            )
            .order_by(Message.created_at.desc())
            .limit(ACTIVITY_ROWS)
        )
    ).all()
    inbound = [Sent(r.at, r.text) for r in reversed(rows) if r.direction == Direction.INBOUND]
    replies = [Sent(r.at, r.text) for r in reversed(rows) if r.direction != Direction.INBOUND]
    tokens: int | None = 0
    if count_tokens:
        midnight_utc = func.timezone(
            "UTC", func.date_trunc("day", func.timezone("UTC", func.now()))
        )
        tokens = await session.scalar(
            select(
                func.coalesce(
                    func.sum(
                        func.coalesce(Turn.prompt_tokens, 0)
                        + func.coalesce(Turn.completion_tokens, 0)
                    ),
                    0,
                )
            ).where(Turn.cliente_id == cliente_id, Turn.created_at >= midnight_utc)
        )
    return ChatActivity(inbound, replies, int(tokens or 0))


async def skip_burst(session: AsyncSession, claim: Claim, *, reason: str) -> None:
    """Record that a burst gets no reply (paused, closed and already told)."""
    ids = [m.message_id for m in claim.burst]
    await session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == MessageStatus.RECEBIDA)
        .values(status=MessageStatus.IGNORADA, ignored_reason=reason)
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.id == claim.conversation_id)
        .values(answer_due_at=None)
    )


async def record_reply(
    session: AsyncSession,
    *,
    turn_id: int,
    lease_owner: str,
    context: ConversationContext,
    reply_text: str,
    reply_kind: ReplyKind,
    sources: list[dict[str, Any]],
    parts: list[str],
    deliver: bool,
    close_session: bool,
    max_wait_s: float,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    claim_first_s: float | None = None,
) -> list[OutboundPart] | None:
    """Store the reply and one row per part, owed (PENDENTE, due now) when `deliver`, else
    REGISTRADA (no Evolution: the turn is answered at once). Compare-and-set: None, and nothing
    written, if the turn is no longer PROCESSANDO under this lease (it was taken over).
    With `claim_first_s`, the first owed part is also claimed for its first send (for that
    long) unless an earlier reply of the chat is still owed."""
    taken = await session.execute(
        update(Turn)
        .where(
            Turn.id == turn_id,
            Turn.status == TurnStatus.PROCESSANDO,
            Turn.lease_owner == lease_owner,
        )
        .values(
            status=TurnStatus.ENVIANDO,
            reply_text=reply_text,
            reply_kind=reply_kind,
            sources=sources,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Turn.id)
    )
    if taken.first() is None:
        return None
    owed = {"next_attempt_at": func.now(), "owed_since": func.now()} if deliver else {}
    rows = [
        Message(
            conversation_id=context.conversation_id,
            cliente_id=context.cliente_id,
            turn_id=turn_id,
            direction=Direction.OUTBOUND,
            author=Author.BOT,
            status=MessageStatus.PENDENTE if deliver else MessageStatus.REGISTRADA,
            instance_id=context.instance_id or "",
            text=part,
            **owed,
        )
        for part in parts
    ]
    session.add_all(rows)
    await session.flush()
    still_pending = exists().where(
        Message.conversation_id == context.conversation_id,
        Message.status == MessageStatus.RECEBIDA,
        Message.turn_id.is_(None),
    )
    changes: dict[str, Any] = {
        # Messages that came during this turn make the next burst: give it a fresh deadline.
        # This reply's own delivery is durable on its parts (next_attempt_at), not here.
        "answer_due_at": select(func.now() + timedelta(seconds=max_wait_s))
        .where(still_pending)
        .scalar_subquery(),
    }
    if close_session:
        changes["session_started_at"] = None
    await session.execute(
        update(Conversation).where(Conversation.id == context.conversation_id).values(**changes)
    )
    if not deliver:
        await settle_turn(session, turn_id)
    claimed = (
        deliver
        and claim_first_s is not None
        and await claim_new_part(
            session, rows[0].id, context.conversation_id, claim_s=claim_first_s
        )
    )
    return [OutboundPart(r.id, r.text, claimed=claimed and i == 0) for i, r in enumerate(rows)]


@dataclass(frozen=True)
class Overdue:
    """A conversation whose burst should have been answered by now."""

    conversation_id: int
    cliente_id: int
    session_id: str
    chat_jid: str
    overrides: ClienteOverrides
    pending: tuple[BurstMessage, ...]


async def overdue_conversations(
    session: AsyncSession, *, grace_s: float, limit: int = 200
) -> list[Overdue]:
    """Conversations past their durable deadline (plus `grace_s`), oldest first; each one's
    deadline is pushed back so it is re-activated once, not on every scan."""
    query = (
        select(
            Conversation.id,
            Conversation.cliente_id,
            Conversation.session_id,
            Conversation.chat_jid,
            *OVERRIDE_COLUMNS,
        )
        .join(Cliente, Cliente.id == Conversation.cliente_id)
        .where(Conversation.answer_due_at < func.now() - timedelta(seconds=grace_s))
        .order_by(Conversation.answer_due_at)
        .limit(limit)
        .with_for_update(of=Conversation, skip_locked=True)
    )
    found = []
    for row in (await session.execute(query)).all():
        pending = await load_pending(session, row.id)
        await session.execute(
            update(Conversation)
            .where(Conversation.id == row.id)
            .values(answer_due_at=func.now() + timedelta(seconds=grace_s) if pending else None)
        )
        if pending:
            found.append(
                Overdue(
                    conversation_id=row.id,
                    cliente_id=row.cliente_id,
                    session_id=row.session_id,
                    chat_jid=row.chat_jid,
                    overrides=overrides_of(row),
                    pending=tuple(pending),
                )
            )
    return found


async def require_conversation(
    session: AsyncSession, cliente_id: int, conversation_id: int
) -> None:
    """NotFound unless the conversation exists and belongs to this cliente."""
    owner = await session.scalar(
        select(Conversation.cliente_id).where(Conversation.id == conversation_id)
    )
    if owner != cliente_id:
        raise NotFound(f"conversation {conversation_id} does not exist for cliente {cliente_id}")


async def get_conversation(
    session: AsyncSession, cliente_id: int, conversation_id: int
) -> Conversation:
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.cliente_id == cliente_id
        )
    )
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist for cliente {cliente_id}")
    return conversation


async def list_conversations(session: AsyncSession, cliente_id: int) -> list[Conversation]:
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.cliente_id == cliente_id)
        .order_by(Conversation.last_message_at.desc())
    )
    return list(rows)


async def list_messages(
    session: AsyncSession, cliente_id: int, conversation_id: int
) -> list[Message]:
    """A conversation's messages, oldest first."""
    await require_conversation(session, cliente_id, conversation_id)
    rows = await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    )
    return list(rows)


async def list_turns(session: AsyncSession, cliente_id: int, conversation_id: int) -> list[Turn]:
    await require_conversation(session, cliente_id, conversation_id)
    rows = await session.scalars(
        select(Turn)
        .where(Turn.conversation_id == conversation_id, Turn.cliente_id == cliente_id)
        .order_by(Turn.id)
    )
    return list(rows)
