"""The ack path's one statement (engine.db.ack) and the replica's route cache.

Each ingress replica caches what it learned about an instance (its cliente, status, debounce);
the one statement re-checks all of it, so a change made anywhere (another replica, the billing
clock, an operator's SQL) takes effect on the very next webhook — nothing waits for a cache to
expire. The stack runs two replicas behind HAProxy: every check posts several times so that both
replicas, with warm caches, answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.support import evolution_payloads as wa
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant, TenantHandle

pytestmark = pytest.mark.integration

# Long enough that nothing is answered while a test looks at the rows.
DEBOUNCE_S = 20.0
MAX_WAIT_S = 30.0
SHORT_DEBOUNCE_S = 5.0
POSTS_PER_CHECK = 6  # both replicas answer some of them


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


async def _warm(tenant: TenantHandle, chat: str) -> None:
    """Accepted posts through both replicas: each caches the instance's route. One chat: every
    post is its own message, but only one conversation actor is started (a test that starts
    dozens leaves the live cap busy for the tests after it)."""
    for _ in range(POSTS_PER_CHECK):
        response = await tenant.post(wa.text(tenant.instance, chat, "oi"))
        assert response.json()["status"] == "accepted", response.text


async def _statuses(tenant: TenantHandle, chat: str) -> set[tuple[int, str, str | None]]:
    answers = set()
    for _ in range(POSTS_PER_CHECK):
        response = await tenant.post(wa.text(tenant.instance, chat, "oi"))
        body = response.json()
        answers.add((response.status_code, body.get("status"), body.get("detail")))
    return answers


async def test_an_accepted_text_is_claimed_stored_and_given_its_deadline_at_once(
    make_tenant: MakeTenant, db: asyncpg.Connection
) -> None:
    tenant = await make_tenant(debounce_s=DEBOUNCE_S, max_wait_s=MAX_WAIT_S)
    chat = wa.new_chat()
    payload = wa.text(tenant.instance, chat, "Quanto custa?", push_name="Ana")

    response = await tenant.post(payload)

    assert response.json() == {"status": "accepted", "detail": None}
    row = await db.fetchrow(
        "SELECT c.id, c.push_name, c.answer_due_at - now() AS due_in, m.status, m.text, "
        "m.author, m.direction, p.outcome FROM conversations c "
        "JOIN messages m ON m.conversation_id = c.id "
        "JOIN processed_webhooks p ON p.source = 'evolution:' || m.instance_id "
        "AND p.key = m.wa_message_id WHERE c.cliente_id = $1 AND c.chat_jid = $2",
        tenant.id,
        chat,
    )
    assert row is not None
    assert (row["status"], row["text"], row["author"], row["direction"], row["outcome"]) == (
        "RECEBIDA",
        "Quanto custa?",
        "customer",
        "inbound",
        "accepted:",
    )
    assert row["push_name"] == "Ana"
    assert timedelta(seconds=MAX_WAIT_S - 5) < row["due_in"] <= timedelta(seconds=MAX_WAIT_S)

    # A second message of the burst keeps the first one's deadline; a redelivery writes nothing.
    due_sql = "SELECT answer_due_at FROM conversations WHERE id = $1"
    due = await db.fetchval(due_sql, row["id"])
    again = await tenant.post(wa.text(tenant.instance, chat, "E a cor?"))
    assert again.json()["status"] == "accepted"
    redelivered = await tenant.post(payload)
    assert redelivered.json()["status"] == "duplicate"
    assert (
        await db.fetchval("SELECT answer_due_at FROM conversations WHERE id = $1", row["id"]) == due
    )
    assert (
        await db.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", row["id"])
        == 2
    )


async def test_a_cliente_stopped_behind_the_replicas_backs_is_not_served_on_the_next_post(
    make_tenant: MakeTenant, db: asyncpg.Connection
) -> None:
    tenant = await make_tenant(debounce_s=DEBOUNCE_S, max_wait_s=MAX_WAIT_S)
    chat = wa.new_chat()
    await _warm(tenant, chat)

    # No admin call (it would not reach the other replica anyway): only the database changes.
    await db.execute("UPDATE clientes SET status = 'SUSPENSO' WHERE id = $1", tenant.id)
    assert await _statuses(tenant, chat) == {(200, "recorded", "cliente_suspenso")}

    await db.execute("UPDATE clientes SET status = 'ATIVO' WHERE id = $1", tenant.id)
    assert await _statuses(tenant, chat) == {(200, "accepted", None)}


async def test_a_deleted_instance_is_refused_on_the_next_post(
    make_tenant: MakeTenant, db: asyncpg.Connection
) -> None:
    tenant = await make_tenant(debounce_s=DEBOUNCE_S, max_wait_s=MAX_WAIT_S)
    chat = wa.new_chat()
    await _warm(tenant, chat)

    await db.execute("DELETE FROM instancias_whatsapp WHERE instance_id = $1", tenant.instance)

    assert {status for status, _, _ in await _statuses(tenant, chat)} == {401}


async def test_a_changed_debounce_and_a_paused_chat_are_seen_on_the_next_post(
    make_tenant: MakeTenant, db: asyncpg.Connection
) -> None:
    # A short debounce (the rows are read right after the posts): its chats are answered and
    # their actors idle within seconds, instead of holding the live cap for the next test.
    tenant = await make_tenant(debounce_s=SHORT_DEBOUNCE_S, max_wait_s=MAX_WAIT_S)
    paused = wa.new_chat()
    await _warm(tenant, wa.new_chat())
    await tenant.post(wa.text(tenant.instance, paused, "oi"))
    await db.execute(
        "UPDATE conversations SET paused_until = now() + interval '1 hour', answer_due_at = NULL "
        "WHERE cliente_id = $1 AND chat_jid = $2",
        tenant.id,
        paused,
    )
    response = await tenant.post(wa.text(tenant.instance, paused, "alguém aí?"))
    assert response.json() == {"status": "recorded", "detail": "paused"}

    await db.execute("UPDATE clientes SET max_wait_s = 55 WHERE id = $1", tenant.id)
    chats = [wa.new_chat() for _ in range(POSTS_PER_CHECK)]
    for chat in chats:
        response = await tenant.post(wa.text(tenant.instance, chat, "oi"))
        assert response.json()["status"] == "accepted"
    due_in = await db.fetch(
        "SELECT answer_due_at - created_at AS due_in FROM conversations "
        "WHERE cliente_id = $1 AND chat_jid = ANY($2::text[])",
        tenant.id,
        chats,
    )
    assert all(timedelta(seconds=50) < r["due_in"] <= timedelta(seconds=56) for r in due_in)
