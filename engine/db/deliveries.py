"""Owed reply parts: claiming the next one due, recording each attempt, echoes, dead letters.

A part is owed (PENDENTE, ENVIANDO or INCERTA) until Evolution accepted it (ENVIADA) or delivery
gave up (FALHOU). Within one conversation parts go out in order: a part is due only when no
earlier part of its conversation is still owed, so one chat's backoff holds back that chat only.
A sender claims a part (ENVIANDO until its `next_attempt_at`, `attempts` + 1) in a short
transaction before sending; a claim that outlives its sender simply comes due again. Every
update is a compare-and-set on the status (and the claim's attempt number), so a late answer
from an old attempt cannot overwrite a newer state, and a delivered part stays delivered.
A reply's first part is claimed by the statement that records the reply, and a part Evolution
accepted is recorded by one statement too: both are on the reply's path, in
`engine.db.turn_path` (raw asyncpg).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from engine.core.statuses import OWED_STATUSES, Author, Direction, MessageStatus, TurnStatus
from engine.db.models import Conversation, InstanciaWhatsApp, Message, Turn
from engine.errors import Conflict, NotFound

EARLIER_PART_FAILED = "not sent: an earlier part of this reply could not be delivered"
_OWED = tuple(OWED_STATUSES)
# Built once: an alias builds a proxy of every column of the table (~1 ms of CPU per statement).
_EARLIER = aliased(Message, name="earlier")


@dataclass(frozen=True)
class DuePart:
    """An owed part whose next attempt is due, row-locked until the transaction ends."""

    message_id: int
    turn_id: int
    conversation_id: int
    cliente_id: int
    chat_jid: str
    instance_id: str
    instance_api_key_encrypted: str | None  # sealed with SECRETS_KEY; the sender opens it
    text: str
    attempts: int  # sends already made
    unconfirmed: int  # of which the outcome stayed unknown (no answer, no echo)
    owed_s: float  # since its reply was recorded (or re-sent by an operator)


def _due(conversation_id: int | None) -> Any:
    query = (
        select(
            Message.id,
            Message.turn_id,
            Message.conversation_id,
            Message.cliente_id,
            Message.text,
            Message.attempts,
            Message.unconfirmed,
            Message.instance_id,
            func.extract(
                "epoch", func.now() - func.coalesce(Message.owed_since, Message.created_at)
            ).label("owed_s"),
        )
        .where(
            Message.status.in_(_OWED),
            Message.next_attempt_at <= func.now(),
            ~exists().where(
                _EARLIER.conversation_id == Message.conversation_id,
                _EARLIER.status.in_(_OWED),
                _EARLIER.id < Message.id,
            ),
        )
        .order_by(Message.next_attempt_at, Message.id)
    )
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    return query


async def due_conversations(
    session: AsyncSession, *, limit: int, excluding: Collection[int] = ()
) -> list[int]:
    """Conversations whose first owed part is due, the longest-waiting first (but those in
    `excluding`, already being delivered by the caller)."""
    query = _due(None).limit(limit)
    if excluding:
        query = query.where(Message.conversation_id.not_in(list(excluding)))
    rows = await session.execute(query)
    return [row.conversation_id for row in rows]


async def next_due_part(session: AsyncSession, conversation_id: int) -> DuePart | None:
    """The conversation's first owed part if it is due and no other sender holds it (its row
    stays locked until the caller's transaction ends)."""
    row = (
        await session.execute(
            _due(conversation_id).limit(1).with_for_update(of=Message, skip_locked=True)
        )
    ).first()
    if row is None:
        return None
    target = (
        await session.execute(
            select(Conversation.chat_jid, InstanciaWhatsApp.api_key_encrypted)
            .outerjoin(InstanciaWhatsApp, InstanciaWhatsApp.instance_id == row.instance_id)
            .where(Conversation.id == row.conversation_id)
        )
    ).one()
    return DuePart(
        message_id=row.id,
        turn_id=row.turn_id,
        conversation_id=row.conversation_id,
        cliente_id=row.cliente_id,
        chat_jid=target.chat_jid,
        instance_id=row.instance_id,
        instance_api_key_encrypted=target.api_key_encrypted,
        text=row.text,
        attempts=row.attempts,
        unconfirmed=row.unconfirmed,
        owed_s=float(row.owed_s),
    )


