"""Queries the conversation pipeline needs: pending messages, memory, turns and replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.db.models import (
    Author,
    Cliente,
    Conversation,
    Direction,
    InstanciaWhatsApp,
    Message,
    MessageStatus,
    Turn,
    TurnStatus,
)
from engine.debounce import PendingMessage, merge_burst
from engine.errors import NotFound
from engine.prompt import Turn as MemoryTurn


@dataclass(frozen=True)
class TurnStart:
    """A turn that claimed its messages: everything needed to answer and send it."""

    turn_id: int
    cliente_id: int
    message_ids: tuple[int, ...]
    user_text: str
    system_prompt: str | None
    chat_jid: str
    instance_id: str | None  # Evolution instance to send through
    instance_api_key: str | None


@dataclass(frozen=True)
class Outbound:
    text: str
    status: MessageStatus
    wa_message_id: str | None = None
    error: str | None = None


async def load_pending(session: AsyncSession, conversation_id: int) -> list[PendingMessage]:
    rows = await session.execute(
        select(Message.id, Message.text, Message.wa_timestamp)
        .where(Message.conversation_id == conversation_id, Message.status == MessageStatus.RECEBIDA)
        .order_by(Message.wa_timestamp, Message.id)
    )
    return [PendingMessage(row.id, row.text, row.wa_timestamp or 0) for row in rows]


async def load_memory(session: AsyncSession, conversation_id: int, limit: int) -> list[MemoryTurn]:
    """The last `limit` answered turns, oldest first."""
    rows = await session.execute(
        select(Turn.user_text, Turn.reply_text)
        .where(
            Turn.conversation_id == conversation_id,
            Turn.status == TurnStatus.RESPONDIDA,
            Turn.reply_text.is_not(None),
        )
        .order_by(Turn.id.desc())
        .limit(limit)
    )
    return [MemoryTurn(row.user_text, row.reply_text) for row in reversed(rows.all())]


async def begin_turn(session: AsyncSession, conversation_id: int) -> TurnStart | None:
    """Claim every unanswered message of the conversation into a new turn (None if none left).

    Claiming all of them, not just the ones an actor happens to hold, means a message whose
    hand-off to the actor was lost is still answered by the conversation's next turn.
    """
    context = (
        await session.execute(
            select(
                Conversation.cliente_id,
                Conversation.chat_jid,
                Cliente.system_prompt,
                InstanciaWhatsApp.instance_id,
                InstanciaWhatsApp.api_key,
            )
            .join(Cliente, Cliente.id == Conversation.cliente_id)
            .outerjoin(InstanciaWhatsApp, InstanciaWhatsApp.id == Conversation.instancia_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    if context is None:
        return None
    rows = (
        await session.execute(
            select(Message.id, Message.text, Message.wa_timestamp)
            .where(
                Message.conversation_id == conversation_id,
                Message.status == MessageStatus.RECEBIDA,
            )
            .order_by(Message.wa_timestamp, Message.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return None
    burst = [PendingMessage(row.id, row.text, row.wa_timestamp or 0) for row in rows]
    user_text = merge_burst(burst)
    turn = Turn(
        conversation_id=conversation_id,
        cliente_id=context.cliente_id,
        status=TurnStatus.PROCESSANDO,
        user_text=user_text,
    )
    session.add(turn)
    await session.flush()
    ids = tuple(m.message_id for m in burst)
    await session.execute(update(Message).where(Message.id.in_(ids)).values(turn_id=turn.id))
    return TurnStart(
        turn_id=turn.id,
        cliente_id=context.cliente_id,
        message_ids=ids,
        user_text=user_text,
        system_prompt=context.system_prompt,
        chat_jid=context.chat_jid,
        instance_id=context.instance_id,
        instance_api_key=context.api_key,
    )


async def complete_turn(
    session: AsyncSession,
    start: TurnStart,
    *,
    conversation_id: int,
    reply_text: str,
    reply_kind: str,
    sources: list[dict[str, Any]],
    outbound: list[Outbound],
) -> None:
    delivered = all(o.status is not MessageStatus.FALHOU for o in outbound)
    await session.execute(
        update(Turn)
        .where(Turn.id == start.turn_id)
        .values(
            status=TurnStatus.RESPONDIDA if delivered else TurnStatus.FALHOU,
            reply_text=reply_text,
            reply_kind=reply_kind,
            sources=sources,
            answered_at=func.now(),
        )
    )
    await session.execute(
        update(Message)
        .where(Message.id.in_(start.message_ids), Message.status == MessageStatus.RECEBIDA)
        .values(status=MessageStatus.RESPONDIDA)
    )
    for part in outbound:
        session.add(
            Message(
                conversation_id=conversation_id,
                cliente_id=start.cliente_id,
                turn_id=start.turn_id,
                direction=Direction.OUTBOUND,
                author=Author.BOT,
                status=part.status,
                instance_id=start.instance_id or "",
                wa_message_id=part.wa_message_id,
                text=part.text,
                error=part.error,
            )
        )
    await session.flush()


async def list_conversations(session: AsyncSession, cliente_id: int) -> list[Conversation]:
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.cliente_id == cliente_id)
        .order_by(Conversation.last_message_at.desc())
    )
    return list(rows)


async def require_conversation(
    session: AsyncSession, cliente_id: int, conversation_id: int
) -> None:
    """NotFound unless the conversation exists and belongs to this cliente."""
    owner = await session.scalar(
        select(Conversation.cliente_id).where(Conversation.id == conversation_id)
    )
    if owner != cliente_id:
        raise NotFound(f"conversation {conversation_id} does not exist for cliente {cliente_id}")


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
