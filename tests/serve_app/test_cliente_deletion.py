"""Deleting a cliente and everything it owns, on the real stack; interrupted, then resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import ray

from engine.config import Settings
from engine.core.naming import get_collection_name
from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_delete_cliente_resumes_after_evolution_fails_and_leaves_nothing(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    evolution_faults: FakeEvolution,
    settings: Settings,
    database_url: str,
    api: httpx.AsyncClient,
) -> None:
    fake_evolution = evolution_faults
    doomed = await make_tenant(
        documents=("O cupom SEGREDO-41 dá frete grátis.",), debounce_s=0.3, max_wait_s=1.0
    )
    bystander = await make_tenant(
        documents=("O cupom OUTRO-77 dá 10% de desconto.",), debounce_s=0.3, max_wait_s=1.0
    )
    account = await make_account(doomed.id)
    provisioned = (await account.client.post("/v1/instances", json={})).json()["instance_id"]
    chat = wa.new_chat()
    await doomed.post(wa.text(doomed.instance, chat, "Qual o cupom?"))
    await bystander.post(wa.text(bystander.instance, chat, "Qual o cupom?"))
    await eventually(lambda: _sent(fake_evolution, chat, 2))
    session_id = (await doomed.conversation_for(chat))["session_id"]
    store = _store_dir(settings, doomed.id)
    assert _exists(store)

    # A confirmation that does not repeat the id changes nothing.
    for params in ({}, {"confirm": doomed.id + 1}):
        response = await api.delete(f"/admin/clientes/{doomed.id}", params=params)
        assert response.status_code == 422, response.text
    assert (await api.get(f"/admin/clientes/{doomed.id}")).json()["status"] == "ATIVO"

    # Evolution fails mid-way: the cliente stays EXCLUINDO, unreachable by its key, not served.
    fake_evolution.fail("delete", status=500, calls=1)
    response = await api.delete(f"/admin/clientes/{doomed.id}", params={"confirm": doomed.id})
    assert response.status_code == 502, response.text
    assert (await api.get(f"/admin/clientes/{doomed.id}")).json()["status"] == "EXCLUINDO"
    assert (await account.client.get("/v1/me")).status_code == 401
    response = await api.patch(f"/admin/clientes/{doomed.id}", json={"status": "ATIVO"})
    assert response.status_code == 409, response.text

    response = await api.delete(f"/admin/clientes/{doomed.id}", params={"confirm": doomed.id})
    assert response.status_code == 200, response.text
    deleted = response.json()
    # The hand-registered instance went in the first attempt; the provisioned one now.
    assert deleted["resumed"] is True and deleted["instances"] == 1 and deleted["documents"] == 1
    assert deleted["conversations"] == 1 and deleted["processed_webhooks"] >= 1

    assert (await api.get(f"/admin/clientes/{doomed.id}")).status_code == 404
    again = await api.delete(f"/admin/clientes/{doomed.id}", params={"confirm": doomed.id})
    assert again.status_code == 404
    assert provisioned in fake_evolution.deleted and provisioned not in fake_evolution.instances
    assert not _exists(store)
    for name in (session_id, get_collection_name(doomed.id)):
        await eventually(lambda name=name: _gone(name, settings.ray_namespace))

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'cliente_id' "
            "AND table_schema = 'public' AND table_name <> 'audit_log'"
        )
        left = {
            t["table_name"]: await connection.fetchval(
                f"SELECT count(*) FROM {t['table_name']} WHERE cliente_id = $1", doomed.id
            )
            for t in tables
        }
        keys = await connection.fetchval(
            "SELECT count(*) FROM processed_webhooks WHERE source = ANY($1::text[])",
            [f"evolution:{doomed.instance}", f"evolution:{provisioned}"],
        )
        audit = await connection.fetch(
            "SELECT actor, action FROM audit_log WHERE cliente_id = $1", doomed.id
        )
    finally:
        await connection.close()
    assert len(left) >= 8 and set(left.values()) == {0}, left
    assert keys == 0
    assert [(r["actor"], r["action"]) for r in audit] == [("operator", "cliente.delete")]

    # The other cliente is untouched and still answered from its own knowledge.
    assert len(await bystander.turns(chat)) == 1
    await bystander.post(wa.text(bystander.instance, chat, "E o cupom de desconto?"))
    [*_, reply] = await eventually(lambda: _sent(fake_evolution, chat, 3))
    assert "OUTRO-77" in reply.text


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int) -> Any:
    sent = fake_evolution.sent_to(chat)
    return sent if len(sent) >= count else None


async def _gone(name: str, namespace: str) -> bool:
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return True
    return False


def _store_dir(settings: Settings, cliente_id: int) -> Path:
    return settings.chroma_dir.resolve() / get_collection_name(cliente_id)


def _exists(path: Path) -> bool:
    return path.exists()
