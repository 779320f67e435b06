"""Queries the conversation pipeline needs: pending messages, memory, leases, recovery, reads.

A turn moves PROCESSANDO → ENVIANDO → RESPONDIDA (or FALHOU, dead-lettered). While PROCESSANDO
it is owned by a lease (`lease_owner`, `lease_expires_at`) that its reply worker renews; recovery
takes a turn over only once its lease expired, and every status change is a compare-and-set on
the status (and the owner), so a turn gets one reply even if two workers worked on it. The reply
and each of its parts are recorded (parts owed, PENDENTE) before anything is sent; delivering
them is `engine.db.deliveries`. The statements a customer waits for (claiming a burst, starting
its turn, recording its reply) are `engine.db.turn_path`, on raw asyncpg; they keep these rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.behaviour import ClienteOverrides
from engine.core.debounce import BurstMessage
from engine.core.prompt import Exchange
from engine.core.statuses import MessageStatus, TurnStatus
from engine.core.turns import MEMORY_KINDS
from engine.db.clientes import OVERRIDE_COLUMNS, overrides_of
from engine.db.models import Cliente, Conversation, Message, Turn
from engine.errors import NotFound

# Turns whose messages still wait for a reply: being produced (maybe by a dead worker, whose
# lease will expire) or given up before a reply existed.
UNFINISHED_TURNS = (TurnStatus.PROCESSANDO, TurnStatus.ABANDONADA)


def _pending(conversation_id: int) -> Any:  # a Select; typed Any to keep rows' attributes
    """Inbound messages waiting for a reply: in no turn yet, or in an unfinished one. Messages
    of a turn whose reply is owed or dead-lettered are unanswered too, but not pending: that
    reply is delivered (or re-sent) as it is, never produced again. The claim's `pending`
    (`engine.db.turn_path.GATHER_SQL`) is the same rule on raw asyncpg: change both."""
    return (
        select(
            Message.id,
            Message.text,
            Message.message_type,
            Message.wa_timestamp,
            Message.created_at,
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


async def load_pending(session: AsyncSession, conversation_id: int) -> list[BurstMessage]:
    """The pending messages, each with when it was accepted (its row's `created_at`): a new
    actor (a chat's first, or a re-created one) restores them, and their debounce counts from
    then, not from the actor's start."""
    rows = await session.execute(_pending(conversation_id))
    return [
        BurstMessage(
            row.id,
            row.text,
            row.message_type,
            row.wa_timestamp or 0,
            accepted_at_s=row.created_at.timestamp(),
        )
        for row in rows
    ]


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
