"""Durable delivery, run in-process on a database of its own (tests/support/pipeline.py): the
reply pipeline and a reply worker's delivery loop against the fake Evolution, with settings each
test chooses (attempt caps, backoff, the circuit breaker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.config import Settings
from engine.core.statuses import MessageStatus, TurnStatus
from engine.db import deliveries as deliveries_db
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.pipeline import InProcessConversa
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

Here = Callable[..., InProcessConversa]
FAST_RETRIES = {
    "send_backoff_base_s": 0.2,
    "send_backoff_max_s": 0.4,
    "send_max_attempts": 50,
    "delivery_poll_s": 0.1,
    "evolution_breaker_failures": 1000,  # off unless a test turns it on
    "typing_ms_per_char": 0,
    "typing_presence": False,
}


@pytest.fixture
async def here(
    settings: Settings, own_database_url: str, evolution_faults: FakeEvolution
) -> AsyncIterator[Here]:
    made: list[InProcessConversa] = []

    def make(**overrides: Any) -> InProcessConversa:
        conversa = InProcessConversa(
            settings.model_copy(
                update={"database_url": own_database_url, **FAST_RETRIES, **overrides}
            )
        )
        made.append(conversa)
        return conversa

    yield make
    for conversa in made:
        await conversa.close()


def _outbound(messages: list[Any]) -> list[Any]:
    return [m for m in messages if m.direction == "outbound"]


def _inbound(messages: list[Any]) -> list[Any]:
    return [m for m in messages if m.direction == "inbound"]


async def test_a_reply_evolution_cannot_take_stays_owed_and_is_delivered_when_it_is_back(
    here: Here, evolution_faults: FakeEvolution
) -> None:
    conversa = here()
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    evolution_faults.fail("sendText", number=chat)  # Evolution down for this chat, until cleared
    conversation = await conversa.receive(shop, chat, "Vocês abrem no domingo?")
    result = await conversa.turn(conversation)
    assert result is not None and not result.delivered

    messages = await conversa.messages(conversation)
    [part] = _outbound(messages)
    assert part.status is MessageStatus.PENDENTE and part.attempts == 1
    assert "500" in (part.error or "")
    assert [m.status for m in _inbound(messages)] == [MessageStatus.RECEBIDA]  # not answered
    [turn] = await conversa.turns(conversation)
    assert turn.status is TurnStatus.ENVIANDO

    conversa.start_delivery_loop()
    await eventually(lambda: _attempts_at_least(evolution_faults, chat, 3))
    evolution_faults.clear_faults()
    [sent] = await eventually(lambda: _sent(evolution_faults, chat))
    await asyncio.sleep(1.0)  # a second copy would show up by now
    assert len(evolution_faults.sent_to(chat)) == 1

    messages = await conversa.messages(conversation)
    [part] = _outbound(messages)
    assert part.status is MessageStatus.ENVIADA and part.wa_message_id == sent.key_id
    assert [m.status for m in _inbound(messages)] == [MessageStatus.RESPONDIDA]
    [turn] = await conversa.turns(conversation)
    assert turn.status is TurnStatus.RESPONDIDA and turn.answered_at is not None


async def test_a_new_reply_goes_out_after_the_chats_earlier_reply_still_owed_not_before(
    here: Here, evolution_faults: FakeEvolution
) -> None:
    # A reply's first part is claimed by the transaction that records it, so it is sent at once;
    # not while an earlier reply of the same chat is still owed: parts go out in order.
    conversa = here()
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    evolution_faults.fail("sendText", number=chat)
    conversation = await conversa.receive(shop, chat, "Vocês abrem no domingo?")
    await conversa.turn(conversation)
    await conversa.receive(shop, chat, "E qual o telefone da loja?")
    assert await conversa.turn(conversation) is not None

    earlier, later = _outbound(await conversa.messages(conversation))
    assert earlier.attempts == 1 and earlier.status is MessageStatus.PENDENTE
    assert later.attempts == 0 and later.status is MessageStatus.PENDENTE  # never tried first
    assert len(evolution_faults.attempts_to(chat)) == 1

    evolution_faults.clear_faults()
    conversa.start_delivery_loop()

    async def both_sent() -> list[Any] | None:
        sent = evolution_faults.sent_to(chat)
        return sent if len(sent) == 2 else None

    sent = await eventually(both_sent)
    assert [s.text for s in sent] == [earlier.text, later.text]

    async def both_recorded_sent() -> bool:  # the send is recorded just after Evolution has it
        parts = _outbound(await conversa.messages(conversation))
        return [p.status for p in parts] == [MessageStatus.ENVIADA] * 2

    await eventually(both_recorded_sent)


async def test_a_part_still_failing_after_its_last_attempt_is_dead_lettered_and_can_be_resent(
    here: Here, evolution_faults: FakeEvolution
) -> None:
    conversa = here(send_max_attempts=3)
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    evolution_faults.fail("sendText", number=chat, status=503)
    conversation = await conversa.receive(shop, chat, "Tem entrega hoje?")
    await conversa.turn(conversation)
    conversa.start_delivery_loop()

    async def dead() -> bool:
        [part] = _outbound(await conversa.messages(conversation))
        return part.status is MessageStatus.FALHOU

    await eventually(dead)
    assert len(evolution_faults.attempts_to(chat)) == 3  # capped: no fourth attempt
    await asyncio.sleep(1.0)
    assert len(evolution_faults.attempts_to(chat)) == 3
    messages = await conversa.messages(conversation)
    [part] = _outbound(messages)
    assert "after 3 attempts" in (part.error or "") and "503" in (part.error or "")
    assert [m.status for m in _inbound(messages)] == [MessageStatus.RECEBIDA]  # unanswered
    [turn] = await conversa.turns(conversation)
    assert turn.status is TurnStatus.FALHOU
    async with conversa.sessions() as session:
        [dead_letter] = await deliveries_db.list_undelivered(
            session, shop.id, statuses=frozenset({MessageStatus.FALHOU}), limit=10
        )
    assert dead_letter.turn_id == turn.id and dead_letter.attempts == 3

    evolution_faults.clear_faults()
    async with conversa.sessions() as session:
        assert await deliveries_db.resend_turn(session, shop.id, turn.id) == 1
        await session.commit()
    await eventually(lambda: _sent(evolution_faults, chat))
    await eventually(lambda: _turn_status(conversa, conversation, TurnStatus.RESPONDIDA))
    assert len(evolution_faults.sent_to(chat)) == 1
    assert [m.status for m in _inbound(await conversa.messages(conversation))] == [
        MessageStatus.RESPONDIDA
    ]


async def test_a_refused_part_is_dead_lettered_at_once_without_retries(
    here: Here, evolution_faults: FakeEvolution
) -> None:
    conversa = here()
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    evolution_faults.fail("sendText", number=chat, status=401)  # a wrong key: resending won't help
    conversation = await conversa.receive(shop, chat, "Oi")
    conversa.start_delivery_loop()
    await conversa.turn(conversation)
    await asyncio.sleep(1.0)
    assert len(evolution_faults.attempts_to(chat)) == 1
    [part] = _outbound(await conversa.messages(conversation))
    assert part.status is MessageStatus.FALHOU
    assert (part.error or "").startswith("refused by Evolution: Evolution answered 401")


async def test_an_outage_is_probed_by_one_send_per_cooldown_not_hammered_by_every_chat(
    here: Here, evolution_faults: FakeEvolution
) -> None:
    conversa = here(evolution_breaker_failures=2, evolution_breaker_cooldown_s=1.5)
    shop = await conversa.make_shop()
    chats = [wa.new_chat() for _ in range(6)]
    evolution_faults.fail("sendText")  # all of Evolution
    conversations = [await conversa.receive(shop, chat, "Olá") for chat in chats]
    for conversation in conversations:
        await conversa.turn(conversation)
    conversa.start_delivery_loop()
    await asyncio.sleep(4.0)
    attempts = sum(len(evolution_faults.attempts_to(chat)) for chat in chats)
    # 2 failures open the circuit; then one probe per 1.5 s cooldown. Without the breaker, six
    # chats retrying every 0.2-0.4 s would have made ~70 attempts.
    assert 2 <= attempts <= 6, attempts

    evolution_faults.clear_faults()

    async def all_delivered_once() -> bool:
        return all(len(evolution_faults.sent_to(chat)) == 1 for chat in chats)

    await eventually(all_delivered_once, timeout_s=15)


async def test_one_chats_failing_reply_holds_back_its_own_later_parts_only(
    here: Here, evolution_faults: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    conversa = here()
    shop = await conversa.make_shop()
    stuck, other = wa.new_chat(), wa.new_chat()
    fake_llm.paragraphs = 3
    try:
        evolution_faults.fail("sendText", number=stuck)
        stuck_conversation = await conversa.receive(shop, stuck, "Primeira pergunta")
        await conversa.turn(stuck_conversation)
        other_conversation = await conversa.receive(shop, other, "Outra pergunta")
        conversa.start_delivery_loop()
        await conversa.turn(other_conversation)
    finally:
        fake_llm.paragraphs = 1
    assert len(evolution_faults.sent_to(other)) == 3  # the other chat is not held up
    await eventually(lambda: _attempts_at_least(evolution_faults, stuck, 3))
    parts = _outbound(await conversa.messages(stuck_conversation))
    assert [p.status for p in parts] == [MessageStatus.PENDENTE] * 3
    assert parts[0].attempts >= 3 and parts[1].attempts == parts[2].attempts == 0  # in order

    evolution_faults.clear_faults()

    async def three_sent() -> list[Any] | None:
        sent = evolution_faults.sent_to(stuck)
        return sent if len(sent) == 3 else None

    sent = await eventually(three_sent)
    assert [s.text.split("\n")[0][:12] for s in sent][1:] == ["Parágrafo 2 ", "Parágrafo 3 "]


async def _attempts_at_least(fake: FakeEvolution, chat: str, count: int) -> bool:
    return len(fake.attempts_to(chat)) >= count


async def _sent(fake: FakeEvolution, chat: str) -> list[Any] | None:
    return fake.sent_to(chat) or None


async def _turn_status(conversa: InProcessConversa, conversation: int, status: TurnStatus) -> bool:
    return [t.status for t in await conversa.turns(conversation)] == [status]
