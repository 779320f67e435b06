"""A cliente's history for the tenant API: pages of conversations and messages, the export
stream, and analytics per day computed in PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.history import ConversationFilter, DayRange, DayStats
from engine.core.statuses import Author, Direction, MessageStatus, TurnStatus
from engine.db.conversations import require_conversation
from engine.db.models import Conversation, Message, Turn

EXPORT_BATCH = 500  # rows fetched per round trip while streaming an export


async def page_conversations(
    session: AsyncSession,
    cliente_id: int,
    *,
    status: ConversationFilter | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[Conversation]:
    """Newest first (by id); the next page starts below the last id seen."""
    query = select(Conversation).where(Conversation.cliente_id == cliente_id)
    now = func.now()
    paused = Conversation.paused_until > now
    if status is ConversationFilter.PAUSED:
        query = query.where(paused)
    elif status is ConversationFilter.WAITING:
        query = query.where(Conversation.answer_due_at.is_not(None), ~_coalesce_false(paused))
    elif status is ConversationFilter.IDLE:
        query = query.where(Conversation.answer_due_at.is_(None), ~_coalesce_false(paused))
    if since is not None:
        query = query.where(Conversation.last_message_at >= since)
    if until is not None:
        query = query.where(Conversation.last_message_at < until)
    if before_id is not None:
        query = query.where(Conversation.id < before_id)
    rows = await session.scalars(query.order_by(Conversation.id.desc()).limit(limit))
    return list(rows)


def _coalesce_false(condition: Any) -> Any:
    return func.coalesce(condition, False)


async def page_messages(
    session: AsyncSession,
    cliente_id: int,
    conversation_id: int,
    *,
    status: MessageStatus | None,
    direction: Direction | None,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
) -> list[Message]:
    """Oldest first (by id); the next page starts above the last id seen."""
    await require_conversation(session, cliente_id, conversation_id)
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.cliente_id == cliente_id
    )
    if status is not None:
        query = query.where(Message.status == status)
    if direction is not None:
        query = query.where(Message.direction == direction)
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    if after_id is not None:
        query = query.where(Message.id > after_id)
    rows = await session.scalars(query.order_by(Message.id).limit(limit))
    return list(rows)


def _export_query(cliente_id: int, start: datetime, end: datetime) -> Any:  # a Select
    return (
        select(
            Message.id.label("message_id"),
            Message.conversation_id,
            Conversation.chat_jid,
            Message.created_at,
            Message.direction,
            Message.author,
            Message.status,
            Message.message_type,
            Message.text,
            Message.ignored_reason,
            Message.turn_id,
            Turn.reply_kind,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Turn, and_(Turn.id == Message.turn_id, Message.direction == Direction.OUTBOUND))
        .where(
            Message.cliente_id == cliente_id,
            Conversation.cliente_id == cliente_id,
            Message.created_at >= start,
            Message.created_at < end,
        )
        .order_by(Message.created_at, Message.id)
    )


async def stream_export(
    session: AsyncSession, cliente_id: int, days: DayRange
) -> AsyncIterator[dict[str, Any]]:
    """Every message of the range, oldest first, read in batches through a server-side cursor
    (a year of history is never held in memory)."""
    start, end = days.bounds()
    result = await session.stream(
        _export_query(cliente_id, start, end).execution_options(yield_per=EXPORT_BATCH)
    )
    async for row in result.mappings():
        yield dict(row)


async def analytics(session: AsyncSession, cliente_id: int, days: DayRange) -> list[DayStats]:
    """One `DayStats` per day of the range (days without activity included), in SQL."""
    start, end = days.bounds()
    stats = {day: DayStats(day) for day in days.days()}

    message_day = func.date(func.timezone(days.tz, Message.created_at)).label("day")
    inbound = and_(Message.direction == Direction.INBOUND, Message.author == Author.CUSTOMER)
    went_out = and_(
        Message.direction == Direction.OUTBOUND,
        Message.status.in_((MessageStatus.ENVIADA, MessageStatus.REGISTRADA)),
    )
    rows = await session.execute(
        select(
            message_day,
            func.count().filter(inbound),
            func.count().filter(went_out),
            func.count(distinct(Message.conversation_id)).filter(inbound),
            func.count(distinct(Message.conversation_id)).filter(Message.author == Author.HUMAN),
        )
        .where(
            Message.cliente_id == cliente_id, Message.created_at >= start, Message.created_at < end
        )
        .group_by(message_day)
    )
    for day, messages_in, messages_out, active, takeovers in rows:
        if day in stats:
            s = stats[day]
            s.messages_in, s.messages_out = messages_in, messages_out
            s.active_conversations, s.takeovers = active, takeovers

    turn_day = func.date(func.timezone(days.tz, Turn.answered_at)).label("day")
    answered = and_(
        Turn.cliente_id == cliente_id,
        Turn.status == TurnStatus.RESPONDIDA,
        Turn.answered_at >= start,
        Turn.answered_at < end,
    )
    rows = await session.execute(
        select(
            turn_day,
            Turn.reply_kind,
            func.count(),
            func.coalesce(
                func.sum(
                    func.coalesce(Turn.prompt_tokens, 0) + func.coalesce(Turn.completion_tokens, 0)
                ),
                0,
            ),
        )
        .where(answered)
        .group_by(turn_day, Turn.reply_kind)
    )
    for day, kind, count, tokens in rows:
        if day in stats:
            s = stats[day]
            s.replies += count
            s.replies_by_kind[kind or "unknown"] = count
            s.llm_tokens += int(tokens)

    first_message_at = (
        select(func.min(Message.created_at))
        .where(Message.turn_id == Turn.id, Message.direction == Direction.INBOUND)
        .correlate(Turn)
        .scalar_subquery()
    )
    wait_s = func.extract("epoch", Turn.answered_at - first_message_at)
    rows = await session.execute(
        select(turn_day, func.percentile_cont(0.5).within_group(wait_s))
        .where(answered)
        .group_by(turn_day)
    )
    for day, median in rows:
        if day in stats and median is not None:
            stats[day].median_reply_s = round(float(median), 3)
    return list(stats.values())


@dataclass(frozen=True)
class ChatSummary:
    """A row of the console's chat list: the conversation, its last message, and how many of
    its reply parts were given up (FALHOU)."""

    conversation: Conversation
    last_text: str | None
    last_author: Author | None
    failed_sends: int


async def chat_summaries(
    session: AsyncSession, cliente_id: int, *, limit: int
) -> list[ChatSummary]:
    """The cliente's chats, most recent message first (three indexed queries)."""
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.cliente_id == cliente_id)
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            .limit(limit)
        )
    )
    ids = [c.id for c in conversations]
    if not ids:
        return []
    last_rows = await session.execute(
        select(Message.conversation_id, Message.text, Message.author)
        .where(Message.conversation_id.in_(ids))
        .distinct(Message.conversation_id)
        .order_by(Message.conversation_id, Message.id.desc())
    )
    last: dict[int, tuple[str, Author]] = {cid: (text, author) for cid, text, author in last_rows}
    failed_rows = await session.execute(
        select(Message.conversation_id, func.count())
        .where(Message.conversation_id.in_(ids), Message.status == MessageStatus.FALHOU)
        .group_by(Message.conversation_id)
    )
    failed: dict[int, int] = {cid: count for cid, count in failed_rows}
    return [
        ChatSummary(
            conversation=c,
            last_text=last[c.id][0] if c.id in last else None,
            last_author=last[c.id][1] if c.id in last else None,
            failed_sends=int(failed.get(c.id, 0)),
        )
        for c in conversations
    ]


async def failed_sends(session: AsyncSession, conversation_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Message.conversation_id == conversation_id,
                Message.status == MessageStatus.FALHOU,
            )
        )
        or 0
    )
