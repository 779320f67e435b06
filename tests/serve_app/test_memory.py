"""Conversation memory lives in PostgreSQL: it survives the actor that held it."""

from __future__ import annotations

import pytest
import ray

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_memory_survives_killing_the_conversation_actor(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings
) -> None:
    tenant = await make_tenant(
        documents=("O produto X custa R$ 100 e é azul.",), debounce_s=0.3, max_wait_s=1.0
    )
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Meu nome é Joana. Quanto custa o produto X?"))
    [first_reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))

    conversation = await tenant.conversation_for(chat)
    actor = ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)
    old_pid = (await actor.status.remote())["pid"]
    ray.kill(actor, no_restart=True)

    await tenant.post(wa.text(tenant.instance, chat, "E qual é a cor dele?"))
    await eventually(lambda: _sent(fake_evolution, chat, 2))
    [request] = fake_llm.requests_about("E qual é a cor dele?")
    history = request["messages"][1:-1]
    assert history == [
        {"role": "user", "content": "Meu nome é Joana. Quanto custa o produto X?"},
        {"role": "assistant", "content": first_reply.text},
    ]
    new_actor = ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)
    assert (await new_actor.status.remote())["pid"] != old_pid


async def test_model_failure_gets_a_polite_fallback_not_silence(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings
) -> None:
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    fake_llm.mode = "error"
    try:
        await tenant.post(wa.text(tenant.instance, chat, "Vocês entregam no sábado?"))
        [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    finally:
        fake_llm.mode = "ok"
    assert reply.text == settings.llm_fallback_message
    [turn] = await tenant.turns(chat)
    assert turn["reply_kind"] == "fallback" and turn["status"] == "RESPONDIDA"


async def test_lid_chat_is_answered_on_the_phone_number(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    phone = wa.new_chat()
    payload = wa.text(
        tenant.instance,
        "123456789012345@lid",
        "Oi, tudo bem?",
        key_extra={"remoteJidAlt": phone, "addressingMode": "lid"},
    )
    assert (await tenant.post(payload)).json()["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, phone, 1))
    assert [c["chat_jid"] for c in await tenant.conversations()] == [phone]


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int):  # type: ignore[no-untyped-def]
    sent = fake_evolution.sent_to(chat)
    return sent if len(sent) >= count else None
