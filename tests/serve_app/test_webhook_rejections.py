"""Bad posts get a clear 4xx with a reason, and write nothing."""

from __future__ import annotations

import pytest

from tests.support import evolution_payloads as wa
from tests.support.tenants import MakeTenant

pytestmark = pytest.mark.integration


async def test_wrong_or_missing_secret_is_401_and_writes_nothing(
    make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    before = await db_counts(tenant.id)
    wrong = await tenant.post(payload, secret="not-the-secret-of-this-instance")
    assert wrong.status_code == 401
    assert "secret" in wrong.json()["detail"]
    missing = await tenant.api.post("/webhooks/evolution", json=payload)
    assert missing.status_code == 401
    assert await db_counts(tenant.id) == before


async def test_secret_of_another_instance_is_refused(make_tenant: MakeTenant, db_counts) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.post(wa.text(tenant.instance, wa.new_chat(), "oi"), secret=other.secret)
    assert response.status_code == 401
    assert await db_counts(tenant.id) == before


async def test_bearer_authorization_header_is_accepted(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.api.post(
        "/webhooks/evolution",
        json=wa.text(tenant.instance, wa.new_chat(), "oi"),
        headers={"Authorization": f"Bearer {tenant.secret}"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"


async def test_unknown_instance_is_404_so_evolution_stops_retrying(
    make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.post(
        wa.text("no-such-instance", wa.new_chat(), "oi", sender="5599000000000@s.whatsapp.net")
    )
    assert response.status_code == 404
    assert "no-such-instance" in response.json()["detail"]
    assert await db_counts(tenant.id) == before


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "JSON"),
        (b"[]", 422, "object"),
        (b'{"instance": "x", "data": {}}', 422, "event"),
        (b'{"event": "messages.upsert", "data": {}}', 422, "instance"),
    ],
)
async def test_malformed_envelope_is_4xx_with_a_reason(
    body: bytes, status: int, reason: str, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.api.post(
        "/webhooks/evolution",
        content=body,
        headers={"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert await db_counts(tenant.id) == before


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p["data"].pop("key"), "data.key"),
        (lambda p: p["data"]["key"].pop("id"), "key.id"),
        (lambda p: p["data"]["key"].update(remoteJid="not-a-jid"), "remoteJid"),
        (lambda p: p["data"].update(messageTimestamp="yesterday"), "messageTimestamp"),
        (lambda p: p["data"].update(message="text"), "data.message"),
    ],
)
async def test_malformed_message_is_422_with_a_reason(
    mutate, reason: str, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    mutate(payload)
    before = await db_counts(tenant.id)
    response = await tenant.post(payload)
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert await db_counts(tenant.id) == before


async def test_by_events_path_must_match_the_body(make_tenant: MakeTenant, db_counts) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    before = await db_counts(tenant.id)
    mismatch = await tenant.post(payload, path="/webhooks/evolution/connection-update")
    assert mismatch.status_code == 422
    assert await db_counts(tenant.id) == before
    match = await tenant.post(payload, path="/webhooks/evolution/messages-upsert")
    assert match.status_code == 200 and match.json()["status"] == "accepted"


async def test_operator_api_needs_the_admin_token(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await tenant.api.get(f"/admin/clientes/{tenant.id}", headers=headers)
        # httpx merges client headers; override Authorization explicitly for the empty case
        if not headers:
            response = await tenant.api.get(
                f"/admin/clientes/{tenant.id}", headers={"Authorization": ""}
            )
        assert response.status_code == 401
