"""Recording what Evolution posts: idempotency keys, conversations and inbound messages.

Everything for one webhook happens in one transaction, committed before the webhook is answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from engine.db.models import (
    Author,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    ProcessedWebhook,
)
from engine.naming import session_id


@dataclass(frozen=True)
class Recorded:
    """A message stored in a conversation."""

    conversation_id: int
    session_id: str
    message_id: int | None  # None when the same message was already stored


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
) -> tuple[int, str]:
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
    conversation_id = (await session.execute(statement)).scalar_one()
    return conversation_id, sid


async def record_message(
    session: AsyncSession,
    *,
    cliente_id: int,
    instancia_id: int,
    instance_id: str,
    chat_jid: str,
    push_name: str | None,
    direction: Direction,
    author: Author,
    status: MessageStatus,
    wa_message_id: str,
    text: str,
    message_type: str | None,
    wa_timestamp: int | None,
    ignored_reason: str | None = None,
) -> Recorded:
    conversation_id, sid = await upsert_conversation(
        session,
        cliente_id=cliente_id,
        instancia_id=instancia_id,
        chat_jid=chat_jid,
        push_name=push_name if author is Author.CUSTOMER else None,
    )
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
    return Recorded(conversation_id, sid, result.scalar_one_or_none())
