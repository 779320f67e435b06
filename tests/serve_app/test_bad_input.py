"""Issue 7 point 8: inputs that used to answer 500 (so Evolution retried ten times and dropped
the message). Each is now refused with a 4xx and a reason, writing nothing, or accepted and
stored in a form PostgreSQL can hold."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from tests.support import evolution_payloads as wa
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant

pytestmark = pytest.mark.integration

Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[str, ...], value: Any) -> Mutation:
    def mutate(payload: dict[str, Any]) -> None:
        target = payload
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple[str, ...]) -> Mutation:
    def mutate(payload: dict[str, Any]) -> None:
        target = payload
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


REFUSED = [
    pytest.param(_set(("data", "key", "id"), "K" * 101), "key.id", id="key-id-101-chars"),
    pytest.param(_set(("data", "messageTimestamp"), 1e300), "messageTimestamp", id="ts-1e300"),
    pytest.param(
        _set(("data", "messageTimestamp"), "9" * 5000), "messageTimestamp", id="ts-5000-digits"
    ),
    pytest.param(
        _set(("data", "key", "remoteJid"), "5" * 300 + "@s.whatsapp.net"),
        "remoteJid",
        id="jid-longer-than-its-column",
    ),
]


@pytest.mark.parametrize(("mutate", "reason"), REFUSED)
async def test_unusable_identifiers_are_422_with_a_reason_and_write_nothing(
    mutate: Mutation, reason: str, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    mutate(payload)
    before = await db_counts(tenant.id)
    response = await tenant.post(payload)
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert await db_counts(tenant.id) == before


STORED_TEXT = [
    pytest.param("oi\x00 tudo bem?", "oi tudo bem?", id="nul"),
    pytest.param("quanto custa \ud83d?", "quanto custa \ufffd?", id="lone-surrogate"),
]


@pytest.mark.parametrize(("text", "stored"), STORED_TEXT)
async def test_text_postgres_cannot_hold_is_accepted_and_stored_cleaned(
    text: str, stored: str, make_tenant: MakeTenant
) -> None:
    """Sent as JSON escapes (`\\u0000`, `\\ud83d`), as JavaScript's JSON.stringify writes them."""
    tenant = await make_tenant()
    chat = wa.new_chat()
    response = await tenant.api.post(
        "/webhooks/evolution",
        content=json.dumps(wa.text(tenant.instance, chat, text)).encode(),
        headers={"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    [message] = [m for m in await tenant.messages(chat) if m["direction"] == "inbound"]
    assert message["text"] == stored


async def test_missing_timestamp_is_accepted_with_the_servers_time(
    make_tenant: MakeTenant, database_url: str
) -> None:
    """It used to be a 422: Evolution stopped retrying and the message was lost."""
    tenant = await make_tenant()
    chat = wa.new_chat()
    payload = wa.text(tenant.instance, chat, "sem horário")
    del payload["data"]["messageTimestamp"]
    before_s = int(time.time())
    response = await tenant.post(payload)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        wa_timestamp = await connection.fetchval(
            "SELECT wa_timestamp FROM messages WHERE wa_message_id = $1",
            payload["data"]["key"]["id"],
        )
    finally:
        await connection.close()
    assert before_s - 1 <= wa_timestamp <= int(time.time()) + 1


@pytest.mark.parametrize(
    "wuid",
    [12345, {"jid": "5511911110001@s.whatsapp.net"}, ["5511911110001@s.whatsapp.net"], None],
)
async def test_connection_open_with_a_wuid_that_is_not_a_string_still_connects(
    wuid: Any, make_tenant: MakeTenant, api
) -> None:
    tenant = await make_tenant()
    response = await tenant.post(
        {
            "event": "connection.update",
            "instance": tenant.instance,
            "data": {"instance": tenant.instance, "state": "open", "wuid": wuid},
        }
    )
    assert response.status_code == 200, response.text
    [instance] = (await api.get(f"/admin/clientes/{tenant.id}/instances")).json()
    assert instance["status"] == "CONECTADA"
    assert instance["numero"] is None


@pytest.mark.parametrize("field", ["nome", "status", "group_replies"])
async def test_patching_a_required_field_to_null_is_422_and_changes_nothing(
    field: str, make_tenant: MakeTenant, api
) -> None:
    tenant = await make_tenant()
    before = (await api.get(f"/admin/clientes/{tenant.id}")).json()
    response = await api.patch(f"/admin/clientes/{tenant.id}", json={field: None})
    assert response.status_code == 422
    assert f"{field} cannot be null" in response.json()["detail"]
    assert (await api.get(f"/admin/clientes/{tenant.id}")).json() == before
