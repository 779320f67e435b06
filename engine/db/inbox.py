"""Recording what Evolution posts: idempotency keys, conversations and inbound messages.

Everything for one webhook happens in one transaction, committed before the webhook is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, false, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.inbound import ChatFacts
from engine.core.naming import session_id
from engine.core.statuses import Author, Direction, MessageStatus
from engine.db.models import Conversation, Message, ProcessedWebhook

# A fromMe upsert with the text of a reply we sent this recently is our own echo, not a human.
OWN_ECHO_WINDOW = timedelta(minutes=10)
UNTIL_RESUMED = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConversationRow:
    id: int
    session_id: str


def evolution_source(instance_id: str) -> str:
    return f"evolution:{instance_id}"


def claim_statement(*, source: str, key: str, outcome: str) -> Any:
    """INSERT of an idempotency key that returns it only when it was not claimed before."""
    return (
        insert(ProcessedWebhook)
        .values(source=source, key=key, outcome=outcome)
        .on_conflict_do_nothing()
        .returning(ProcessedWebhook.key)
    )


async def claim_webhook_key(session: AsyncSession, *, source: str, key: str, outcome: str) -> bool:
    """Record that (source, key) was processed; False if it already was (a redelivery). Claimed
    last in the webhook's transaction, which is rolled back when this returns False."""
    result = await session.execute(claim_statement(source=source, key=key, outcome=outcome))
    return result.first() is not None


async def upsert_conversation(
    session: AsyncSession,
    *,
    cliente_id: int,
    instancia_id: int,
    chat_jid: str,
    push_name: str | None,
) -> ConversationRow:
    sid = session_id(cliente_id, chat_jid)
    values = insert(Conversation).values(
        cliente_id=cliente_id,
        instancia_id=instancia_id,
        chat_jid=chat_jid,
        session_id=sid,
        push_name=push_name,
    )
    statement = values.on_conflict_do_update(
        index_elements=[Conversation.cliente_id, Conversation.chat_jid],
        set_={
            # Replies go out through the instance the customer last wrote to.
            "instancia_id": values.excluded.instancia_id,
            "push_name": func.coalesce(values.excluded.push_name, Conversation.push_name),
            "last_message_at": func.now(),
        },
    ).returning(Conversation.id)
    return ConversationRow((await session.execute(statement)).scalar_one(), sid)


async def insert_message(
    session: AsyncSession,
    *,
    conversation_id: int,
    cliente_id: int,
    instance_id: str,
    direction: Direction,
    author: Author,
    status: MessageStatus,
    wa_message_id: str,
    text: str,
    message_type: str | None,
    wa_timestamp: int | None,
    ignored_reason: str | None = None,
) -> int | None:
    """The new row's id; None if (instance, wa_message_id) was already stored."""
    result = await session.execute(
        insert(Message)
        .values(
            conversation_id=conversation_id,
            cliente_id=cliente_id,
            direction=direction,
            author=author,
            status=status,
            instance_id=instance_id,
            wa_message_id=wa_message_id,
            message_type=message_type,
            text=text,
            wa_timestamp=wa_timestamp,
            ignored_reason=ignored_reason,
        )
        .on_conflict_do_nothing()
        .returning(Message.id)
    )
    return result.scalar_one_or_none()


async def set_answer_deadline(
    session: AsyncSession, conversation_id: int, *, max_wait_s: float
) -> None:
    """The durable deadline of the burst being collected: set by its first message only."""
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.answer_due_at.is_(None))
        .values(answer_due_at=func.now() + timedelta(seconds=max_wait_s))
    )


async def chat_facts(
    session: AsyncSession, *, cliente_id: int, chat_jid: str, echo_text: str | None
) -> ChatFacts:
    """What the inbound decision needs about a chat: its pause, and (for a `fromMe` text) whether
    it equals a reply Conversa recorded (sent or being sent) recently, i.e. our own echo."""
    own_echo = (
        exists()
        .where(
            Message.conversation_id == Conversation.id,
            Message.author == Author.BOT,
            Message.text == echo_text,
            Message.created_at > func.now() - OWN_ECHO_WINDOW,
        )
        .correlate(Conversation)
    )
    row = (
        await session.execute(
            select(Conversation.paused_until, own_echo if echo_text is not None else false()).where(
                Conversation.cliente_id == cliente_id, Conversation.chat_jid == chat_jid
            )
        )
    ).first()
    if row is None:
        return ChatFacts()
    return ChatFacts(paused_until=row[0], own_echo=bool(row[1]))


async def pause(
    session: AsyncSession, conversation_id: int, *, seconds: float | None, by: str
) -> datetime | None:
    """Pause the bot in a conversation (None = until resumed); returns the new `paused_until`."""
    until = func.now() + timedelta(seconds=seconds) if seconds is not None else UNTIL_RESUMED
    # A human answering on the phone is the hand-off done: the chat no longer waits for one.
    answered = {"needs_human_since": None, "needs_human_reason": None} if by == "human" else {}
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(paused_until=until, paused_by=by, answer_due_at=None, **answered)
        .returning(Conversation.paused_until)
    )
    return result.scalar_one()


async def resume(session: AsyncSession, conversation_id: int) -> None:
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(paused_until=None, paused_by=None, needs_human_since=None, needs_human_reason=None)
    )
