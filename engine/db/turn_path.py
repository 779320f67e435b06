"""A turn's statements on raw asyncpg: the ones between the debounce deadline and the reply.

`engine.db.conversations` describes the turn's life (PROCESSANDO under a lease → ENVIANDO →
RESPONDIDA) and every rule kept here; this module writes the same rules as few statements:
- claiming a burst is one short transaction: lock the conversation (`LOCK_SQL`), then read its
  pending messages, the chat's recent activity and the cliente's tokens of the day while taking
  over the turns whose lease expired (`GATHER_SQL`), then start the turn (`START_SQL`) or record
  the burst without a reply (`SKIP_SQL`);
- recording the reply is one statement (`RECORD_SQL`): the compare-and-set on the lease, the parts
  (the first one claimed for its first send when no earlier part of the chat is owed), the burst's
  next deadline and the needs-a-human flag;
- recording that Evolution took a part is one statement (`SENT_SQL`): the part delivered and, once
  none of its reply's parts is owed, the turn settled (`engine.db.deliveries.settle_turn`).
The gathering is a statement of its own, after the lock: in READ COMMITTED each statement sees
what committed before it started, so it sees a message whose ack held the lock a moment ago.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from engine.core.behaviour import ClienteOverrides, GroupReplies
from engine.core.chat_limits import ChatActivity, Sent
from engine.core.debounce import BurstMessage
from engine.core.statuses import (
    OWED_STATUSES,
    Author,
    ClienteStatus,
    Direction,
    MessageStatus,
    TurnStatus,
)
from engine.core.turns import OutboundPart
from engine.db.conversations import UNFINISHED_TURNS
from engine.db.handoff import PAUSED_BY
from engine.db.inbox import UNTIL_RESUMED
from engine.db.raw import RawPool


def _in(values: Collection[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


_OVERRIDES = ClienteOverrides.field_names()
ACTIVITY_ROWS = 500  # a chat judged for loops and floods: its last messages are enough

LOCK_SQL = f"""
SELECT c.cliente_id, c.chat_jid, c.paused_until, c.session_started_at, c.out_of_office_sent_at,
       i.instance_id, i.api_key_encrypted, k.status AS cliente_status,
       {", ".join(f"k.{name}" for name in _OVERRIDES)}
FROM conversations c
JOIN clientes k ON k.id = c.cliente_id
LEFT JOIN instancias_whatsapp i ON i.id = c.instancia_id
WHERE c.id = $1
FOR UPDATE OF c
"""

# $1 conversation, $2 cliente, $3 activity window (s), $4 count the cliente's tokens of the day.
GATHER_SQL = f"""
WITH pending AS (
    SELECT m.id, m.text, m.message_type, m.wa_timestamp, m.turn_id, t.status AS turn_status
    FROM messages m LEFT JOIN turns t ON t.id = m.turn_id
    WHERE m.conversation_id = $1 AND m.status = '{MessageStatus.RECEBIDA}'
      AND (m.turn_id IS NULL OR t.status IN {_in(UNFINISHED_TURNS)})
), abandoned AS (
    UPDATE turns SET status = '{TurnStatus.ABANDONADA}', lease_owner = NULL
    WHERE id IN (SELECT turn_id FROM pending WHERE turn_status = '{TurnStatus.PROCESSANDO}')
      AND status = '{TurnStatus.PROCESSANDO}'
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    RETURNING id
), cleared AS (
    UPDATE conversations SET answer_due_at = NULL
    WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM pending)
), activity AS (
    SELECT id, direction, text, coalesce(last_attempt_at, created_at) AS at, created_at
    FROM messages
    WHERE conversation_id = $1 AND created_at >= now() - make_interval(secs => $3)
      AND (direction = '{Direction.INBOUND}' OR author = '{Author.BOT}')
    ORDER BY created_at DESC, id DESC
    LIMIT {ACTIVITY_ROWS}
)
SELECT
    (SELECT array_agg(id ORDER BY wa_timestamp, id) FROM pending) AS ids,
    (SELECT array_agg(text ORDER BY wa_timestamp, id) FROM pending) AS texts,
    (SELECT array_agg(message_type ORDER BY wa_timestamp, id) FROM pending) AS types,
    (SELECT array_agg(wa_timestamp ORDER BY wa_timestamp, id) FROM pending) AS timestamps,
    (SELECT array_agg(turn_id) FROM pending WHERE turn_status = '{TurnStatus.PROCESSANDO}')
        AS in_progress,
    (SELECT array_agg(id) FROM abandoned) AS abandoned,
    (SELECT max(created_at) FROM messages
     WHERE conversation_id = $1 AND id < (SELECT min(id) FROM pending)) AS last_activity,
    (SELECT array_agg(direction ORDER BY created_at, id) FROM activity) AS activity_directions,
    (SELECT array_agg(text ORDER BY created_at, id) FROM activity) AS activity_texts,
    (SELECT array_agg(at ORDER BY created_at, id) FROM activity) AS activity_at,
    CASE WHEN $4 THEN
        (SELECT coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)
         FROM turns
         WHERE cliente_id = $2
           AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
    ELSE 0 END AS tokens_today
