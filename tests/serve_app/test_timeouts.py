"""Every actor call has a time limit, on the running stack: a hung retriever costs a reply its
passages, not the reply; a hung reply worker costs a turn a retry on the other worker, not the
chat."""

from __future__ import annotations

import os
import signal
import time
import zlib
from typing import Any

import pytest
import ray

from engine.core.naming import get_collection_name, reply_worker_name, session_id
from tests.conftest import RETRIEVER_TIMEOUT_S, TURN_TIMEOUT_S
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.ray_actors import alive_actor_pid
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "O produto X custa R$ 100 e é azul."
FAST = {"debounce_s": 0.3, "max_wait_s": 1.0}


async def _sent(fake: FakeEvolution, chat: str, count: int) -> list[Any] | None:
    sent = fake.sent_to(chat)
    return sent if len(sent) >= count else None


async def test_a_hung_retriever_is_answered_without_passages_after_the_timeout(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))
    [grounded] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert "R$ 100" in grounded.text
    pid = alive_actor_pid(get_collection_name(tenant.id))
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the retriever hangs (as on a stuck disk)
    try:
        asked = time.monotonic()
        await tenant.post(wa.text(tenant.instance, chat, "E de que cor ele é?"))
        _, reply = await eventually(lambda: _sent(fake_evolution, chat, 2), timeout_s=30)
        waited_s = time.monotonic() - asked
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "sem trechos" in reply.text and reply.text.endswith("E de que cor ele é?")
    assert waited_s >= RETRIEVER_TIMEOUT_S
    [_, turn] = await tenant.turns(chat)
    assert turn["status"] == "RESPONDIDA" and turn["sources"] == []


async def test_a_hung_reply_worker_does_not_hold_the_chat(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Any
) -> None:
    tenant = await make_tenant(**FAST)
    chat = wa.new_chat()
    # The worker this chat's actor calls first (the actor's rule: crc32 of its session id).
    index = zlib.crc32(session_id(tenant.id, chat).encode()) % settings.reply_workers
    worker = ray.get_actor(reply_worker_name(index), namespace=settings.ray_namespace)
    pid = (await worker.status.remote())["pid"]
    os.kill(pid, signal.SIGSTOP)  # frozen: its calls never answer
    try:
        await tenant.post(wa.text(tenant.instance, chat, "Vocês abrem aos domingos?"))
        # Answered while the worker is still frozen: its calls timed out, the other one answered.
        [reply] = await eventually(
            lambda: _sent(fake_evolution, chat, 1), timeout_s=2 * TURN_TIMEOUT_S + 30
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert reply.text.endswith("Vocês abrem aos domingos?")
    await eventually(lambda: _no_turn_in_progress(tenant, chat))
    assert len(fake_evolution.sent_to(chat)) == 1
    assert [t["status"] for t in await tenant.turns(chat)] == ["RESPONDIDA"]


async def _no_turn_in_progress(tenant: Any, chat: str) -> bool:
    turns = await tenant.turns(chat)
    return all(t["status"] not in ("PROCESSANDO", "ENVIANDO") for t in turns)