async def claim_part(session: AsyncSession, part: DuePart, *, claim_s: float) -> int:
    """Claim a due part for one send (ENVIANDO for `claim_s`); returns its attempt number."""
    attempt = part.attempts + 1
    await session.execute(
        update(Message)
        .where(Message.id == part.message_id, Message.status.in_(_OWED))  # row-locked: it is
        .values(
            status=MessageStatus.ENVIANDO,
            attempts=attempt,
            last_attempt_at=func.now(),
            next_attempt_at=func.now() + timedelta(seconds=claim_s),
        )
    )
    return attempt


async def record_retry(
    session: AsyncSession,
    part: DuePart,
    *,
    attempt: int,
    status: MessageStatus,
    retry_in_s: float,
    error: str,
) -> bool:
    """After a failed or unknown attempt: PENDENTE (send again) or INCERTA (wait for the echo)
    until `retry_in_s` from now. Only if the part is still in this attempt's claim."""
    result = await session.execute(
        update(Message)
        .where(
            Message.id == part.message_id,
            Message.status == MessageStatus.ENVIANDO,
            Message.attempts == attempt,
        )
        .values(
            status=status,
            next_attempt_at=func.now() + timedelta(seconds=retry_in_s),
            error=error[:1000],
            unconfirmed=Message.unconfirmed + (1 if status is MessageStatus.INCERTA else 0),
        )
        .returning(Message.id)
    )
    return result.first() is not None


async def dead_letter(
    session: AsyncSession, part: DuePart, *, reason: str, attempt: int | None = None
) -> bool:
    """Give up on a part (FALHOU, with the reason), and on the later parts of its reply (they
    would read out of context). `attempt`: only if the part is still in that claim."""
    conditions = [Message.id == part.message_id, Message.status.in_(_OWED)]
    if attempt is not None:
        conditions.append(Message.attempts == attempt)
    result = await session.execute(
        update(Message)
        .where(*conditions)
        .values(status=MessageStatus.FALHOU, next_attempt_at=None, error=reason[:1000])
        .returning(Message.id)
    )
    if result.first() is None:
        return False
    await session.execute(
        update(Message)
        .where(
            Message.turn_id == part.turn_id,
            Message.direction == Direction.OUTBOUND,
            Message.id > part.message_id,
            Message.status.in_(_OWED),
        )
        .values(status=MessageStatus.FALHOU, next_attempt_at=None, error=EARLIER_PART_FAILED)
    )
    await settle_turn(session, part.turn_id)
    return True


async def settle_turn(session: AsyncSession, turn_id: int) -> TurnStatus | None:
    """Once none of a turn's parts is owed: RESPONDIDA (and its messages answered) if all were
    delivered, FALHOU if one was dead-lettered. None while parts are still owed.
    `engine.db.turn_path.SENT_SQL` applies the same rule when a part is delivered: change both."""
    statuses = set(
        await session.scalars(
            select(Message.status).where(
                Message.turn_id == turn_id, Message.direction == Direction.OUTBOUND
            )
        )
    )
    if statuses & OWED_STATUSES:
        return None
    target = TurnStatus.FALHOU if MessageStatus.FALHOU in statuses else TurnStatus.RESPONDIDA
    await session.execute(
        update(Turn)
        .where(
            Turn.id == turn_id,
            Turn.status.in_((TurnStatus.ENVIANDO, TurnStatus.FALHOU)),
            Turn.status != target,
        )
        .values(status=target, answered_at=func.now())
    )
    if target is TurnStatus.RESPONDIDA:
        await session.execute(
            update(Message)
            .where(
                Message.turn_id == turn_id,
                Message.direction == Direction.INBOUND,
                Message.status == MessageStatus.RECEBIDA,
            )
            .values(status=MessageStatus.RESPONDIDA)
        )
    return target


