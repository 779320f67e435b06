"""Ingestion that survives restarts (issue 7 point 5), on the real stack: it runs in the
cliente's retriever actor, a killed retriever's work is resumed (by its next incarnation and the
supervisor's stalled-ingestion pass), deletes wait for or (forced) stop ingestion, and an upload
racing a delete leaves no served vectors behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.config import Settings
from engine.core.naming import get_collection_name
from tests.support.ray_actors import kill_actor
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

# Hundreds of one-section chunks: embedding them takes seconds, long enough to interrupt.
BIG = "\n\n".join(
    f"## Produto {i}\n\nO produto {i} custa R$ {i},00 e chega em {i % 9 + 1} dias úteis."
    for i in range(320)
).encode()


async def _upload(tenant: TenantHandle, title: str = "catalogo.md") -> dict[str, Any]:
    response = await tenant.api.post(
        f"/admin/clientes/{tenant.id}/documents",
        params={"title": title},
        content=BIG,
        headers={"Content-Type": "text/markdown"},
    )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def _document(tenant: TenantHandle, document_id: int) -> dict[str, Any]:
    response = await tenant.api.get(f"/admin/clientes/{tenant.id}/documents/{document_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _stats(tenant: TenantHandle) -> dict[str, Any]:
    response = await tenant.api.get(f"/admin/clientes/{tenant.id}/knowledge")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_retriever_killed_mid_ingestion_is_resumed_to_ready(
    make_tenant: MakeTenant, settings: Settings
) -> None:
    tenant = await make_tenant()
    document = await _upload(tenant)

    async def started():  # type: ignore[no-untyped-def]
        current = await _document(tenant, document["id"])
        return current if 0 < current["chunks_done"] < current["chunks_total"] else None

    before = await eventually(started, timeout_s=60, interval_s=0.05)
    assert kill_actor(get_collection_name(tenant.id), namespace=settings.ray_namespace)

    async def ready():  # type: ignore[no-untyped-def]
        current = await _document(tenant, document["id"])
        return current if current["status"] != "PROCESSANDO" else None

    done = await eventually(ready, timeout_s=120, interval_s=0.5)
    assert done["status"] == "PRONTO", done
    assert done["chunks_done"] == done["chunks_total"] == 320 > before["chunks_done"]
    assert done["attempts"] >= 2  # the first run died; a later one finished it
    stats = await _stats(tenant)
    assert stats["vectors"] == stats["chunks"] == stats["chunks_embedded"] == 320


async def test_delete_refuses_during_ingestion_and_force_stops_it(
    make_tenant: MakeTenant,
) -> None:
    tenant = await make_tenant()
    document = await _upload(tenant)

    refused = await tenant.api.delete(f"/admin/clientes/{tenant.id}/knowledge")
    assert refused.status_code == 409
    assert str(document["id"]) in refused.json()["detail"] and "force" in refused.json()["detail"]

    forced = await tenant.api.delete(
        f"/admin/clientes/{tenant.id}/knowledge", params={"force": "true"}
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["documents_deleted"] == 1
    await asyncio.sleep(2.0)  # nothing of the stopped ingestion may land afterwards
    stats = await _stats(tenant)
    assert (stats["documents"], stats["chunks"], stats["vectors"]) == (0, 0, 0)


async def test_an_upload_racing_a_delete_leaves_no_vectors_of_the_deleted_document(
    make_tenant: MakeTenant,
) -> None:
    tenant = await make_tenant()
    document = await _upload(tenant)
    deleted = await tenant.api.delete(f"/admin/clientes/{tenant.id}/documents/{document['id']}")
    assert deleted.status_code == 204

    await asyncio.sleep(2.0)
    stats = await _stats(tenant)
    assert (stats["documents"], stats["chunks"], stats["vectors"]) == (0, 0, 0)
    # And the cliente's knowledge works afterwards: the same text again is a new document.
    again = await _upload(tenant)
    assert again["id"] != document["id"]


async def test_a_document_whose_ingestion_keeps_dying_ends_in_erro_with_what_to_do(
    make_tenant: MakeTenant, database_url: str
) -> None:
    import asyncpg

    from tests.support.postgres import asyncpg_dsn

    tenant = await make_tenant()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # As three retrievers would leave it: still PROCESSANDO, three runs started, no progress.
        document_id = await connection.fetchval(
            "INSERT INTO knowledge_documents (cliente_id, title, content_type, content, sha256,"
            " size_bytes, status, chunks_total, attempts, updated_at) VALUES ($1, 'x.md',"
            " 'markdown', 'texto', 'deadbeef', 5, 'PROCESSANDO', 1, 3, now() - interval '1 hour')"
            " RETURNING id",
            tenant.id,
        )
    finally:
        await connection.close()

    async def failed():  # type: ignore[no-untyped-def]
        current = await _document(tenant, document_id)
        return current if current["status"] == "ERRO" else None

    document = await eventually(failed, timeout_s=30)  # the supervisor's stalled-ingestion pass
    assert "upload the document again" in document["error"]
    assert document["attempts"] == 4
