"""The ack path's one round trip: an accepted customer text written by a single statement.

The common webhook (a customer's text in a one-to-one chat of an ATIVO cliente) is written by one
statement on raw asyncpg, on a pool the ingress replica owns: it checks that what the replica
cached about the instance still holds, claims the idempotency key, upserts the conversation,
inserts the message and sets the burst's deadline (`answer_due_at`), and returns what the
hand-off needs. Anything the statement's guard does not vouch for (the cliente is no longer
ATIVO, the secret was rotated away, the debounce changed, the chat is paused, the message is
already stored) writes nothing and is left to the general path (`engine.services.inbox`), which
reads everything afresh: a stale cache can cost a round trip, never a wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.auth import SECRET_ROTATION_OVERLAP
from engine.core.statuses import Author, ClienteStatus, Direction, MessageStatus
from engine.db.raw import RawPool

ACCEPT_SQL = f"""
WITH guard AS (
    SELECT 1
    FROM instancias_whatsapp i JOIN clientes c ON c.id = i.cliente_id
    WHERE i.id = $1 AND i.instance_id = $2 AND i.cliente_id = $3
      AND i.numero IS NOT DISTINCT FROM $4
      AND (i.webhook_secret_sha256 = $5
           OR (i.previous_secret_sha256 = $5 AND i.secret_rotated_at > now() - $6::interval))
      AND c.status = '{ClienteStatus.ATIVO.value}'
      AND c.debounce_s IS NOT DISTINCT FROM $7 AND c.max_wait_s IS NOT DISTINCT FROM $8
      AND NOT EXISTS (SELECT 1 FROM conversations
                      WHERE cliente_id = $3 AND chat_jid = $9 AND paused_until > now())
      AND NOT EXISTS (SELECT 1 FROM messages WHERE instance_id = $2 AND wa_message_id = $10)
), claim AS (
    INSERT INTO processed_webhooks (source, key, outcome)
    SELECT $11, $10, 'accepted:' FROM guard
    ON CONFLICT DO NOTHING
    RETURNING key
), conversation AS (
    INSERT INTO conversations
        (cliente_id, instancia_id, chat_jid, session_id, push_name, answer_due_at)
    SELECT $3, $1, $9, $12, $13, now() + make_interval(secs => $14) FROM claim
    ON CONFLICT (cliente_id, chat_jid) DO UPDATE SET
        instancia_id = excluded.instancia_id,
        push_name = coalesce(excluded.push_name, conversations.push_name),
        last_message_at = now(),
        answer_due_at = coalesce(conversations.answer_due_at, excluded.answer_due_at)
    RETURNING id
), message AS (
    INSERT INTO messages (conversation_id, cliente_id, direction, author, status, instance_id,
                          wa_message_id, message_type, text, wa_timestamp)
    SELECT id, $3, '{Direction.INBOUND.value}', '{Author.CUSTOMER.value}',
           '{MessageStatus.RECEBIDA.value}', $2, $10, $15, $16, $17
    FROM conversation
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM guard) AS vouched,
       (SELECT id FROM conversation) AS conversation_id,
       (SELECT id FROM message) AS message_id
"""


@dataclass(frozen=True)
class AcceptTarget:
    """The instance and cliente as the replica cached them (the statement re-checks them)."""

    instancia_id: int
    instance_id: str
    cliente_id: int
    numero: str | None
    secret_sha256: str
    debounce_s_override: float | None
    max_wait_s_override: float | None


@dataclass(frozen=True)
class AcceptedText:
    key_id: str
    chat_jid: str
    session_id: str
    push_name: str | None
    text: str
    message_type: str | None
    wa_timestamp: int | None
    max_wait_s: float


@dataclass(frozen=True)
class Accepted:
    """What the statement did: `vouched` False = nothing written (take the general path);
    `conversation_id` None = the key was already claimed (a redelivery)."""

    vouched: bool
    conversation_id: int | None
    message_id: int | None


class AckWriter:
    """The one statement of the ack path, on the replica's own asyncpg pool."""

    def __init__(self, pool: RawPool):
        self._pool = pool

    async def accept(self, target: AcceptTarget, text: AcceptedText) -> Accepted:
        """Run the statement (autocommit: it is one transaction by itself)."""
        async with self._pool.connection() as connection:
            row = await connection.fetchrow(
                ACCEPT_SQL,
                target.instancia_id,
                target.instance_id,
                target.cliente_id,
                target.numero,
                target.secret_sha256,
                SECRET_ROTATION_OVERLAP,
                target.debounce_s_override,
                target.max_wait_s_override,
                text.chat_jid,
                text.key_id,
                f"evolution:{target.instance_id}",
                text.session_id,
                text.push_name,
                text.max_wait_s,
                text.message_type,
                text.text,
                text.wa_timestamp,
            )
        assert row is not None  # the final SELECT always yields one row
        return Accepted(
            vouched=bool(row["vouched"]),
            conversation_id=row["conversation_id"],
            message_id=row["message_id"],
        )

    async def close(self) -> None:
        await self._pool.close()