async def confirm_by_echo(
    session: AsyncSession,
    *,
    cliente_id: int,
    chat_jid: str,
    instance_id: str,
    wa_message_id: str,
    text: str,
) -> bool:
    """Evolution's echo of a message sent from the business's number (`fromMe` upsert or
    `send.message`): if it is one of our parts, attach its key to it, which is then delivered —
    an owed or dead-lettered part first (the echo is the proof it went out), else a delivered
    one that has no key yet. True if the echo is ours (and is then not stored on its own)."""
    known = await session.scalar(
        select(
            exists().where(
                Message.instance_id == instance_id, Message.wa_message_id == wa_message_id
            )
        )
    )
    if known:
        return True
    part = (
        await session.execute(
            select(Message.id, Message.turn_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.cliente_id == cliente_id,
                Conversation.chat_jid == chat_jid,
                Message.direction == Direction.OUTBOUND,
                Message.author == Author.BOT,
                Message.text == text,
                Message.wa_message_id.is_(None),
                Message.status.in_((*_OWED, MessageStatus.FALHOU, MessageStatus.ENVIADA)),
            )
            .order_by(Message.status == MessageStatus.ENVIADA, Message.id)
            .limit(1)
            .with_for_update(of=Message)
        )
    ).first()
    if part is None:
        return False
    try:
        async with session.begin_nested():
            await session.execute(
                update(Message)
                .where(Message.id == part.id)
                .values(
                    status=MessageStatus.ENVIADA,
                    wa_message_id=wa_message_id,
                    next_attempt_at=None,
                    error=None,
                )
            )
    except IntegrityError:  # the sender stored this key meanwhile: already known
        return True
    if part.turn_id is not None:
        await settle_turn(session, part.turn_id)
    return True


@dataclass(frozen=True)
class Delivery:
    """An undelivered part, as operators see it."""

    message_id: int
    conversation_id: int
    chat_jid: str
    turn_id: int | None
    status: MessageStatus
    text: str
    attempts: int
    unconfirmed: int
    owed_since: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    error: str | None


async def list_undelivered(
    session: AsyncSession, cliente_id: int, *, statuses: frozenset[MessageStatus], limit: int
) -> list[Delivery]:
    """A cliente's reply parts in these (undelivered) statuses, oldest first."""
    rows = await session.execute(
        select(
            Message.id.label("message_id"),
            Message.conversation_id,
            Conversation.chat_jid,
            Message.turn_id,
            Message.status,
            Message.text,
            Message.attempts,
            Message.unconfirmed,
            Message.owed_since,
            Message.last_attempt_at,
            Message.next_attempt_at,
            Message.error,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.cliente_id == cliente_id,
            Message.direction == Direction.OUTBOUND,
            Message.author == Author.BOT,
            Message.status.in_(tuple(statuses)),
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return [Delivery(**row._mapping) for row in rows]


async def resend_turn(session: AsyncSession, cliente_id: int, turn_id: int) -> int:
    """Owe a dead-lettered reply again: its FALHOU parts become PENDENTE, due now, with a fresh
    attempt count and age. Returns how many parts."""
    status = await session.scalar(
        select(Turn.status)
        .where(Turn.id == turn_id, Turn.cliente_id == cliente_id)
        .with_for_update()
    )
    if status is None:
        raise NotFound(f"turn {turn_id} does not exist for cliente {cliente_id}")
    if status is not TurnStatus.FALHOU:
        raise Conflict(
            f"turn {turn_id} is {status.value}, not FALHOU: only a dead-lettered reply is re-sent"
        )
    result = await session.execute(
        update(Message)
        .where(
            Message.turn_id == turn_id,
            Message.direction == Direction.OUTBOUND,
            Message.status == MessageStatus.FALHOU,
        )
        .values(
            status=MessageStatus.PENDENTE,
            attempts=0,
            unconfirmed=0,
            next_attempt_at=func.now(),
            owed_since=func.now(),
            error=None,
        )
        .returning(Message.id)
    )
    requeued = len(result.all())
    await session.execute(
        update(Turn)
        .where(Turn.id == turn_id, Turn.status == TurnStatus.FALHOU)
        .values(status=TurnStatus.ENVIANDO, answered_at=None)
    )
    return requeued