"""

# $1 conversation, $2 cliente, $3 user text, $4 lease owner, $5 lease (s), $6 the burst's
# message ids, $7 a new session starts, $8 the out-of-office notice is sent.
START_SQL = f"""
WITH turn AS (
    INSERT INTO turns (conversation_id, cliente_id, status, user_text, lease_owner,
                       lease_expires_at)
    VALUES ($1, $2, '{TurnStatus.PROCESSANDO}', $3, $4, now() + make_interval(secs => $5))
    RETURNING id
), claimed AS (
    UPDATE messages SET turn_id = (SELECT id FROM turn)
    WHERE id = ANY($6::bigint[]) AND status = '{MessageStatus.RECEBIDA}'
), conversation AS (
    UPDATE conversations SET
        session_started_at = CASE WHEN $7 THEN now() ELSE session_started_at END,
        out_of_office_sent_at = CASE WHEN $8 THEN now() ELSE out_of_office_sent_at END
    WHERE id = $1 AND ($7 OR $8)
)
SELECT id FROM turn
"""

# The needs-a-human flag (`engine.db.handoff`) as SET clauses of an update of the conversation,
# applied when the parameter numbered {reason} (the reason) is not NULL: the first flag's time is
# kept (the queue is oldest first) and the bot is paused until a human answers or an operator
# resumes the chat.
_FLAG_SET = """
        needs_human_since = CASE WHEN ${reason}::text IS NULL THEN needs_human_since
                                 ELSE coalesce(needs_human_since, now()) END,
        needs_human_reason = coalesce(${reason}::text, needs_human_reason),
        paused_until = CASE WHEN ${reason}::text IS NULL THEN paused_until ELSE ${until} END,
        paused_by = CASE WHEN ${reason}::text IS NULL THEN paused_by ELSE '{paused_by}' END"""

# $1 conversation, $2 the burst's message ids, $3 why it gets no reply, $4 needs-a-human reason,
# $5 paused until (resumed).
SKIP_SQL = f"""
WITH ignored AS (
    UPDATE messages SET status = '{MessageStatus.IGNORADA}', ignored_reason = $3
    WHERE id = ANY($2::bigint[]) AND status = '{MessageStatus.RECEBIDA}'
)
UPDATE conversations SET answer_due_at = NULL,
{_FLAG_SET.format(reason=4, until="5::timestamptz", paused_by=PAUSED_BY)}
WHERE id = $1
"""

# $1 turn, $2 lease owner, $3 reply, $4 reply kind, $5 sources, $6/$7 prompt/completion tokens,
# $8 conversation, $9 cliente, $10 instance, $11 the parts, $12 deliver (parts owed, else only
# recorded and the turn answered), $13 the session closes, $14 the next burst's wait (s),
# $15 claim the first part for its first send for this long (NULL: no claim), $16 needs-a-human
# reason (NULL: none), $17 paused until (resumed).
RECORD_SQL = f"""
WITH taken AS (
    UPDATE turns SET
        status = CASE WHEN $12 THEN '{TurnStatus.ENVIANDO}' ELSE '{TurnStatus.RESPONDIDA}' END,
        answered_at = CASE WHEN $12 THEN NULL ELSE now() END,
        reply_text = $3, reply_kind = $4, sources = $5::jsonb,
        prompt_tokens = $6, completion_tokens = $7,
        lease_owner = NULL, lease_expires_at = NULL
    WHERE id = $1 AND status = '{TurnStatus.PROCESSANDO}' AND lease_owner = $2
    RETURNING id
), first_claimed AS (
    SELECT $12 AND $15::float8 IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM messages
        WHERE conversation_id = $8 AND status IN {_in(OWED_STATUSES)}
    ) AS yes
), parts AS (
    INSERT INTO messages (conversation_id, cliente_id, turn_id, direction, author, status,
                          instance_id, text, attempts, next_attempt_at, last_attempt_at,
                          owed_since)
    SELECT $8, $9, taken.id, '{Direction.OUTBOUND}', '{Author.BOT}',
           CASE WHEN NOT $12 THEN '{MessageStatus.REGISTRADA}'
                WHEN part.n = 1 AND first_claimed.yes THEN '{MessageStatus.ENVIANDO}'
                ELSE '{MessageStatus.PENDENTE}' END,
           $10, part.text,
           CASE WHEN part.n = 1 AND first_claimed.yes THEN 1 ELSE 0 END,
           CASE WHEN NOT $12 THEN NULL
                WHEN part.n = 1 AND first_claimed.yes THEN now() + make_interval(secs => $15)
                ELSE now() END,
           CASE WHEN part.n = 1 AND first_claimed.yes THEN now() END,
           CASE WHEN $12 THEN now() END
    FROM taken, first_claimed, unnest($11::text[]) WITH ORDINALITY AS part(text, n)
    ORDER BY part.n
    RETURNING id, text, status
), answered AS (
    UPDATE messages SET status = '{MessageStatus.RESPONDIDA}'
    WHERE NOT $12 AND turn_id = (SELECT id FROM taken)
      AND direction = '{Direction.INBOUND}' AND status = '{MessageStatus.RECEBIDA}'
), conversation AS (
    UPDATE conversations SET
        answer_due_at = CASE WHEN EXISTS (
            SELECT 1 FROM messages
            WHERE conversation_id = $8 AND status = '{MessageStatus.RECEBIDA}'
              AND turn_id IS NULL
        ) THEN now() + make_interval(secs => $14) END,
        session_started_at = CASE WHEN $13 THEN NULL ELSE session_started_at END,
{_FLAG_SET.format(reason=16, until="17::timestamptz", paused_by=PAUSED_BY)}
    WHERE id = $8 AND EXISTS (SELECT 1 FROM taken)
)
SELECT id, text, status FROM parts ORDER BY id
"""


# $1 the part, $2 Evolution's key for it (NULL: keep the one an echo may have stored), $3 its
# turn. The part is ENVIADA whatever attempt it was (a late success is still the truth); the
# turn is settled from its other parts, this one being delivered.
SENT_SQL = f"""
WITH sent AS (
    UPDATE messages SET status = '{MessageStatus.ENVIADA}',
        wa_message_id = coalesce(wa_message_id, $2::varchar), next_attempt_at = NULL, error = NULL
    WHERE id = $1 AND status <> '{MessageStatus.ENVIADA}'
    RETURNING id
), others AS (
    SELECT status FROM messages
    WHERE turn_id = $3 AND direction = '{Direction.OUTBOUND}' AND id <> $1
), target AS (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM others WHERE status IN {_in(OWED_STATUSES)}) THEN NULL
        WHEN EXISTS (SELECT 1 FROM others WHERE status = '{MessageStatus.FALHOU}')
            THEN '{TurnStatus.FALHOU}'
        ELSE '{TurnStatus.RESPONDIDA}' END AS status
), settled AS (
    UPDATE turns SET status = target.status, answered_at = now()
    FROM target
    WHERE turns.id = $3 AND target.status IS NOT NULL
      AND turns.status IN ('{TurnStatus.ENVIANDO}', '{TurnStatus.FALHOU}')
      AND turns.status <> target.status
), answered AS (
    UPDATE messages SET status = '{MessageStatus.RESPONDIDA}'
    FROM target
    WHERE messages.turn_id = $3 AND messages.direction = '{Direction.INBOUND}'
      AND messages.status = '{MessageStatus.RECEBIDA}' AND target.status = '{TurnStatus.RESPONDIDA}'
)
SELECT count(*) FROM sent
"""


@dataclass(frozen=True)
class Locked:
    """A conversation row-locked for a turn, with its cliente and instance."""

    conversation_id: int
    cliente_id: int
    chat_jid: str
    paused_until: datetime | None
    session_started_at: datetime | None
    out_of_office_sent_at: datetime | None
    instance_id: str | None
    instance_api_key_encrypted: str | None
    cliente_status: ClienteStatus
    overrides: ClienteOverrides


@dataclass(frozen=True)
class Gathered:
    """A locked conversation's pending messages (the burst), read with what judging it needs."""

    burst: tuple[BurstMessage, ...]
    last_activity_at: datetime | None  # the last message before the burst, either direction
    activity: ChatActivity
    live_lease: bool  # a turn still holds a live lease on some of the burst: its owner answers


