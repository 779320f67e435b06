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
    return await _delete_batch(
        session,
        Conversation,
        Conversation.last_message_at < before,
        Conversation.answer_due_at.is_(None),
        batch=batch,
    )


async def prune_messages(session: AsyncSession, before: datetime, batch: int) -> int:
    return await _delete_batch(
        session,
        Message,
        Message.created_at < before,
        Message.status.not_in(_UNFINISHED_MESSAGES),
        batch=batch,
    )


async def prune_turns(session: AsyncSession, before: datetime, batch: int) -> int:
    return await _delete_batch(
        session, Turn, Turn.created_at < before, Turn.status.in_(_FINISHED_TURNS), batch=batch
    )


async def _delete_batch(session: AsyncSession, model: Any, *conditions: Any, batch: int) -> int:
    """Delete at most `batch` rows of `model` (keyed by `id`) matching every condition."""
    ids = select(model.id).where(*conditions).limit(batch)
    return await _deleted(session, delete(model).where(model.id.in_(ids)))


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
