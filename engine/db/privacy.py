"""One contact's rows, for LGPD requests: gather them for an export, delete them for an erasure;
and the audit log that records who erased or deleted what.

Every query is keyed by the cliente, and a contact is every JID a cliente's `lid_pairs` say is
the same person (the phone and its LIDs), so an erasure cannot leave half of someone behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.statuses import ClienteStatus
from engine.db.conversations import load_memory
from engine.db.inbox import evolution_source
from engine.db.models import (
    ApiKey,
    AuditRecord,
    Cliente,
    Conversation,
    InstanciaWhatsApp,
    LidPair,
    Message,
    ProcessedWebhook,
    Turn,
)

_CONVERSATION_FIELDS = (
    "id",
    "chat_jid",
    "session_id",
    "push_name",
    "created_at",
    "last_message_at",
    "session_started_at",
    "answer_due_at",
    "paused_until",
    "paused_by",
    "out_of_office_sent_at",
    "needs_human_since",
    "needs_human_reason",
)
_MESSAGE_FIELDS = (
    "id",
    "direction",
    "author",
    "status",
    "instance_id",
    "wa_message_id",
    "message_type",
    "text",
    "ignored_reason",
    "error",
    "turn_id",
    "wa_timestamp",
    "created_at",
)
_TURN_FIELDS = (
    "id",
    "status",
    "user_text",
    "reply_text",
    "reply_kind",
    "sources",
    "prompt_tokens",
    "completion_tokens",
    "created_at",
    "answered_at",
)


async def contact_jids(session: AsyncSession, cliente_id: int, jid: str) -> list[str]:
    """`jid` and every other JID this cliente learned is the same person (lid ↔ phone)."""
    rows = await session.execute(
        select(LidPair.lid_jid, LidPair.phone_jid).where(
            LidPair.cliente_id == cliente_id,
            or_(LidPair.lid_jid == jid, LidPair.phone_jid == jid),
        )
    )
    found = {jid}
    for lid, phone in rows:
        found |= {lid, phone}
    return sorted(found)


async def _conversations(
    session: AsyncSession, cliente_id: int, jids: list[str]
) -> list[Conversation]:
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.cliente_id == cliente_id, Conversation.chat_jid.in_(jids))
        .order_by(Conversation.id)
    )
    return list(rows)


async def export_contact(
    session: AsyncSession, cliente_id: int, jids: list[str], *, history_turns: int
) -> dict[str, Any]:
    """Everything this cliente holds about the contact, as plain values: each conversation's
    state, messages, turns (with the passages copied into them) and memory, and the lid pairs."""
    conversations = []
    for conversation in await _conversations(session, cliente_id, jids):
        messages = await session.scalars(
            select(Message)
            .where(Message.cliente_id == cliente_id, Message.conversation_id == conversation.id)
            .order_by(Message.id)
        )
        turns = await session.scalars(
            select(Turn)
            .where(Turn.cliente_id == cliente_id, Turn.conversation_id == conversation.id)
            .order_by(Turn.id)
        )
        memory = await load_memory(session, conversation.id, history_turns)
        conversations.append(
            {
                **_fields(conversation, _CONVERSATION_FIELDS),
                "messages": [_fields(m, _MESSAGE_FIELDS) for m in messages],
                "turns": [_fields(t, _TURN_FIELDS) for t in turns],
                "memory": [{"user": e.user_text, "assistant": e.reply_text} for e in memory],
            }
        )
    pairs = await session.execute(
        select(LidPair.lid_jid, LidPair.phone_jid, LidPair.learned_at).where(
            LidPair.cliente_id == cliente_id,
            or_(LidPair.lid_jid.in_(jids), LidPair.phone_jid.in_(jids)),
        )
    )
    return {
        "jids": jids,
        "conversations": conversations,
        "lid_pairs": [
            {"lid_jid": lid, "phone_jid": phone, "learned_at": learned.isoformat()}
            for lid, phone, learned in pairs
        ],
    }


async def erase_contact(
    session: AsyncSession, cliente_id: int, jids: list[str]
) -> tuple[dict[str, int], list[str]]:
    """Delete the contact's conversations (their messages, owed reply parts and turns with the
    passages copied into them go with them), the idempotency keys of their messages and their
    lid pairs. Returns the counts and the session ids of the deleted conversations (whose actors
    must forget them). The caller commits."""
    conversations = await _conversations(session, cliente_id, jids)
    ids = [c.id for c in conversations]
    keys = (
        await session.execute(
            select(Message.instance_id, Message.wa_message_id).where(
                Message.cliente_id == cliente_id,
                Message.conversation_id.in_(ids),
                Message.wa_message_id.is_not(None),
            )
        )
    ).all()
    counts = {
        "conversations": len(ids),
        "messages": await _count(session, Message, ids),
        "turns": await _count(session, Turn, ids),
    }
    webhook_keys = [(evolution_source(instance), key) for instance, key in keys]
    counts["processed_webhooks"] = 0
    for start in range(0, len(webhook_keys), 1000):
        result = await session.execute(
            delete(ProcessedWebhook).where(
                tuple_(ProcessedWebhook.source, ProcessedWebhook.key).in_(
                    webhook_keys[start : start + 1000]
                )
            )
        )
        counts["processed_webhooks"] += result.rowcount or 0  # type: ignore[attr-defined]
    # Turns explicitly too: a turn row is never left without its conversation's cascade.
    await session.execute(
        delete(Turn).where(Turn.cliente_id == cliente_id, Turn.conversation_id.in_(ids))
    )
    await session.execute(
        delete(Conversation).where(Conversation.cliente_id == cliente_id, Conversation.id.in_(ids))
    )
    result = await session.execute(
        delete(LidPair).where(
            LidPair.cliente_id == cliente_id,
            or_(LidPair.lid_jid.in_(jids), LidPair.phone_jid.in_(jids)),
        )
    )
    counts["lid_pairs"] = result.rowcount or 0  # type: ignore[attr-defined]
    return counts, [c.session_id for c in conversations]


async def _count(session: AsyncSession, model: type[Message] | type[Turn], ids: list[int]) -> int:
    value = await session.scalar(
        select(func.count()).select_from(model).where(model.conversation_id.in_(ids))
    )
    return int(value or 0)


async def add_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    cliente_id: int,
    subject: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRecord(
            actor=actor, action=action, cliente_id=cliente_id, subject=subject, detail=detail
        )
    )


async def audit_records(session: AsyncSession, cliente_id: int) -> list[AuditRecord]:
    rows = await session.scalars(
        select(AuditRecord).where(AuditRecord.cliente_id == cliente_id).order_by(AuditRecord.id)
    )
    return list(rows)


async def begin_cliente_deletion(session: AsyncSession, cliente_id: int) -> None:
    """Mark the cliente EXCLUINDO (never served again, resumable) and revoke its API keys at
    once: nothing it owns can be reached while the rest is deleted. The caller commits."""
    await session.execute(
        update(Cliente)
        .where(Cliente.id == cliente_id)
        .values(status=ClienteStatus.EXCLUINDO, updated_at=func.now())
    )
    await session.execute(delete(ApiKey).where(ApiKey.cliente_id == cliente_id))


async def session_ids(session: AsyncSession, cliente_id: int) -> list[str]:
    rows = await session.scalars(
        select(Conversation.session_id).where(Conversation.cliente_id == cliente_id)
    )
    return list(rows)


async def instances(session: AsyncSession, cliente_id: int) -> list[tuple[int, str]]:
    """(id, Evolution name) of the cliente's instances, oldest first."""
    rows = await session.execute(
        select(InstanciaWhatsApp.id, InstanciaWhatsApp.instance_id)
        .where(InstanciaWhatsApp.cliente_id == cliente_id)
        .order_by(InstanciaWhatsApp.id)
    )
    return [(row.id, row.instance_id) for row in rows]


async def delete_cliente_rows(
    session: AsyncSession, cliente_id: int, instance_names: list[str]
) -> dict[str, int]:
    """Every row the cliente owns: its idempotency keys (of `instance_names`, and of every
    instance its messages came through), then the cliente, which cascades to every table keyed
    by it. Returns counts. The caller commits."""
    counts = {
        table: int(
            await session.scalar(
                select(func.count()).select_from(model).where(model.cliente_id == cliente_id)
            )
            or 0
        )
        for table, model in (("conversations", Conversation), ("messages", Message))
    }
    sources = (
        select(literal("evolution:") + Message.instance_id)
        .where(Message.cliente_id == cliente_id)
        .distinct()
    )
    named = [evolution_source(name) for name in instance_names]
    result = await session.execute(
        delete(ProcessedWebhook).where(
            or_(ProcessedWebhook.source.in_(sources), ProcessedWebhook.source.in_(named))
        )
    )
    counts["processed_webhooks"] = result.rowcount or 0  # type: ignore[attr-defined]
    await session.execute(delete(Cliente).where(Cliente.id == cliente_id))
    return counts


def _fields(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, str):  # a StrEnum
        return value.value
    return value
