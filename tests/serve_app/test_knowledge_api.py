"""Uploading, following and deleting a cliente's knowledge through the operator API."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

FAQ = "\n\n".join(
    f"Pergunta {i}: como funciona o serviço {i}? Resposta: o serviço {i} funciona de segunda a "
    f"sexta, das 9h às 18h, e custa R$ {i * 10},00 por mês. " + "Detalhes adicionais. " * 20
    for i in range(1, 16)
)


async def test_upload_is_accepted_then_progress_reaches_ready(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.api.post(
        f"/admin/clientes/{tenant.id}/documents",
        params={"title": "faq.md"},
        content=FAQ.encode(),
        headers={"Content-Type": "text/markdown; charset=utf-8"},
    )
    assert response.status_code == 202, response.text
    document = response.json()
    assert document["status"] == "PROCESSANDO"

    async def ready():  # type: ignore[no-untyped-def]
        current = (
            await tenant.api.get(f"/admin/clientes/{tenant.id}/documents/{document['id']}")
        ).json()
        return current if current["status"] == "PRONTO" else None

    done = await eventually(ready, timeout_s=60)
    assert done["chunks_total"] == done["chunks_done"] > 5  # 800-character chunks
    again = await tenant.api.post(
        f"/admin/clientes/{tenant.id}/documents",
        params={"title": "faq again"},
        content=FAQ.encode(),
        headers={"Content-Type": "text/markdown"},
    )
    assert again.status_code == 200 and again.json()["id"] == document["id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"", "text/plain", 422),
        (b"   \n ", "text/plain", 422),
        (b"\xff\xfe\x00bad", "text/plain", 422),
        (b"%PDF-1.7", "application/pdf", 422),
        (b"\x89PNG\r\n", "image/png", 415),
        (b"x" * (10 * 1024 * 1024 + 1), "text/plain", 413),
    ],
)
async def test_bad_documents_are_refused_with_a_reason(
    content: bytes, content_type: str, status: int, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    response = await tenant.api.post(
        f"/admin/clientes/{tenant.id}/documents",
        params={"title": "x"},
        content=content,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == status
    assert response.json()["detail"]
    listed = await tenant.api.get(f"/admin/clientes/{tenant.id}/documents")
    assert listed.json() == []


async def test_deleting_knowledge_removes_it_from_replies(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(
        documents=("A loja abre aos sábados das 8h às 12h.",), debounce_s=0.3, max_wait_s=1.0
    )
    response = await tenant.api.delete(f"/admin/clientes/{tenant.id}/knowledge")
    assert response.status_code == 200
    assert response.json() == {"collection": f"tenant_{tenant.id}", "documents_deleted": 1}
    assert (await tenant.api.get(f"/admin/clientes/{tenant.id}/documents")).json() == []

    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Vocês abrem no sábado?"))
    await eventually(lambda: _any(fake_evolution.sent_to(chat)))
    [turn] = await tenant.turns(chat)
    assert turn["sources"] == []
    assert "sábados" not in fake_evolution.sent_to(chat)[0].text


async def test_a_cliente_cannot_read_another_clientes_conversation(make_tenant: MakeTenant) -> None:
    owner, other = await make_tenant(), await make_tenant()
    chat = wa.new_chat()
    await owner.post(wa.text(owner.instance, chat, "segredo do cliente 1"))
    conversation = await owner.conversation_for(chat)
    for what in ("messages", "turns"):
        response = await owner.api.get(
            f"/admin/clientes/{other.id}/conversations/{conversation['id']}/{what}"
        )
        assert response.status_code == 404
    assert await other.conversations() == []
    await asyncio.sleep(0)


async def test_instance_names_are_unique(make_tenant: MakeTenant) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    response = await other.api.post(
        f"/admin/clientes/{other.id}/instances",
        json={"instance_id": tenant.instance, "webhook_secret": "x" * 32},
    )
    assert response.status_code == 409
    assert tenant.instance in response.json()["detail"]


async def test_connection_updates_are_reflected_on_the_instance(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.post(
        {
            "event": "connection.update",
            "instance": tenant.instance,
            "data": {
                "instance": tenant.instance,
                "wuid": "5511912345678@s.whatsapp.net",
                "state": "open",
                "statusReason": 200,
            },
        }
    )
    assert response.status_code == 200
    [instance] = (await tenant.api.get(f"/admin/clientes/{tenant.id}/instances")).json()
    assert instance["status"] == "CONECTADA" and instance["numero"] == "5511912345678"


async def _any(items):  # type: ignore[no-untyped-def]
    return items or None
