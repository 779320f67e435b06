"""Retention: the supervisor's periodic pass deletes what is older than the settings allow
(MESSAGE_RETENTION_DAYS=30, PROCESSED_WEBHOOK_RETENTION_DAYS=7 in this run), in batches, and
nothing that is recent or still being worked on."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_old_rows_are_pruned_and_recent_ones_kept(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, database_url: str
) -> None:
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    silent, active, recent = wa.new_chat(), wa.new_chat(), wa.new_chat()
    for chat in (silent, active, recent):
        for n, text in enumerate(("Oi", "Tudo bem?"), start=1):  # more rows than a batch (2)
            await tenant.post(wa.text(tenant.instance, chat, text))
            await eventually(lambda chat=chat, n=n: _sent(fake_evolution, chat, n))
    await eventually(lambda: _answered(tenant.id, database_url, 6))
    ids = {c["chat_jid"]: c["id"] for c in await tenant.conversations()}

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # `silent` has not written for 40 days; `active` wrote today, but its first messages
        # and turns are 40 days old; the idempotency keys of `silent` are 8 days old.
        await connection.execute(
            "UPDATE conversations SET last_message_at = now() - interval '40 days' WHERE id = $1",
            ids[silent],
        )
        for table in ("messages", "turns"):
            await connection.execute(
                f"UPDATE {table} SET created_at = now() - interval '40 days' "
                f"WHERE conversation_id = $1 AND id = (SELECT min(id) FROM {table} "
                "WHERE conversation_id = $1)",
                ids[active],
            )
        keys = await connection.fetch(
            "SELECT wa_message_id FROM messages WHERE conversation_id = $1 "
            "AND wa_message_id IS NOT NULL AND direction = 'inbound'",
            ids[silent],
        )
        aged = [k["wa_message_id"] for k in keys]
        await connection.execute(
            "UPDATE processed_webhooks SET received_at = now() - interval '8 days' "
            "WHERE key = ANY($1::text[])",
            aged,
        )
        before = await _counts(connection, ids[active])

        async def pruned() -> bool:
            gone = await connection.fetchval(
                "SELECT count(*) = 0 FROM conversations WHERE id = $1", ids[silent]
            )
            keys_left = await connection.fetchval(
                "SELECT count(*) FROM processed_webhooks WHERE key = ANY($1::text[])", aged
            )
            now = await _counts(connection, ids[active])
            return bool(gone and keys_left == 0 and now == (before[0] - 1, before[1] - 1))

        await eventually(pruned, timeout_s=30)
        silent_rows = await connection.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1", ids[silent]
        )
        recent_rows = await _counts(connection, ids[recent])
    finally:
        await connection.close()
    assert silent_rows == 0
    assert recent_rows[0] >= 4 and recent_rows[1] == 2  # nothing recent went

    # The pruned customer writing again starts a new conversation.
    await tenant.post(wa.text(tenant.instance, silent, "Voltei"))
    assert len([c for c in await tenant.conversations() if c["chat_jid"] == silent]) == 1


async def _counts(connection: asyncpg.Connection, conversation_id: int) -> tuple[int, int]:
    messages = await connection.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1", conversation_id
    )
    turns = await connection.fetchval(
        "SELECT count(*) FROM turns WHERE conversation_id = $1", conversation_id
    )
    return int(messages), int(turns)


async def _answered(cliente_id: int, database_url: str, turns: int) -> bool:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        done = await connection.fetchval(
            "SELECT count(*) FROM turns WHERE cliente_id = $1 AND status = 'RESPONDIDA'",
            cliente_id,
        )
    finally:
        await connection.close()
    return bool(done >= turns)


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int) -> bool:
    return len(fake_evolution.sent_to(chat)) >= count
