"""What a business (or an operator) does to one chat: pause the bot, let it answer again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from engine.db import conversations as conversations_db
from engine.db import inbox as inbox_db
from engine.db.models import Conversation


async def pause(
    session: AsyncSession, cliente_id: int, conversation_id: int, *, duration_s: float | None
) -> Conversation:
    """Silence the bot in one chat (a human is answering), for a while or until resumed."""
    await conversations_db.require_conversation(session, cliente_id, conversation_id)
    await inbox_db.pause(session, conversation_id, seconds=duration_s, by="operator")
    await session.commit()
    return await conversations_db.get_conversation(session, cliente_id, conversation_id)


async def resume(session: AsyncSession, cliente_id: int, conversation_id: int) -> Conversation:
    await conversations_db.require_conversation(session, cliente_id, conversation_id)
    await inbox_db.resume(session, conversation_id)
    await session.commit()
    return await conversations_db.get_conversation(session, cliente_id, conversation_id)