class TurnTransaction:
    """One transaction on one connection: lock, gather, then start or skip."""

    def __init__(self, connection: asyncpg.Connection):
        self._connection = connection

    async def lock(self, conversation_id: int) -> Locked | None:
        row = await self._connection.fetchrow(LOCK_SQL, conversation_id)
        if row is None:
            return None
        overrides = {name: row[name] for name in _OVERRIDES}
        # What SQLAlchemy's column types would have done: the enum, and JSONB (text on asyncpg).
        overrides["group_replies"] = GroupReplies(overrides["group_replies"])
        if overrides["business_hours"] is not None:
            overrides["business_hours"] = json.loads(overrides["business_hours"])
        return Locked(
            conversation_id=conversation_id,
            cliente_id=row["cliente_id"],
            chat_jid=row["chat_jid"],
            paused_until=row["paused_until"],
            session_started_at=row["session_started_at"],
            out_of_office_sent_at=row["out_of_office_sent_at"],
            instance_id=row["instance_id"],
            instance_api_key_encrypted=row["api_key_encrypted"],
            cliente_status=ClienteStatus(row["cliente_status"]),
            overrides=ClienteOverrides(**overrides),
        )

    async def gather(self, locked: Locked, *, window_s: float, count_tokens: bool) -> Gathered:
        """Read the burst (clearing the deadline when there is none) and take over the turns
        whose lease expired."""
        row = await self._connection.fetchrow(
            GATHER_SQL, locked.conversation_id, locked.cliente_id, window_s, count_tokens
        )
        assert row is not None  # the final SELECT always yields one row
        burst = tuple(
            BurstMessage(message_id, text, message_type, timestamp or 0)
            for message_id, text, message_type, timestamp in zip(
                row["ids"] or [],
                row["texts"] or [],
                row["types"] or [],
                row["timestamps"] or [],
                strict=True,
            )
        )
        inbound: list[Sent] = []
        replies: list[Sent] = []
        for direction, text, at in zip(
            row["activity_directions"] or [],
            row["activity_texts"] or [],
            row["activity_at"] or [],
            strict=True,
        ):
            (inbound if direction == Direction.INBOUND else replies).append(Sent(at, text))
        in_progress = set(row["in_progress"] or [])
        return Gathered(
            burst=burst,
            last_activity_at=row["last_activity"],
            activity=ChatActivity(inbound, replies, int(row["tokens_today"])),
            live_lease=bool(in_progress - set(row["abandoned"] or [])),
        )

    async def start_turn(
        self,
        locked: Locked,
        burst: Sequence[BurstMessage],
        *,
        user_text: str,
        new_session: bool,
        out_of_office: bool,
        lease_owner: str,
        lease_s: float,
    ) -> int:
        """A PROCESSANDO turn owning the burst, leased to `lease_owner` for `lease_s`."""
        turn_id = await self._connection.fetchval(
            START_SQL,
            locked.conversation_id,
            locked.cliente_id,
            user_text,
            lease_owner,
            lease_s,
            [m.message_id for m in burst],
            new_session,
            out_of_office,
        )
        return int(turn_id)

    async def skip_burst(
        self,
        locked: Locked,
        burst: Sequence[BurstMessage],
        *,
        reason: str,
        needs_human: str | None,
    ) -> None:
        """Record that the burst gets no reply (and, with `needs_human`, why the chat waits for
        a human)."""
        await self._connection.execute(
            SKIP_SQL,
            locked.conversation_id,
            [m.message_id for m in burst],
            reason,
            needs_human,
            UNTIL_RESUMED,
        )


