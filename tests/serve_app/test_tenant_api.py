"""The tenant API (`/v1`) as a business uses it: keys, settings, history, export, analytics."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "A Padaria Sol abre todos os dias das 6h às 20h. O pão francês custa R$ 1."


async def test_a_key_is_shown_once_stored_hashed_tracked_and_revocable(
    make_tenant: MakeTenant, api: httpx.AsyncClient, database_url: str
) -> None:
    tenant = await make_tenant()
    response = await api.post(f"/admin/clientes/{tenant.id}/api-keys", json={"name": "erp"})
    assert response.status_code == 201
    made = response.json()
    key = made["key"]
    assert key.startswith("cvk_") and made["prefix"] == key[:12] and made["last_used_at"] is None

    listed = (await api.get(f"/admin/clientes/{tenant.id}/api-keys")).json()
    assert [k["prefix"] for k in listed] == [made["prefix"]]
    assert key not in json.dumps(listed)  # never shown again
    row = await _key_row(database_url, made["id"])
    assert row["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps({k: str(v) for k, v in row.items()})

    async with _client(api, key) as client:
        me = await client.get("/v1/me")
        assert me.status_code == 200 and me.json()["id"] == tenant.id
        assert (await _key_row(database_url, made["id"]))["last_used_at"] is not None

        # the business makes a second key itself, and revokes the first with it
        second = (await client.post("/v1/api-keys", json={"name": "console"})).json()
        assert second["created_by"] == "cliente"
        async with _client(api, second["key"]) as other:
            revoked = await other.delete(f"/v1/api-keys/{made['id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
            assert (await other.get("/v1/me")).status_code == 200
        refused = await client.get("/v1/me")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"


async def test_keys_and_the_operator_token_each_open_only_their_own_api(
    make_tenant: MakeTenant, make_account: MakeAccount, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    operator_on_v1 = await api.get("/v1/me")  # api sends the operator token
    assert operator_on_v1.status_code == 401
    assert set(operator_on_v1.json()) == {"error"}
    key_on_admin = await account.client.get(f"/admin/clientes/{tenant.id}")
    assert key_on_admin.status_code == 401
    for headers in ({}, {"Authorization": "Bearer cvk_notAKey_" + "x" * 40}, {"X-API-Key": "x"}):
        async with httpx.AsyncClient(base_url=str(api.base_url), headers=headers) as anonymous:
            response = await anonymous.get("/v1/conversations")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    async with httpx.AsyncClient(
        base_url=str(api.base_url), headers={"X-API-Key": account.key}
    ) as by_header:
        assert (await by_header.get("/v1/me")).json()["id"] == tenant.id


async def test_every_4xx_of_the_tenant_api_has_one_shape_with_a_reason(
    make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    account = await make_account((await make_tenant()).id)
    client = account.client
    cases = [
        (await client.patch("/v1/me", json={"status": "ATIVO"}), 422, "validation_error"),
        (await client.patch("/v1/me", json={"debounce_s": 9, "max_wait_s": 1}), 422, None),
        (await client.patch("/v1/me", json={"business_hours": {"x": 1}}), 422, "invalid_input"),
        (await client.get("/v1/conversations", params={"limit": 0}), 422, "validation_error"),
        (await client.get("/v1/conversations/999999999"), 404, "not_found"),
        # what a fuzzer sends: past the columns' range, text PostgreSQL cannot hold
        (await client.get("/v1/instances/99999999999"), 422, "validation_error"),
        (await client.patch("/v1/me", json={"system_prompt": "a\u0000b"}), 422, None),
        (
            await client.get("/v1/conversations", params={"since": "9999-12-31T23:59:00-12:00"}),
            422,
            "invalid_input",
        ),
        (
            await client.get("/v1/export", params={"since": "2026-01-01", "until": "9999-12-31"}),
            422,
            "invalid_input",
        ),
        (await client.get("/v1/no-such-thing"), 404, "not_found"),
        (await client.put("/v1/me"), 405, "method_not_allowed"),
        (
            await client.get(
                "/v1/analytics", params={"since": "2026-01-02", "until": "2026-01-01"}
            ),
            422,
            "invalid_input",
        ),
        (
            await client.get(
                "/v1/export", params={"since": "2026-01-01", "until": "2026-01-01", "tz": "Mars/X"}
            ),
            422,
            "invalid_input",
        ),
        (
            await client.post(
                "/v1/documents",
                params={"title": "x"},
                content=b"\x89PNG\r\n",
                headers={"Content-Type": "image/png"},
            ),
            415,
            "unsupported_media_type",
        ),
        (  # a PDF Conversa cannot read: says so
            await client.post(
                "/v1/documents",
                params={"title": "x"},
                content=b"%PDF",
                headers={"Content-Type": "application/pdf"},
            ),
            422,
            "invalid_input",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error"} and body["error"]["message"], body
        if code is not None:
            assert body["error"]["code"] == code, body
    fields = cases[0][0].json()["error"]["fields"]
    assert fields and fields[0]["field"].endswith("status")


async def test_settings_and_persona_are_read_and_changed_by_the_business(
    make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    account = await make_account((await make_tenant()).id)
    hours = {"timezone": "America/Sao_Paulo", "weekly": {"mon": [["09:00", "18:00"]]}}
    response = await account.client.patch(
        "/v1/me",
        json={
            "system_prompt": "Você é a atendente da Padaria Sol.",
            "debounce_s": 1.5,
            "business_hours": hours,
            "group_replies": "mentioned",
            "out_of_office_message": "Voltamos às 9h!",
        },
    )
    assert response.status_code == 200, response.text
    me = await account.me()
    assert me["system_prompt"] == "Você é a atendente da Padaria Sol."
    assert (me["debounce_s"], me["group_replies"]) == (1.5, "mentioned")
    assert me["business_hours"]["weekly"]["mon"] == [["09:00", "18:00"]]
    assert me["status"] == "ATIVO"  # unchanged: status is not the business's to set


async def test_self_signup_makes_a_pendente_cliente_with_a_working_key(
    api: httpx.AsyncClient,
) -> None:
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        response = await anonymous.post("/v1/signup", json={"nome": "Padaria Nova"})
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["cliente"]["status"] == "PENDENTE"
    async with _client(api, made["api_key"]["key"]) as client:
        assert (await client.get("/v1/me")).json()["nome"] == "Padaria Nova"
        assert (await client.get("/v1/billing")).json()["served"] is False


async def test_conversations_and_messages_are_paginated_and_filtered(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=0.3, max_wait_s=1.0)
    account = await make_account(tenant.id)
    chats = [wa.new_chat() for _ in range(3)]
    for chat in chats:
        await _say(tenant, chat, "Que horas abre?")
    for chat in chats:
        await eventually(lambda chat=chat: _sent(fake_evolution, chat), timeout_s=60)

    first = (await account.client.get("/v1/conversations", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"] is not None
    rest = (
        await account.client.get(
            "/v1/conversations", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert rest["next_cursor"] is None
    seen = [c["chat_jid"] for c in first["items"] + rest["items"]]
    assert seen == list(reversed(chats))  # newest first, each once

    paused_id = first["items"][0]["id"]
    paused = await account.client.post(f"/v1/conversations/{paused_id}/pause", json={})
    assert paused.json()["paused_by"] == "operator"
    only = (await account.client.get("/v1/conversations", params={"status": "paused"})).json()
    assert [c["id"] for c in only["items"]] == [paused_id]
    idle = (await account.client.get("/v1/conversations", params={"status": "idle"})).json()
    assert paused_id not in [c["id"] for c in idle["items"]] and len(idle["items"]) == 2
    await account.client.post(f"/v1/conversations/{paused_id}/resume")
    assert (await account.client.get("/v1/conversations", params={"status": "paused"})).json()[
        "items"
    ] == []

    messages = f"/v1/conversations/{paused_id}/messages"
    both = (await account.client.get(messages)).json()["items"]
    assert [m["direction"] for m in both] == ["inbound", "outbound"]
    inbound = (await account.client.get(messages, params={"direction": "inbound"})).json()
    assert [m["status"] for m in inbound["items"]] == ["RESPONDIDA"]
    page = (await account.client.get(messages, params={"limit": 1})).json()
    after = (
        await account.client.get(messages, params={"limit": 1, "cursor": page["next_cursor"]})
    ).json()
    assert [m["id"] for m in page["items"] + after["items"]] == [m["id"] for m in both]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (await account.client.get(messages, params={"since": future})).json()
    assert later["items"] == []


async def test_export_and_analytics_count_exactly_what_was_sent(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    fake_evolution: FakeEvolution,
    fake_llm: FakeOpenAI,
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=0.5, max_wait_s=2.0)
    account = await make_account(tenant.id)
    marker = uuid.uuid4().hex[:8]
    burst, single, taken = wa.new_chat(), wa.new_chat(), wa.new_chat()
    await _say(tenant, burst, f"Oi {marker}")
    await _say(tenant, burst, f"quanto custa o pão? {marker}")  # one burst, one reply
    await _say(tenant, single, f"Abre domingo? {marker}")
    await _say(tenant, taken, f"Preciso falar com alguém {marker}")
    for chat in (burst, single, taken):
        await eventually(lambda chat=chat: _sent(fake_evolution, chat), timeout_s=60)
    human = wa.text(tenant.instance, taken, "Oi, aqui é a Ana, da padaria.", from_me=True)
    assert (await tenant.post(human)).json()["detail"] == "human_takeover"

    today = datetime.now(UTC).date()
    window = {"since": str(today - timedelta(days=1)), "until": str(today + timedelta(days=1))}
    response = await account.client.get("/v1/analytics", params=window)
    assert response.status_code == 200, response.text
    days = response.json()["days"]
    assert [d["day"] for d in days] == [str(today + timedelta(days=i)) for i in (-1, 0, 1)]
    total = {
        name: sum(d[name] for d in days)
        for name in (
            "messages_in",
            "messages_out",
            "replies",
            "llm_tokens",
            "active_conversations",
            "takeovers",
        )
    }
    usages = [u for u in fake_llm.usages if marker in u.question]
    assert len(usages) == 3
    assert total == {
        "messages_in": 4,
        "messages_out": 4,  # three replies (one part each) and the human's message
        "replies": 3,
        "llm_tokens": sum(u.prompt_tokens + u.completion_tokens for u in usages),
        "active_conversations": 3,
        "takeovers": 1,
    }
    [active_day] = [d for d in days if d["replies"]]
    assert active_day["replies_by_kind"] == {"llm": 3}
    assert 0 < active_day["median_reply_s"] < 60

    jsonl = await account.client.get("/v1/export", params={**window, "format": "jsonl"})
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(lines) == 8
    assert sorted((r["direction"], r["author"]) for r in lines) == sorted(
        [("inbound", "customer")] * 4 + [("outbound", "bot")] * 3 + [("outbound", "human")]
    )
    assert {r["chat_jid"] for r in lines} == {burst, single, taken}
    assert {r["reply_kind"] for r in lines if r["author"] == "bot"} == {"llm"}
    assert sum(marker in r["text"] for r in lines if r["direction"] == "inbound") == 4

    as_csv = await account.client.get("/v1/export", params={**window, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["message_id"]) for r in rows] == [r["message_id"] for r in lines]
    assert [r["text"] for r in rows] == [r["text"] for r in lines]

    before = {"since": str(today - timedelta(days=30)), "until": str(today - timedelta(days=2))}
    assert (await account.client.get("/v1/export", params=before)).text == ""


async def _say(tenant: TenantHandle, chat: str, text: str) -> None:
    response = await tenant.post(wa.text(tenant.instance, chat, text))
    assert response.json()["status"] == "accepted", response.text


async def _sent(fake_evolution: FakeEvolution, chat: str) -> list[Any]:
    return fake_evolution.sent_to(chat)


def _client(api: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


async def _key_row(database_url: str, key_id: int) -> dict[str, Any]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await connection.fetchrow("SELECT * FROM api_keys WHERE id = $1", key_id)
    finally:
        await connection.close()
    assert row is not None
    return dict(row)
