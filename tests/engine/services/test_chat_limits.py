"""Per-chat limits in the reply pipeline, in-process on a database of its own (each test its own
limits): a flood gets one notice, a bot gets silence, a spent LLM budget gets no model call; each
leaves the chat waiting for a human."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from engine.config import Settings
from engine.db import operations as operations_db
from engine.db.models import Conversation
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.pipeline import InProcessConversa

pytestmark = pytest.mark.integration

Here = Callable[..., InProcessConversa]
NOTICE = "Muitas mensagens! Uma pessoa vai continuar."
BUDGET = "Uma pessoa da equipe responde já."


@pytest.fixture
async def here(settings: Settings, own_database_url: str) -> AsyncIterator[Here]:
    made: list[InProcessConversa] = []

    def make(**overrides: Any) -> InProcessConversa:
        update = {
            "database_url": own_database_url,
            "typing_presence": False,
            "too_many_messages_message": NOTICE,
            "llm_budget_message": BUDGET,
            **overrides,
        }
        conversa = InProcessConversa(settings.model_copy(update=update))
        made.append(conversa)
        return conversa

    yield make
    for conversa in made:
        await conversa.close()


async def _waiting_reason(conversa: InProcessConversa, conversation_id: int) -> str | None:
    async with conversa.sessions() as session:
        row = await session.scalar(select(Conversation).where(Conversation.id == conversation_id))
    assert row is not None
    return row.needs_human_reason if row.needs_human_since is not None else None


async def test_a_flood_gets_one_notice_then_silence_and_a_human(
    here: Here, fake_evolution: FakeEvolution
) -> None:
    conversa = here(chat_max_messages=3)
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    for i in range(4):
        conversation = await conversa.receive(shop, chat, f"pergunta número {i}")

    first = await conversa.turn(conversation)
    later = [
        await conversa.inbox.handle(
            secret=shop.secret, read_body=wa.body_reader(wa.text(shop.instance, chat, f"e {i}?"))
        )
        for i in range(3)
    ]
    second = await conversa.turn(conversation)

    assert first is not None and first.reply_text == NOTICE
    assert [(o.detail, o.delivery) for o in later] == [("paused", None)] * 3  # recorded only
    assert second is None
    assert [s.text for s in fake_evolution.sent_to(chat)] == [NOTICE]
    assert await _waiting_reason(conversa, conversation) == "too_many_messages"


async def test_our_reply_echoed_back_is_a_loop_answered_with_silence(
    here: Here, fake_evolution: FakeEvolution, caplog: pytest.LogCaptureFixture
) -> None:
    conversa = here()
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    conversation = await conversa.receive(shop, chat, "Vocês abrem no domingo?")
    await conversa.turn(conversation)
    [ours] = fake_evolution.sent_to(chat)

    await conversa.receive(shop, chat, ours.text)  # another bot repeats what we said
    echoed = await conversa.turn(conversation)

    assert echoed is None
    assert fake_evolution.sent_to(chat) == [ours]
    assert await _waiting_reason(conversa, conversation) == "loop_suspected"
    inbound = [m for m in await conversa.messages(conversation) if m.direction == "inbound"]
    assert inbound[-1].ignored_reason == "loop_suspected"
    assert any(r.levelno == logging.WARNING and "limits" in r.getMessage() for r in caplog.records)


async def test_the_same_text_again_and_again_is_a_loop(
    here: Here, fake_evolution: FakeEvolution
) -> None:
    conversa = here(loop_repeats=3)
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    answered = []
    for _ in range(3):
        conversation = await conversa.receive(shop, chat, "Mensagem automática: obrigado!")
        answered.append(await conversa.turn(conversation))

    assert [a is not None for a in answered] == [True, True, False]
    assert len(fake_evolution.sent_to(chat)) == 2
    assert await _waiting_reason(conversa, conversation) == "loop_suspected"


async def test_answers_faster_than_anyone_types_are_a_loop(
    here: Here, fake_evolution: FakeEvolution
) -> None:
    conversa = here(loop_fast_answers=2, loop_min_human_gap_s=5.0)
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    answered = []
    for i in range(3):  # each one right after our reply, as an auto-responder would
        conversation = await conversa.receive(shop, chat, f"resposta automática {i}")
        answered.append(await conversa.turn(conversation))

    assert [a is not None for a in answered] == [True, True, False]
    assert len(fake_evolution.sent_to(chat)) == 2


async def test_a_cliente_over_its_daily_tokens_gets_no_model_call_and_an_alert(
    here: Here,
    fake_evolution: FakeEvolution,
    fake_llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversa = here(llm_daily_tokens=1)  # the first reply spends it
    shop = await conversa.make_shop()
    chat, other_chat = wa.new_chat(), wa.new_chat()
    conversation = await conversa.receive(shop, chat, "Qual o preço do banho?")
    first = await conversa.turn(conversation)
    question = "E a tosa, quanto custa?"
    other = await conversa.receive(shop, other_chat, question)  # the budget is the cliente's

    refused = await conversa.turn(other)

    assert first is not None and first.reply_kind == "llm"
    assert refused is not None and (refused.reply_text, refused.reply_kind) == (
        BUDGET,
        "llm_budget_exceeded",
    )
    assert fake_llm.requests_about(question) == []
    assert [s.text for s in fake_evolution.sent_to(other_chat)] == [BUDGET]
    assert await _waiting_reason(conversa, other) == "llm_budget_exceeded"
    async with conversa.sessions() as session:  # what /admin/status shows the operator
        waiting = await operations_db.waiting_for_a_human(session)
    assert waiting["llm_budget_exceeded"] == {shop.id: 1}
    [alert] = [r for r in caplog.records if "daily LLM token budget" in r.getMessage()]
    assert alert.levelno == logging.WARNING
    assert alert.__dict__["cliente_id"] == shop.id
    assert alert.__dict__["llm_tokens_today"] >= 1


async def test_an_operator_sets_a_clientes_own_budget_and_flood_limit(
    here: Here, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    conversa = here(chat_max_messages=3, llm_daily_tokens=0)  # globally: no budget
    budgeted = await conversa.make_shop(llm_daily_tokens=1)
    unlimited = await conversa.make_shop(chat_max_messages=0)
    chat, other, flood = wa.new_chat(), wa.new_chat(), wa.new_chat()

    await conversa.turn(await conversa.receive(budgeted, chat, "Quanto custa o banho?"))
    refused = await conversa.turn(await conversa.receive(budgeted, other, "E a tosa?"))
    for i in range(5):
        conversation = await conversa.receive(unlimited, flood, f"pergunta número {i}")
    answered = await conversa.turn(conversation)

    assert refused is not None and refused.reply_text == BUDGET
    assert answered is not None and answered.reply_kind == "llm"
    assert fake_llm.requests_about("pergunta número 4")
