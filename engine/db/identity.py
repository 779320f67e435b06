"""Lid ↔ phone pairs: remembered from webhooks, used to key `@lid` chats, and the unification of
a conversation opened under a lid with its phone conversation (`engine.core.identity`).

Learning costs no round trip of its own: the pairs are upserted in the same statement that claims
the webhook's idempotency key, which also says which of the lids already have a conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.identity import ConversationState, LidPair, merge_states
from engine.core.naming import session_id
from engine.db.inbox import claim_statement
from engine.db.models import Conversation, Message, Turn
from engine.db.models import LidPair as LidPairRow

# The conversation columns that hold the state a merge combines (named like ConversationState).
_STATE_FIELDS = tuple(f.name for f in fields(ConversationState))
_STATE_COLUMNS = tuple(getattr(Conversation, name) for name in _STATE_FIELDS)


async def phone_for_lid(session: AsyncSession, *, cliente_id: int, lid_jid: str) -> str | None:
    """The phone JID a lid was last reported with, if any (one primary-key lookup)."""
    return await session.scalar(
        select(LidPairRow.phone_jid).where(
            LidPairRow.cliente_id == cliente_id, LidPairRow.lid_jid == lid_jid
        )
    )


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool  # False: a redelivery, roll back
    lid_chats: tuple[str, ...]  # of the lids asked about, those that have a conversation


async def claim_and_learn(
    session: AsyncSession,
    *,
    source: str,
    key: str,
    outcome: str,
    cliente_id: int,
    instancia_id: int,
    pairs: Sequence[LidPair],
    lids: Sequence[str],
) -> ClaimResult:
    """Claim the idempotency key, remember `pairs`, and find which of `lids` (the lid forms of
    this message's contacts) still have a conversation of their own — one statement."""
    claimed = claim_statement(source=source, key=key, outcome=outcome).cte("claimed")
    statement: Any = select(
        exists(select(claimed.c.key)).label("claimed"),
        select(func.array_agg(Conversation.chat_jid))
        .where(Conversation.cliente_id == cliente_id, Conversation.chat_jid.in_(lids))
        .scalar_subquery()
        .label("lid_chats"),
    )
    if pairs:
        values = insert(LidPairRow).values(
            [
                {
                    "cliente_id": cliente_id,
                    "lid_jid": pair.lid_jid,
                    "phone_jid": pair.phone_jid,
                    "instancia_id": instancia_id,
                }
                for pair in pairs
            ]
        )
        learned = values.on_conflict_do_update(
            index_elements=[LidPairRow.cliente_id, LidPairRow.lid_jid],
            set_={
                "phone_jid": values.excluded.phone_jid,
                "instancia_id": values.excluded.instancia_id,
                "learned_at": func.now(),
            },
            # A known pair is not rewritten (no write per webhook); a lid's new number is.
            where=LidPairRow.phone_jid != values.excluded.phone_jid,
        )
        statement = statement.add_cte(learned.cte("learned"))
    row = (await session.execute(statement)).one()
    return ClaimResult(bool(row.claimed), tuple(row.lid_chats or ()))


@dataclass(frozen=True)
class Unified:
    """A lid conversation unified with its phone's: the conversation that remains, and the
    actor names (session ids) that no longer match it and must be retired."""

    conversation_id: int
    merged: bool  # False: the lid conversation was only re-keyed to the phone
    retired_session_ids: tuple[str, ...]


async def unify(
    session: AsyncSession, *, cliente_id: int, lid_jid: str, phone_jid: str
) -> Unified | None:
    """Make the conversation opened under `lid_jid` the contact's phone conversation.

    With no phone conversation yet, the lid conversation is re-keyed (same id, so its memory,
    pause, session and unanswered messages stay with it). With both, the lid conversation's
    messages and turns move into the phone conversation, its state is merged
    (`engine.core.identity.merge_states`) and it is deleted. None if there was nothing to do.
    """
    rows = (
        await session.execute(
            select(Conversation.id, Conversation.chat_jid, Conversation.session_id, *_STATE_COLUMNS)
            .where(
                Conversation.cliente_id == cliente_id,
                Conversation.chat_jid.in_((lid_jid, phone_jid)),
            )
            .order_by(Conversation.id)
            .with_for_update()
        )
    ).all()
    lid = next((r for r in rows if r.chat_jid == lid_jid), None)
    phone = next((r for r in rows if r.chat_jid == phone_jid), None)
    if lid is None:
        return None
    if phone is None:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == lid.id)
            .values(chat_jid=phone_jid, session_id=session_id(cliente_id, phone_jid))
        )
        return Unified(lid.id, merged=False, retired_session_ids=(lid.session_id,))
    merged = merge_states(_state(phone), _state(lid))
    for table in (Message, Turn):
        await session.execute(
            update(table).where(table.conversation_id == lid.id).values(conversation_id=phone.id)
        )
    await session.execute(delete(Conversation).where(Conversation.id == lid.id))
    await session.execute(
        update(Conversation).where(Conversation.id == phone.id).values(**asdict(merged))
    )
    return Unified(phone.id, merged=True, retired_session_ids=(lid.session_id, phone.session_id))


def _state(row: Any) -> ConversationState:
    return ConversationState(**{name: getattr(row, name) for name in _STATE_FIELDS})
