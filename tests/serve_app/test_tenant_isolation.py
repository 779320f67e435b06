"""No `/v1` route lets one cliente's key reach another cliente's data.

The routes are read from the application itself (not a list kept by hand): a route added later
is covered as soon as it exists, and one with a path parameter this test does not know how to
fill makes it fail until someone says which of cliente B's resources it names.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from engine.config import Settings
from serve_app.app import build_app
from tests.conftest import ADMIN_TOKEN, kill_actors_of
from tests.support import evolution_payloads as wa
from tests.support.accounts import Account, account_for
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

B_DOCUMENT = "Segredo da Loja B: o cupom B-7731 dá 40% de desconto na tosa."


def tenant_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the application under /v1."""
    routes = []
    for context in iter_route_contexts(build_app().routes):
        path = context.path or ""
        if path == "/v1" or path.startswith("/v1/"):
            routes.extend((method, path) for method in sorted(context.methods or ()))
    return routes


ROUTES = tenant_routes()


@dataclass
class ClienteB:
    tenant: TenantHandle
    account: Account
    ids: dict[str, int | str]  # path parameter → one of B's resources
    markers: list[str]  # strings only B's data contains


@dataclass
class World:
    a: Account
    b: ClienteB
    api: httpx.AsyncClient  # the operator's


