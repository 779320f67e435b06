"""Pruning old rows in batches (each statement deletes at most `batch` rows, so no pass holds
long locks): idempotency keys, silent conversations, and finished messages and turns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.statuses import OWED_STATUSES, MessageStatus, TurnStatus
from engine.db.models import Conversation, Message, ProcessedWebhook, Turn

# Rows still being worked on are never pruned, however old.
_UNFINISHED_MESSAGES = OWED_STATUSES | {MessageStatus.RECEBIDA}
_FINISHED_TURNS = (TurnStatus.RESPONDIDA, TurnStatus.FALHOU, TurnStatus.ABANDONADA)


async def prune_processed_webhooks(session: AsyncSession, before: datetime, batch: int) -> int:
    keys = (
        select(ProcessedWebhook.source, ProcessedWebhook.key)
        .where(ProcessedWebhook.received_at < before)
        .limit(batch)
    )
    return await _deleted(
        session,
        delete(ProcessedWebhook).where(
            tuple_(ProcessedWebhook.source, ProcessedWebhook.key).in_(keys)
        ),
    )


async def prune_conversations(session: AsyncSession, before: datetime, batch: int) -> int:
    """Conversations silent since `before` with nothing owed (their messages and turns go with
    them)."""
    ids = (
        select(Conversation.id)
        .where(Conversation.last_message_at < before, Conversation.answer_due_at.is_(None))
        .limit(batch)
    )
    return await _deleted(session, delete(Conversation).where(Conversation.id.in_(ids)))


async def prune_messages(session: AsyncSession, before: datetime, batch: int) -> int:
    ids = (
        select(Message.id)
        .where(Message.created_at < before, Message.status.not_in(_UNFINISHED_MESSAGES))
        .limit(batch)
    )
    return await _deleted(session, delete(Message).where(Message.id.in_(ids)))


async def prune_turns(session: AsyncSession, before: datetime, batch: int) -> int:
    ids = (
        select(Turn.id)
        .where(Turn.created_at < before, Turn.status.in_(_FINISHED_TURNS))
        .limit(batch)
    )
    return await _deleted(session, delete(Turn).where(Turn.id.in_(ids)))


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
