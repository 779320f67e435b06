"""What operators glance at (`conversa status`, the sends-owed gauge): counts across clientes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.statuses import DocumentStatus, MessageStatus
from engine.db.models import OWED_WHERE, Conversation, KnowledgeDocument, Message


@dataclass(frozen=True)
class Failure:
    """Something that did not work recently: a reply part Evolution refused, or a document
    whose ingestion failed. `chat` is the customer's JID (a reply), None for a document."""

    at: datetime
    cliente_id: int
    what: str  # "send" | "ingestion"
    error: str
    chat: str | None = None
    conversation_id: int | None = None


# Written as SQL literals, not bound parameters, so that PostgreSQL can use the partial indexes
# (owed parts, migration 008; `WHERE status = 'FALHOU'`, migration 012) even for a prepared
# statement's generic plan, which cannot prove a parameter equal to the index's predicate.
OWED = text(f"messages.{OWED_WHERE}")
FAILED = text(f"messages.status = '{MessageStatus.FALHOU.value}'")


async def sends_owed(session: AsyncSession) -> int:
    """Reply parts recorded and not yet confirmed sent by Evolution (owed: PENDENTE, ENVIANDO,
    INCERTA)."""
    query = select(func.count()).select_from(Message).where(OWED)
    return int(await session.scalar(query) or 0)


async def pending_bursts(session: AsyncSession) -> dict[int, int]:
    """Cliente id -> conversations with a burst accepted and not yet answered (a deadline set)."""
    query = (
        select(Conversation.cliente_id, func.count())
        .where(Conversation.answer_due_at.is_not(None))
        .group_by(Conversation.cliente_id)
    )
    return {cliente_id: count for cliente_id, count in (await session.execute(query)).all()}


async def waiting_for_a_human(session: AsyncSession) -> dict[str, dict[int, int]]:
    """Why chats wait for a human -> cliente id -> how many (e.g. `llm_budget_exceeded`: the
    operator's alert that a cliente spent its daily LLM budget). Uses the needs-human index."""
    query = (
        select(Conversation.needs_human_reason, Conversation.cliente_id, func.count())
        .where(Conversation.needs_human_since.is_not(None))
        .group_by(Conversation.needs_human_reason, Conversation.cliente_id)
    )
    waiting: dict[str, dict[int, int]] = {}
    for reason, cliente_id, count in (await session.execute(query)).all():
        waiting.setdefault(reason or "", {})[cliente_id] = count
    return waiting


async def recent_failures(
    session: AsyncSession, *, since_s: float, limit: int = 20
) -> list[Failure]:
    """Failed sends and failed ingestions of the last `since_s` seconds, newest first."""
    since = func.now() - timedelta(seconds=since_s)
    sends = await session.execute(
        select(
            Message.created_at,
            Message.cliente_id,
            Message.error,
            Conversation.chat_jid,
            Conversation.id,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(FAILED, Message.created_at > since)
        .order_by(Message.created_at.desc())
        .limit(limit)
    )
    documents = await session.execute(
        select(KnowledgeDocument.updated_at, KnowledgeDocument.cliente_id, KnowledgeDocument.error)
        .where(
            KnowledgeDocument.status == DocumentStatus.ERRO, KnowledgeDocument.updated_at > since
        )
        .order_by(KnowledgeDocument.updated_at.desc())
        .limit(limit)
    )
    failures = [
        Failure(at, cliente_id, "send", error or "", chat, conversation_id)
        for at, cliente_id, error, chat, conversation_id in sends.all()
    ] + [
        Failure(at, cliente_id, "ingestion", error or "")
        for at, cliente_id, error in documents.all()
    ]
    return sorted(failures, key=lambda f: f.at, reverse=True)[:limit]
