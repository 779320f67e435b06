"""The needs-a-human state of a conversation: set when the bot could not answer, cleared when a
human answers on the phone (a takeover) or an operator resumes the chat.

It rides on the one pause rule (`engine.core.behaviour.is_paused`): flagging a chat also pauses
it until resumed (`paused_by = "needs_human"`), so the webhook and the turn policy already leave
the chat to the human with no rule of their own. A turn sets the flag in the statement that
records its reply or its skipped burst (`engine.db.turn_path._FLAG_SET`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.db.models import Conversation

PAUSED_BY = "needs_human"


async def waiting(session: AsyncSession, cliente_id: int) -> list[Conversation]:
    """The cliente's chats waiting for a human, oldest first."""
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.cliente_id == cliente_id, Conversation.needs_human_since.is_not(None))
        .order_by(Conversation.needs_human_since, Conversation.id)
    )
    return list(rows)
