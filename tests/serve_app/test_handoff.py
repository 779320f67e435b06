"""An honest "I don't know" and the hand-off to a human, on the real stack: a question the
documents cannot answer gets the don't-know reply, the chat is flagged and paused, the business
is told (its webhook, a test-started HTTP server, and a WhatsApp message to its operator through
Evolution), the operator API lists the chat, and a human's answer or an operator's resume ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import Settings
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.receiver import Receiver
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

CALIBRATED = Settings.model_fields["relevance_min_score"].default
DONT_KNOW = Settings.model_fields["dont_know_message"].default
OPERATOR = "5511988887777"
MENU = """# Cantina

## Pizzas

Pizza grande de calabresa: R$ 64,00. Pizza broto de calabresa: R$ 40,00.

## Entrega

Entregamos em Barão Geraldo e no Cambuí. Taxa de entrega: R$ 8,00. Pedido mínimo de R$ 50,00.
"""
FAST = {"debounce_s": 0.3, "max_wait_s": 1.0}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


async def _gated_tenant(make_tenant: MakeTenant, receiver: Receiver) -> TenantHandle:
    return await make_tenant(
        documents=(MENU,),
        relevance_min_score=CALIBRATED,
        handoff_webhook_url=f"{receiver.url}/handoff",
        handoff_whatsapp=OPERATOR,
        **FAST,
    )


async def _say(tenant: TenantHandle, chat: str, text: str, **kwargs: Any) -> dict[str, Any]:
    response = await tenant.post(wa.text(tenant.instance, chat, text, **kwargs))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _sent(fake: FakeEvolution, number: str, count: int):  # type: ignore[no-untyped-def]
    sent = fake.sent_to(number)
    return sent if len(sent) >= count else None


async def _waiting(tenant: TenantHandle) -> dict[str, Any]:
    response = await tenant.api.get(f"/admin/clientes/{tenant.id}/needs-human")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_question_outside_the_documents_gets_dont_know_and_a_human_is_called(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, receiver: Receiver
) -> None:
    tenant = await _gated_tenant(make_tenant, receiver)
    chat = wa.new_chat()

    await _say(tenant, chat, "vcs vendem pneu de carro aro 15?")
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert reply.text == DONT_KNOW

    [turn] = await tenant.turns(chat)
    assert turn["reply_kind"] == "handoff" and turn["citations"] == []
    conversation = await tenant.conversation_for(chat)
    assert conversation["needs_human_since"] is not None
    assert conversation["needs_human_reason"] == "no_relevant_passage"
    waiting = await _waiting(tenant)
    assert waiting["count"] == 1 and waiting["conversations"][0]["chat_jid"] == chat

    [notice] = await receiver.wait_for(1)
    body = notice.json()
    assert notice.path == "/handoff" and body["event"] == "conversation.needs_human"
    assert body["cliente_id"] == tenant.id and body["chat_jid"] == chat
    assert body["question"] == "vcs vendem pneu de carro aro 15?"
    [whatsapp] = await eventually(lambda: _sent(fake_evolution, f"{OPERATOR}", 1))
    assert "atendimento humano" in whatsapp.text and "pneu" in whatsapp.text

    # The bot stays quiet in that chat: the customer's next message waits for the human.
    assert (await _say(tenant, chat, "alo? alguem ai?")) == {
        "status": "recorded",
        "detail": "paused",
    }
    await asyncio.sleep(1.5)
    assert len(fake_evolution.sent_to(chat)) == 1


async def test_a_question_the_documents_answer_is_answered_and_cites_its_section(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, receiver: Receiver
) -> None:
    tenant = await _gated_tenant(make_tenant, receiver)
    chat = wa.new_chat()

    await _say(tenant, chat, "qto e a taxa de entrega pro cambui?")
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))

    assert reply.text != DONT_KNOW and "R$ 8,00" in reply.text
    [turn] = await tenant.turns(chat)
    assert turn["reply_kind"] == "llm"
    assert {
        "document_id": turn["sources"][0]["document_id"],
        "title": "doc-0",
        "section": "Cantina > Entrega",
    } == turn["citations"][0]
    assert (await tenant.conversation_for(chat))["needs_human_since"] is None
    await asyncio.sleep(0.5)
    assert receiver.posts() == []  # nobody was called


async def test_a_human_answering_on_the_phone_ends_the_wait_and_the_bot_answers_again_later(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, receiver: Receiver
) -> None:
    tenant = await make_tenant(
        documents=(MENU,),
        relevance_min_score=CALIBRATED,
        handoff_webhook_url=f"{receiver.url}/handoff",
        human_pause_s=2.0,
        **FAST,
    )
    chat = wa.new_chat()
    await _say(tenant, chat, "voces fazem bolo de aniversario sob encomenda?")
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert (await _waiting(tenant))["count"] == 1

    ack = await _say(tenant, chat, "Oi! Aqui é a Carla, não fazemos bolos.", from_me=True)
    assert ack == {"status": "recorded", "detail": "human_takeover"}
    assert (await _waiting(tenant))["count"] == 0
    assert (await tenant.conversation_for(chat))["needs_human_since"] is None

    await asyncio.sleep(2.5)  # the human's pause runs out: the bot is back
    assert (await _say(tenant, chat, "e qual o preco da pizza grande de calabresa?"))[
        "status"
    ] == "accepted"
    [_, answer] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert "R$ 64,00" in answer.text


async def test_an_operator_resume_ends_the_wait_and_the_list_is_oldest_first(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, receiver: Receiver
) -> None:
    tenant = await _gated_tenant(make_tenant, receiver)
    first, second = wa.new_chat(), wa.new_chat()
    await _say(tenant, first, "vcs consertam geladeira?")
    await eventually(lambda: _sent(fake_evolution, first, 1))
    await _say(tenant, second, "qual a senha do wifi de voces?")
    await eventually(lambda: _sent(fake_evolution, second, 1))

    waiting = await _waiting(tenant)
    assert [c["chat_jid"] for c in waiting["conversations"]] == [first, second]

    conversation = await tenant.conversation_for(first)
    response = await tenant.api.post(
        f"/admin/clientes/{tenant.id}/conversations/{conversation['id']}/resume"
    )
    assert response.status_code == 200 and response.json()["needs_human_since"] is None
    assert [c["chat_jid"] for c in (await _waiting(tenant))["conversations"]] == [second]
    assert (await _say(tenant, first, "ok, e a pizza broto de calabresa?"))["status"] == (
        "accepted"
    )
    [_, answer] = await eventually(lambda: _sent(fake_evolution, first, 2))
    assert "R$ 40,00" in answer.text


async def test_small_talk_is_answered_not_handed_off(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, receiver: Receiver
) -> None:
    tenant = await _gated_tenant(make_tenant, receiver)
    chat = wa.new_chat()
    await _say(tenant, chat, "oi, boa noite!")
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert reply.text != DONT_KNOW
    assert (await _waiting(tenant))["count"] == 0
