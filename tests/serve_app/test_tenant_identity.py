"""Identity that a database reset cannot hand on: a cliente's uuid guards its vectors, and a
conversation actor serves only the conversation it was made for."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import ray

from engine.config import Settings
from engine.core.debounce import BurstMessage
from engine.core.naming import get_collection_name
from engine.errors import ActorClosing
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.postgres import asyncpg_dsn
from tests.support.ray_actors import kill_actor
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_a_new_uuid_under_an_old_id_never_gets_the_old_vectors(
    make_tenant: MakeTenant, settings: Settings, database_url: str, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(documents=("A senha do cofre da loja é 4242.",))
    stats = (await api.get(f"/admin/clientes/{tenant.id}/knowledge")).json()
    assert stats["vectors"] == stats["chunks"] >= 1

    # As after a database reset: the same id now names another cliente (another uuid).
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute(
            "UPDATE clientes SET uuid = gen_random_uuid() WHERE id = $1", tenant.id
        )
    finally:
        await connection.close()
    kill_actor(get_collection_name(tenant.id), namespace=settings.ray_namespace)

    stats = (await api.get(f"/admin/clientes/{tenant.id}/knowledge")).json()
    assert stats["vectors"] == 0  # the old collection was dropped, not served


async def test_an_actor_refuses_a_delivery_for_another_conversation_and_leaves(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings
) -> None:
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Meu nome é Joana."))
    await eventually(lambda: _sent(fake_evolution, chat))
    conversation = await tenant.conversation_for(chat)
    actor = ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)

    async def remembered() -> bool:  # the turn ends (memory kept) once the send is recorded
        return (await actor.status.remote())["memory_turns"] == 1

    assert await eventually(remembered)

    # The same name, another conversation id: what a reset database hands out again.
    with pytest.raises(ActorClosing):
        await actor.deliver.remote(BurstMessage(1, "Oi"), None, conversation["id"] + 10**9)

    async def gone() -> bool:  # it leaves once the supervisor has heard it (at most ~2 s)
        try:
            await actor.status.remote()
        except ray.exceptions.RayActorError:
            return True
        return False

    assert await eventually(gone, timeout_s=15)

    # Its own conversation goes on in a new actor, restored from PostgreSQL.
    await tenant.post(wa.text(tenant.instance, chat, "Qual é o meu nome?"))
    await eventually(lambda: _sent(fake_evolution, chat, 2))


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int = 1) -> bool:
    return len(fake_evolution.sent_to(chat)) >= count