@pytest.fixture(scope="module")
async def world(
    conversa: Any, settings: Settings, database_url: str, fake_evolution: FakeEvolution
) -> AsyncIterator[World]:
    """Clientes A and B, made once for every route: B with a provisioned instance, a document,
    an answered conversation and a key; A with a key only."""
    api = httpx.AsyncClient(
        base_url=conversa.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    )
    made: list[int] = []

    async def cliente(**fields: Any) -> tuple[TenantHandle, Account]:
        response = await api.post(
            "/admin/clientes",
            json={"nome": f"Loja {uuid.uuid4().hex[:6]}", "status": "ATIVO", **fields},
        )
        cliente_id = response.json()["id"]
        made.append(cliente_id)
        instance, secret = f"iso-{cliente_id}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex * 2
        response = await api.post(
            f"/admin/clientes/{cliente_id}/instances",
            json={"instance_id": instance, "webhook_secret": secret},
        )
        assert response.status_code == 201, response.text
        return TenantHandle(cliente_id, instance, secret, api), await account_for(api, cliente_id)

    tenant, account = await cliente(debounce_s=0.3, max_wait_s=1.0)
    response = await account.client.post(
        "/v1/documents",
        params={"title": "segredos-b.md", "wait": "true"},
        content=B_DOCUMENT.encode(),
        headers={"Content-Type": "text/markdown"},
    )
    assert response.status_code == 200, response.text
    instance = (await account.client.post("/v1/instances", json={})).json()
    [document] = (await account.client.get("/v1/documents")).json()
    chat = wa.new_chat()
    ack = await tenant.post(wa.text(tenant.instance, chat, "Qual o cupom da tosa?"))
    assert ack.json()["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, chat), timeout_s=60)
    [conversation] = (await account.client.get("/v1/conversations")).json()["items"]
    b = ClienteB(
        tenant,
        account,
        ids={
            "instancia_id": instance["id"],
            "document_id": document["id"],
            "conversation_id": conversation["id"],
            "key_id": account.key_id,
            "contact": chat,  # B's customer: A holds nothing about them
        },
        markers=[
            chat,
            "B-7731",
            instance["instance_id"],
            tenant.instance,
            (await account.me())["nome"],
        ],
    )
    _, a = await cliente()
    yield World(a, b, api)
    for client in (a.client, account.client, api):
        await client.aclose()
    await kill_actors_of(made, settings, database_url)


async def _snapshot(world: World, fake_evolution: FakeEvolution) -> str:
    """Everything of B's that a request could change, as the operator sees it."""
    b, api = world.b, world.api
    base = f"/admin/clientes/{b.tenant.id}"
    conversation = b.ids["conversation_id"]
    parts: dict[str, Any] = {}
    for path in (
        base,
        f"{base}/instances",
        f"{base}/documents",
        f"{base}/conversations",
        f"{base}/conversations/{conversation}/messages",
        f"{base}/conversations/{conversation}/turns",
        f"{base}/api-keys",
        f"{base}/billing",
    ):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        parts[path] = response.json()
    for key in parts[f"{base}/api-keys"]:
        key.pop("last_used_at")  # B's own key is used to read B's state
    provisioned = [i["instance_id"] for i in parts[f"{base}/instances"] if i["provisioned"]]
    parts["evolution"] = [
        (name, evolution.state, evolution.webhook.headers if evolution.webhook else None)
        for name in provisioned
        if (evolution := fake_evolution.instances.get(name)) is not None
    ]
    return json.dumps(parts, sort_keys=True, default=str)


def _fill(path: str, ids: dict[str, int | str]) -> str:
    params = re.findall(r"{([^}]+)}", path)
    unknown = [p for p in params if p not in ids]
    assert not unknown, f"{path}: say which of cliente B's resources {unknown} names"
    return re.sub(r"{([^}]+)}", lambda m: str(ids[m.group(1)]), path)


def _request(method: str, path: str) -> dict[str, Any]:
    """Arguments a real caller would send (a body where one is read), so a refusal is about the
    key, not about malformed input."""
    today = datetime.now(UTC).date()
    params = {"since": str(today - timedelta(days=1)), "until": str(today + timedelta(days=1))}
    if path == "/v1/documents" and method == "POST":
        return {
            "params": {"title": "de A", "wait": "true"},
            "content": b"Documento da loja A.",
            "headers": {"Content-Type": "text/plain"},
        }
    if path == "/v1/conversations/{conversation_id}/messages":
        return {"json": {"text": "Mensagem de A"}}
    if path == "/v1/knowledge/search":  # B's own words: A's search must still find only A's
        return {"json": {"question": "Qual o cupom da tosa?"}}
    if method in ("POST", "PATCH", "PUT"):
        return {"json": {}, "params": params}
    return {"params": params}


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_cliente_a_key_never_reaches_or_changes_cliente_b(
    method: str, path: str, world: World, fake_evolution: FakeEvolution
) -> None:
    cliente_b = world.b
    before = await _snapshot(world, fake_evolution)

    response = await world.a.client.request(
        method, _fill(path, cliente_b.ids), **_request(method, path)
    )

    if "{" in path:  # names one of B's resources: as if it did not exist
        assert response.status_code in (403, 404), (response.status_code, response.text)
        assert set(response.json()) == {"error"}
    else:  # A's own collection or A itself: nothing of B's in what comes back
        assert response.status_code < 500, response.text
    for marker in cliente_b.markers:
        assert marker not in response.text, f"{method} {path} showed B's {marker!r}"
    assert await _snapshot(world, fake_evolution) == before


def test_the_tenant_api_has_routes_to_check() -> None:
    """The enumeration itself: it finds the routes, including ones with B's ids in the path."""
    paths = {p for _, p in ROUTES}
    assert len(ROUTES) >= 30
    assert "/v1/conversations/{conversation_id}/messages" in paths
    assert "/v1/instances/{instancia_id}/qr.png" in paths


async def test_b_is_still_answered_from_its_own_knowledge_after_every_attempt(
    world: World, fake_evolution: FakeEvolution
) -> None:
    cliente_b = world.b
    chat = wa.new_chat()
    ack = await cliente_b.tenant.post(wa.text(cliente_b.tenant.instance, chat, "E o cupom?"))
    assert ack.json()["status"] == "accepted"
    [reply] = await eventually(lambda: _sent(fake_evolution, chat), timeout_s=60)
    assert "B-7731" in reply.text


async def _sent(fake_evolution: FakeEvolution, chat: str) -> list[Any]:
    return fake_evolution.sent_to(chat)
