"""Recording what Evolution posts: idempotency keys, conversations and inbound messages.

Everything for one webhook happens in one transaction, committed before the webhook is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.naming import session_id
from engine.db.models import (
    Author,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    ProcessedWebhook,
)

# A fromMe upsert with the text of a reply we sent this recently is our own echo, not a human.
OWN_ECHO_WINDOW = timedelta(minutes=10)
UNTIL_RESUMED = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConversationRow:
    id: int
    session_id: str
    paused_until: datetime | None


def evolution_source(instance_id: str) -> str:
    return f"evolution:{instance_id}"


async def claim_webhook_key(session: AsyncSession, *, source: str, key: str, outcome: str) -> bool:
    """Record that (source, key) was processed; False if it already was (a redelivery)."""
    result = await session.execute(
        insert(ProcessedWebhook)
        .values(source=source, key=key, outcome=outcome)
        .on_conflict_do_nothing()
        .returning(ProcessedWebhook.key)
    )
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
    ).returning(Conversation.id, Conversation.paused_until)
    row = (await session.execute(statement)).one()
    return ConversationRow(row.id, sid, row.paused_until)


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


async def is_own_echo(session: AsyncSession, conversation_id: int, text: str) -> bool:
    """Whether a fromMe text is a reply Conversa itself recorded (sent or being sent) recently."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Message.conversation_id == conversation_id,
                    Message.author == Author.BOT,
                    Message.text == text,
                    Message.created_at > func.now() - OWN_ECHO_WINDOW,
                )
            )
        )
    )


async def pause(
    session: AsyncSession, conversation_id: int, *, seconds: float | None, by: str
) -> datetime | None:
    """Pause the bot in a conversation (None = until resumed); returns the new `paused_until`."""
    until = func.now() + timedelta(seconds=seconds) if seconds is not None else UNTIL_RESUMED
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(paused_until=until, paused_by=by, answer_due_at=None)
        .returning(Conversation.paused_until)
    )
    return result.scalar_one()


async def resume(session: AsyncSession, conversation_id: int) -> None:
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(paused_until=None, paused_by=None)
    )