class TurnStatements:
    """The turn's statements on a worker's own asyncpg pool."""

    def __init__(self, pool: RawPool):
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[TurnTransaction]:
        async with self._pool.connection() as connection, connection.transaction():
            yield TurnTransaction(connection)

    async def record_reply(
        self,
        *,
        turn_id: int,
        lease_owner: str,
        conversation_id: int,
        cliente_id: int,
        instance_id: str | None,
        reply_text: str,
        reply_kind: str,
        sources: list[dict[str, Any]],
        parts: list[str],
        deliver: bool,
        claim_first_s: float | None,
        close_session: bool,
        max_wait_s: float,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        needs_human: str | None,
    ) -> list[OutboundPart] | None:
        """Store the reply and one row per part in one statement (see `RECORD_SQL`); None, and
        nothing written, if the turn is no longer PROCESSANDO under this lease."""
        async with self._pool.connection() as connection:
            rows = await connection.fetch(
                RECORD_SQL,
                turn_id,
                lease_owner,
                reply_text,
                reply_kind,
                json.dumps(sources),
                prompt_tokens,
                completion_tokens,
                conversation_id,
                cliente_id,
                instance_id or "",
                parts,
                deliver,
                close_session,
                max_wait_s,
                claim_first_s,
                needs_human,
                UNTIL_RESUMED,
            )
        if not rows:
            return None
        return [
            OutboundPart(row["id"], row["text"], claimed=row["status"] == MessageStatus.ENVIANDO)
            for row in rows
        ]

    async def record_sent(
        self, message_id: int, turn_id: int, *, wa_message_id: str | None
    ) -> None:
        """Evolution accepted the part (see `SENT_SQL`); keeps a key an echo recorded first."""
        async with self._pool.connection() as connection:
            try:
                await connection.execute(SENT_SQL, message_id, wa_message_id, turn_id)
            except asyncpg.UniqueViolationError:
                # The key is already stored on another row (an echo recorded on its own): the
                # part was sent all the same.
                await connection.execute(SENT_SQL, message_id, None, turn_id)

    async def close(self) -> None:
        await self._pool.close()
