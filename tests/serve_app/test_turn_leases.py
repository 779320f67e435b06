"""A turn has one owner at a time, on the running stack: recovery never starts a second reply
while the first one's worker is alive, and takes over only once a dead worker's lease expired."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
import ray

from engine.core.naming import reply_worker_name
from tests.conftest import TURN_LEASE_S
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.ray_actors import alive_actor_pid
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

# Deadline 0.1 s after the message: recovery (grace 2 s, every 1 s) looks at the conversation
# ~2-3 s later, while the model (2 × the 2 s LLM timeout, then the fallback) is still answering.
IMPATIENT = {"debounce_s": 0.1, "max_wait_s": 0.1}


async def _sent(fake: FakeEvolution, chat: str) -> list[Any] | None:
    return fake.sent_to(chat) or None


async def test_a_conversation_actor_killed_mid_reply_gets_one_reply_not_two(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings: Any
) -> None:
    tenant = await make_tenant(**IMPATIENT)
    chat, question = wa.new_chat(), "Vocês vendem no atacado?"
    fake_llm.mode, fake_llm.slow_s = "slow", 30.0  # the model times out: the fallback, ~4 s in
    try:
        await tenant.post(wa.text(tenant.instance, chat, question))
        await eventually(lambda: _requested(fake_llm, question))
        session_id = (await tenant.conversation_for(chat))["session_id"]
        pid = alive_actor_pid(session_id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the actor dies while its reply worker is answering
        [reply] = await eventually(lambda: _sent(fake_evolution, chat), timeout_s=30)
        # Recovery re-created the actor meanwhile; wait out a few more recovery passes.
        await asyncio.sleep(6)
    finally:
        fake_llm.mode = "ok"
    assert len(fake_evolution.sent_to(chat)) == 1
    assert reply.text == settings.llm_fallback_message
    assert [t["status"] for t in await tenant.turns(chat)] == ["RESPONDIDA"]  # no second turn


async def test_a_reply_worker_killed_mid_reply_is_answered_once_its_lease_expired(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings: Any
) -> None:
    tenant = await make_tenant(**IMPATIENT)
    chat, question = wa.new_chat(), "Qual o prazo de entrega?"
    fake_llm.mode, fake_llm.slow_s = "slow", 30.0
    try:
        await tenant.post(wa.text(tenant.instance, chat, question))
        await eventually(lambda: _requested(fake_llm, question))
        pid = await _worker_answering(question, settings)
        os.kill(pid, signal.SIGKILL)  # Ray restarts it; its turn's lease is not renewed
    finally:
        fake_llm.mode = "ok"
    [reply] = await eventually(lambda: _sent(fake_evolution, chat), timeout_s=TURN_LEASE_S + 30)
    assert reply.text.endswith(f"perguntou: {question}")  # a new turn, with the model back
    await asyncio.sleep(4)
    assert len(fake_evolution.sent_to(chat)) == 1
    assert [t["status"] for t in await tenant.turns(chat)] == ["ABANDONADA", "RESPONDIDA"]
    [inbound] = [m for m in await tenant.messages(chat) if m["direction"] == "inbound"]
    assert inbound["status"] == "RESPONDIDA"


async def _requested(fake_llm: FakeOpenAI, question: str) -> bool:
    return bool(fake_llm.requests_about(question))


async def _worker_answering(question: str, settings: Any) -> int:
    """The process of the reply worker producing the reply to `question` (holding its turn)."""
    for index in range(settings.reply_workers):
        handle = ray.get_actor(reply_worker_name(index), namespace=settings.ray_namespace)
        status = await handle.status.remote()
        if question in status["answering"]:
            return int(status["pid"])
    raise AssertionError("no reply worker is answering it")
