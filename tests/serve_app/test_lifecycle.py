"""Conversation lifecycle on real parts: reaping, races, crashes, the live-actor cap."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest
import ray

from tests.conftest import IDLE_TTL_S, MAX_LIVE
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.ray_actors import live_conversation_actors_per_node
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "O produto X custa R$ 100 e é azul."


async def _actor(tenant: TenantHandle, chat: str, settings) -> ray.actor.ActorHandle:  # type: ignore[no-untyped-def]
    conversation = await tenant.conversation_for(chat)
    return ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)


def _alive(session_id: str, settings) -> bool:  # type: ignore[no-untyped-def]
    try:
        ray.get_actor(session_id, namespace=settings.ray_namespace)
    except ValueError:
        return False
    return True


async def _sent(fake: FakeEvolution, chat: str, count: int):  # type: ignore[no-untyped-def]
    sent = fake.sent_to(chat)
    return sent if len(sent) >= count else None


async def test_idle_actor_is_reaped_and_the_next_message_still_remembers(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Sou a Joana e quero o produto X."))
    [first] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    session_id = (await tenant.conversation_for(chat))["session_id"]
    assert _alive(session_id, settings)

    async def reaped() -> bool:
        return not _alive(session_id, settings)

    await eventually(reaped, timeout_s=IDLE_TTL_S + 10)  # gone by itself after its idle TTL
    await tenant.post(wa.text(tenant.instance, chat, "Qual a cor dele?"))
    await eventually(lambda: _sent(fake_evolution, chat, 2))
    [request] = fake_llm.requests_about("Qual a cor dele?")
    assert request["messages"][1:-1] == [
        {"role": "user", "content": "Sou a Joana e quero o produto X."},
        {"role": "assistant", "content": first.text},
    ]


async def test_message_racing_the_reaper_is_answered_exactly_once(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    """The measured race: a message lands as the actor begins leaving (12 trials, 0-20 ms)."""
    tenant = await make_tenant(documents=(DOC,), debounce_s=0.2, max_wait_s=0.5)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "mensagem 0"))
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    rng = random.Random(7)
    for trial in range(1, 13):
        actor = await _actor(tenant, chat, settings)
        await eventually(lambda actor=actor: _idle(actor))
        leaving = actor.passivate.remote()
        await asyncio.sleep(rng.uniform(0, 0.02))
        response = await tenant.post(wa.text(tenant.instance, chat, f"mensagem {trial}"))
        assert response.json()["status"] == "accepted"
        try:
            await leaving
        except ray.exceptions.RayActorError:
            pass  # it left before its answer went out: what the supervisor also counts as left
        await eventually(lambda n=trial: _sent(fake_evolution, chat, n + 1), timeout_s=30)
    await asyncio.sleep(1.5)
    texts = [s.text for s in fake_evolution.sent_to(chat)]
    for trial in range(13):
        assert sum(t.endswith(f"perguntou: mensagem {trial}") for t in texts) == 1, (trial, texts)
    messages = await tenant.messages(chat)
    assert all(m["status"] == "RESPONDIDA" for m in messages if m["direction"] == "inbound")


async def _idle(actor: ray.actor.ActorHandle) -> bool:
    try:
        status = await actor.status.remote()
    except ray.exceptions.RayActorError:
        return False
    return not status["busy"]


async def test_kill_9_during_the_debounce_window_is_answered_exactly_once(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=2.0, max_wait_s=3.0)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))
    actor = await eventually(lambda: _actor_when_alive(tenant, chat, settings))
    status = await actor.status.remote()
    assert status["pending"] == 1  # the burst is only in the actor's memory and PostgreSQL
    os.kill(status["pid"], signal.SIGKILL)

    # Deadline (max_wait_s 3) + recovery grace (2) + interval (1): the supervisor re-activates it.
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1), timeout_s=30)
    assert "Quanto custa o produto X?" in reply.text
    await asyncio.sleep(3)
    assert len(fake_evolution.sent_to(chat)) == 1
    [turn] = await tenant.turns(chat)
    assert turn["status"] == "RESPONDIDA"


async def _actor_when_alive(tenant: TenantHandle, chat: str, settings):  # type: ignore[no-untyped-def]
    try:
        actor = await _actor(tenant, chat, settings)
        await actor.status.remote()
        return actor
    except (AssertionError, ValueError, ray.exceptions.RayActorError):
        return None


async def test_live_actors_stay_capped_under_three_times_more_chats(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, conversa, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=0.2, max_wait_s=0.5)
    supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)
    before = await supervisor.stats.remote()
    chats = [wa.new_chat() for _ in range(3 * MAX_LIVE)]
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:  # what Ray itself runs, not the supervisor's bookkeeping
            peak = max([peak, *live_conversation_actors_per_node().values()])
            await asyncio.sleep(0.05)

    sampler = asyncio.get_running_loop().create_task(sample())
    for chat in chats:
        response = await tenant.post(wa.text(tenant.instance, chat, f"oi de {chat}"))
        assert response.json()["status"] == "accepted"

    async def all_answered() -> bool:
        return all(fake_evolution.sent_to(chat) for chat in chats)

    await eventually(all_answered, timeout_s=120)
    sampling = False
    await sampler
    after = await supervisor.stats.remote()
    assert peak <= MAX_LIVE
    gone = after["evicted"] + after["reaped_idle"] - before["evicted"] - before["reaped_idle"]
    assert gone >= len(chats) - MAX_LIVE  # room was made: LRU eviction, or the idle TTL
    assert all(len(fake_evolution.sent_to(chat)) == 1 for chat in chats)
    response = await tenant.api.get("/admin/live")
    assert response.status_code == 200 and response.json()["cap_per_node"] == MAX_LIVE

    async def supervisor_agrees_with_ray() -> bool:  # its registry reconciles with Ray's table
        stats = await supervisor.stats.remote()
        return stats["live_per_node"] == live_conversation_actors_per_node()

    await eventually(supervisor_agrees_with_ray, timeout_s=30)


async def test_supervisor_forgets_a_killed_actor_and_adopts_one_it_never_heard_of(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), debounce_s=8.0, max_wait_s=8.0)
    supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "oi"))  # the actor waits 8 s: busy
    session_id = (await tenant.conversation_for(chat))["session_id"]

    async def tracked() -> bool:
        return session_id in await supervisor.tracked.remote()

    await eventually(tracked)
    adopted = (await supervisor.stats.remote())["adopted"]
    await supervisor.deregister.remote(session_id, "lost")  # as if its registration was lost

    async def adopted_again() -> bool:  # from Ray's actor table, by the next reconciliation
        stats = await supervisor.stats.remote()
        return stats["adopted"] > adopted and await tracked()

    await eventually(adopted_again, timeout_s=5)
    ray.kill(ray.get_actor(session_id, namespace=settings.ray_namespace), no_restart=True)

    async def forgotten() -> bool:
        return not await tracked()

    await eventually(forgotten, timeout_s=5)  # before recovery re-creates it (deadline + grace)
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1), timeout_s=30)
    assert reply.text.endswith("perguntou: oi")


async def test_idle_retriever_is_reaped_and_recreated_on_the_next_question(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), **{"debounce_s": 0.2, "max_wait_s": 0.5})
    chat = wa.new_chat()
    name = f"tenant_{tenant.id}"
    await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert _alive(name, settings)

    async def reaped() -> bool:
        return not _alive(name, settings)

    await eventually(reaped, timeout_s=settings.retriever_idle_ttl_s + 10)
    await tenant.post(wa.text(tenant.instance, chat, "E qual a cor do produto X?"))
    [_, reply] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert "azul" in reply.text  # the new retriever reopened the same collection
