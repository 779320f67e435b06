"""A business connects its WhatsApp number itself, against the test-run Evolution server."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
import pytest
import zxingcpp
from cryptography.fernet import Fernet
from PIL import Image

from engine.config import Settings
from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NUMBER = "5511955550001"


def _decoded(png: bytes) -> str:
    """What a phone's scanner reads from the PNG (an independent QR decoder)."""
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


async def test_a_number_is_connected_in_one_call_scanned_and_answered(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    fake_evolution: FakeEvolution,
    conversa: Any,
    settings: Settings,
    database_url: str,
) -> None:
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    account = await make_account(tenant.id)

    response = await account.client.post("/v1/instances", json={"number": NUMBER})
    assert response.status_code == 201, response.text
    made = response.json()
    name, instancia_id = made["instance_id"], made["id"]
    assert (made["status"], made["provisioned"], made["numero"]) == ("PENDENTE", True, None)

    # Evolution has it, with its webhook aimed at Conversa and a secret Conversa generated
    on_evolution = fake_evolution.instances[name]
    webhook = on_evolution.webhook
    assert webhook is not None and webhook.url == f"{conversa.base_url}/webhooks/evolution"
    assert sorted(webhook.events) == sorted(
        ["MESSAGES_UPSERT", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"]
    )
    secret = webhook.headers["x-conversa-secret"]
    assert len(secret) >= 40 and (webhook.by_events, webhook.base64) == (False, False)

    # its token is kept sealed with SECRETS_KEY, never in plain text
    sealed = await _sealed_token(database_url, instancia_id)
    assert on_evolution.token and on_evolution.token not in sealed
    assert Fernet(settings.secrets_key.get_secret_value()).decrypt(sealed.encode()).decode() == (
        on_evolution.token
    )

    # the QR code to scan: the PNG reads back as Evolution's code; the pairing code too
    qr = (await account.client.get(f"/v1/instances/{instancia_id}/qr")).json()
    assert qr["code"] == on_evolution.qrcode["code"]  # type: ignore[index]
    assert qr["pairing_code"] == on_evolution.qrcode["pairingCode"]  # type: ignore[index]
    png = await account.client.get(f"/v1/instances/{instancia_id}/qr.png")
    assert png.headers["content-type"] == "image/png"
    assert _decoded(png.content) == on_evolution.qrcode["code"]  # type: ignore[index]

    # Baileys makes a new QR code; Evolution posts it with our secret; the PNG follows
    [post] = await fake_evolution.emit_qrcode(name)
    assert post.status == 200, post
    fresh = on_evolution.qrcode["code"]  # type: ignore[index]
    png = await account.client.get(f"/v1/instances/{instancia_id}/qr.png")
    assert _decoded(png.content) == fresh != qr["code"]

    # the phone scans it: CONECTADA, with the number learned on connect
    [post] = await fake_evolution.emit_connection(
        name, state="open", wuid=f"{NUMBER}@s.whatsapp.net"
    )
    assert post.status == 200, post
    connected = (await account.client.get(f"/v1/instances/{instancia_id}")).json()
    assert (connected["status"], connected["numero"]) == ("CONECTADA", NUMBER)
    assert connected["qr_code"] is None
    assert (await account.client.get(f"/v1/instances/{instancia_id}/qr")).status_code == 409
    state = (await account.client.get(f"/v1/instances/{instancia_id}/state")).json()
    assert state["status"] == "CONECTADA"

    # a customer writes; the reply goes out through this instance with its own token
    chat = wa.new_chat()
    ack = await tenant.api.post(
        "/webhooks/evolution",
        json=wa.text(name, chat, "Oi, tudo bem?"),
        headers={"X-Conversa-Secret": secret},
    )
    assert ack.json()["status"] == "accepted", ack.text
    [reply] = await eventually(lambda: _sent(fake_evolution, chat), timeout_s=60)
    assert (reply.instance, reply.apikey) == (name, on_evolution.token)

    async def echoes() -> list[Any]:  # Evolution's `send.message` for our own send
        return fake_evolution.posts_of(name, "send.message")

    [echo] = await eventually(echoes, timeout_s=30)
    assert echo.status == 200  # accepted with our secret, and not answered
    assert [m["author"] for m in await tenant.messages(chat)] == ["customer", "bot"]


async def test_rotating_the_secret_updates_evolution_and_conversa_together(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    fake_evolution: FakeEvolution,
    database_url: str,
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    made = (await account.client.post("/v1/instances", json={})).json()
    name, instancia_id = made["instance_id"], made["id"]
    old = fake_evolution.instances[name].webhook.headers["x-conversa-secret"]  # type: ignore[union-attr]

    response = await account.client.post(f"/v1/instances/{instancia_id}/rotate-secret")
    assert response.status_code == 200, response.text
    webhook = fake_evolution.instances[name].webhook
    assert webhook is not None and webhook.enabled
    new = webhook.headers["x-conversa-secret"]
    assert new != old and webhook.url.endswith("/webhooks/evolution")

    [post] = await fake_evolution.emit_connection(name, state="connecting")
    assert post.status == 200  # Evolution's posts carry the new secret, and are accepted
    chat = wa.new_chat()
    for secret, expected in ((new, 200), (old, 200), ("not-the-secret-" * 3, 401)):
        payload = wa.text(name, chat, "oi")
        response = await tenant.api.post(
            "/webhooks/evolution", json=payload, headers={"X-Conversa-Secret": secret}
        )
        # the old one is still honoured for a short overlap (posts already on their way)
        assert response.status_code == expected, (secret == old, response.text)

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:  # the overlap is over
        await connection.execute(
            "UPDATE instancias_whatsapp SET secret_rotated_at = now() - interval '6 minutes' "
            "WHERE id = $1",
            instancia_id,
        )
    finally:
        await connection.close()
    for secret, expected in ((new, 200), (old, 401)):
        response = await tenant.api.post(
            "/webhooks/evolution",
            json=wa.text(name, chat, "de novo"),
            headers={"X-Conversa-Secret": secret},
        )
        assert response.status_code == expected, (secret == old, response.text)


async def test_rotation_that_evolution_refuses_changes_nothing(
    make_tenant: MakeTenant, make_account: MakeAccount, evolution_faults: FakeEvolution
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    made = (await account.client.post("/v1/instances", json={})).json()
    name = made["instance_id"]
    old = evolution_faults.instances[name].webhook.headers["x-conversa-secret"]  # type: ignore[union-attr]

    evolution_faults.fail("webhook/set", status=503, calls=1)
    response = await account.client.post(f"/v1/instances/{made['id']}/rotate-secret")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"
    response = await tenant.api.post(
        "/webhooks/evolution",
        json=wa.text(name, wa.new_chat(), "oi"),
        headers={"X-Conversa-Secret": old},
    )
    assert response.status_code == 200  # the secret Evolution still sends still works


async def test_logout_and_delete_go_through_evolution(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    made = (await account.client.post("/v1/instances", json={"name": f"del-{tenant.id}"})).json()
    name, instancia_id = made["instance_id"], made["id"]
    await fake_evolution.emit_connection(name, state="open", wuid=f"{NUMBER}@s.whatsapp.net")

    response = await account.client.post(f"/v1/instances/{instancia_id}/logout")
    assert response.json()["status"] == "DESCONECTADA"
    assert fake_evolution.instances[name].state == "close"
    reconnected = await account.client.post(f"/v1/instances/{instancia_id}/reconnect", json={})
    assert reconnected.json()["qr_code"] == fake_evolution.instances[name].qrcode["code"]  # type: ignore[index]

    response = await account.client.delete(f"/v1/instances/{instancia_id}")
    assert response.status_code == 204
    assert name in fake_evolution.deleted and name not in fake_evolution.instances
    assert (await account.client.get(f"/v1/instances/{instancia_id}")).status_code == 404

    again = await account.client.post("/v1/instances", json={"name": f"del-{tenant.id}"})
    assert again.status_code == 201  # the name is free again, on both sides


async def test_a_name_evolution_already_has_is_refused_and_nothing_is_kept(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    fake_evolution.configure_webhook(f"taken-{tenant.id}", url="http://127.0.0.1:1/x")
    response = await account.client.post("/v1/instances", json={"name": f"taken-{tenant.id}"})
    assert response.status_code == 409, response.text
    assert "already in use" in response.json()["error"]["message"]
    names = [i["instance_id"] for i in (await account.client.get("/v1/instances")).json()]
    assert names == [tenant.instance]  # only the one registered by hand; nothing half-made


async def _sent(fake_evolution: FakeEvolution, chat: str) -> list[Any]:
    return fake_evolution.sent_to(chat)


async def _sealed_token(database_url: str, instancia_id: int) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return str(
            await connection.fetchval(
                "SELECT api_key_encrypted FROM instancias_whatsapp WHERE id = $1", instancia_id
            )
        )
    finally:
        await connection.close()
