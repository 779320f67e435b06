"""A new chat's conversation actor starts in a worker the raylet booted ahead of time; the pool is
refilled one boot at a time."""

from __future__ import annotations

import itertools

import psutil
import pytest
import ray

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.ray_actors import alive_actor_pid
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def _idle_workers() -> set[int]:
    """Pids of this cluster's idle Python workers (children of its raylet, titled ray::IDLE)."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    idle = set()
    for child in psutil.Process(raylet).children():
        try:
            if child.cmdline()[:1] == ["ray::IDLE"]:
                idle.add(child.pid)
        except psutil.Error:
            continue
    return idle


async def _warmed(settings) -> set[int]:  # type: ignore[no-untyped-def]
    """The idle workers, once the pool was filled."""
    supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)

    async def warmed() -> set[int] | None:
        stats = await supervisor.stats.remote()
        idle = _idle_workers()
        return idle if stats["workers_prestarted"] >= settings.warm_workers and idle else None

    idle: set[int] = await eventually(warmed, timeout_s=60)
    return idle


async def test_a_new_chat_takes_a_prestarted_worker_and_the_pool_is_refilled(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, conversa, settings
) -> None:
    supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)
    idle_before = await _warmed(settings)
    prestarted_before = (await supervisor.stats.remote())["workers_prestarted"]
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    response = await tenant.post(wa.text(tenant.instance, chat, "oi, tudo bem?"))
    assert response.json()["status"] == "accepted"

    async def answered() -> bool:
        return bool(fake_evolution.sent_to(chat))

    await eventually(answered, timeout_s=30)
    session_id = (await tenant.conversation_for(chat))["session_id"]
    pid = alive_actor_pid(session_id)

    assert pid in idle_before  # no process was booted for it: an idle one became the actor

    async def refilled() -> bool:
        return (await supervisor.stats.remote())["workers_prestarted"] > prestarted_before

    await eventually(refilled, timeout_s=10)  # the raylet was asked for its replacement


async def test_the_pool_is_refilled_one_boot_at_a_time(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, conversa, settings
) -> None:
    # A boot takes a core for ~0.5 s: two at once on a 2-core node held the other chats' turns
    # for up to 0.6 s. New chats that empty part of the pool get their replacements one by one.
    idle_before = await _warmed(settings)
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chats = [wa.new_chat(), wa.new_chat()]
    for chat in chats:
        assert (await tenant.post(wa.text(tenant.instance, chat, "oi"))).json()["status"] == (
            "accepted"
        )

    async def answered() -> bool:
        return all(fake_evolution.sent_to(chat) for chat in chats)

    await eventually(answered, timeout_s=30)

    async def refilled() -> list[float] | None:
        booted = []
        for pid in _idle_workers() - idle_before:
            try:
                booted.append(psutil.Process(pid).create_time())
            except psutil.Error:
                continue
        return sorted(booted) if len(booted) >= 2 else None

    booted = await eventually(refilled, timeout_s=30)
    gaps = [later - earlier for earlier, later in itertools.pairwise(booted)]
    assert min(gaps) >= 1.0, booted  # WarmPool's batch_s (2 s) apart
