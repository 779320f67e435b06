"""The needs-a-human state of a conversation: set when the bot could not answer, cleared when a
human answers on the phone (a takeover) or an operator resumes the chat.

It rides on the one pause rule (`engine.core.behaviour.is_paused`): flagging a chat also pauses
it until resumed (`paused_by = "needs_human"`), so the webhook and the turn policy already leave
the chat to the human with no rule of their own.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.db.inbox import UNTIL_RESUMED
from engine.db.models import Conversation

PAUSED_BY = "needs_human"


async def flag_needs_human(session: AsyncSession, conversation_id: int, *, reason: str) -> bool:
    """Mark the chat as waiting for a human (the first flag's time is kept: the queue is
    oldest first) and pause the bot until a human answers or an operator resumes it.
    Returns True if it was not waiting already."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            needs_human_since=func.coalesce(Conversation.needs_human_since, func.now()),
            needs_human_reason=reason,
            paused_until=UNTIL_RESUMED,
            paused_by=PAUSED_BY,
        )
        .returning(Conversation.needs_human_since == func.now())
    )
    return bool(result.scalar_one())


async def waiting(session: AsyncSession, cliente_id: int) -> list[Conversation]:
    """The cliente's chats waiting for a human, oldest first."""
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.cliente_id == cliente_id, Conversation.needs_human_since.is_not(None))
        .order_by(Conversation.needs_human_since, Conversation.id)
    )
    return list(rows)
