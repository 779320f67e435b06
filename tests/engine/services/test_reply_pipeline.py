"""Turn leases, in-process on a database of its own: a turn has one owner at a time, recovery
takes over only an expired lease, and an owner that lost its turn records and sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.config import Settings
from engine.core.statuses import MessageStatus, TurnStatus
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.pipeline import InProcessConversa

pytestmark = pytest.mark.integration

Here = Callable[..., InProcessConversa]


@pytest.fixture
async def here(settings: Settings, own_database_url: str) -> AsyncIterator[Here]:
    made: list[InProcessConversa] = []

    def make(owner: str, **overrides: Any) -> InProcessConversa:
        update = {"database_url": own_database_url, "typing_presence": False, **overrides}
        conversa = InProcessConversa(settings.model_copy(update=update), owner=owner)
        made.append(conversa)
        return conversa

    yield make
    for conversa in made:
        await conversa.close()


async def test_an_expired_lease_is_taken_over_and_its_old_owner_can_no_longer_answer(
    here: Here, fake_evolution: FakeEvolution
) -> None:
    # Lease: 0.3 s (+ 0.2 s of retrieval) — as if worker A froze after claiming the burst.
    short = {"turn_lease_s": 0.3, "retriever_timeout_s": 0.2}
    worker_a, worker_b = here("worker_a", **short), here("worker_b", **short)
    shop = await worker_a.make_shop()
    chat = wa.new_chat()
    conversation = await worker_a.receive(shop, chat, "Qual o horário?")
    stale = await worker_a.begin(conversation)
    assert stale is not None
    await asyncio.sleep(0.8)

    fresh = await worker_b.begin(conversation)  # recovery's new turn
    assert fresh is not None and fresh.turn_id != stale.turn_id
    late = await worker_a.answer(stale)  # worker A wakes up and finishes its reply
    assert late.discarded and not fake_evolution.sent_to(chat)
    result = await worker_b.answer(fresh)
    assert result.delivered and not result.discarded

    assert len(fake_evolution.sent_to(chat)) == 1
    turns = await worker_b.turns(conversation)
    assert [(t.id, t.status) for t in turns] == [
        (stale.turn_id, TurnStatus.ABANDONADA),
        (fresh.turn_id, TurnStatus.RESPONDIDA),
    ]
    assert turns[0].reply_text is None  # the stale reply was never recorded
    inbound = [m for m in await worker_b.messages(conversation) if m.direction == "inbound"]
    assert [(m.turn_id, m.status) for m in inbound] == [(fresh.turn_id, MessageStatus.RESPONDIDA)]


async def test_a_live_lease_keeps_recovery_from_starting_a_second_turn(
    here: Here, fake_evolution: FakeEvolution
) -> None:
    worker_a, worker_b = here("worker_a"), here("worker_b")  # the session's lease: seconds
    shop = await worker_a.make_shop()
    chat = wa.new_chat()
    conversation = await worker_a.receive(shop, chat, "Tem estacionamento?")
    plan = await worker_a.begin(conversation)
    assert plan is not None
    assert await worker_b.begin(conversation) is None  # its owner is alive: nothing to take
    result = await worker_a.answer(plan)
    assert result.delivered
    assert await worker_b.begin(conversation) is None  # answered: nothing left
    assert len(fake_evolution.sent_to(chat)) == 1
    assert [t.status for t in await worker_a.turns(conversation)] == [TurnStatus.RESPONDIDA]


async def test_the_heartbeat_keeps_the_lease_of_a_reply_slower_than_the_lease(
    here: Here, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    short = {"turn_lease_s": 0.6, "retriever_timeout_s": 0.1}
    worker_a, worker_b = here("worker_a", **short), here("worker_b", **short)
    shop = await worker_a.make_shop()
    chat = wa.new_chat()
    conversation = await worker_a.receive(shop, chat, "Fazem entrega?")
    plan = await worker_a.begin(conversation)
    assert plan is not None
    fake_llm.mode, fake_llm.slow_s = "slow", 1.5  # the model takes 2.5 leases
    try:
        answering = asyncio.get_running_loop().create_task(worker_a.answer(plan))
        for _ in range(4):
            await asyncio.sleep(0.35)
            assert await worker_b.begin(conversation) is None  # renewed every 0.2 s: never lost
        result = await answering
    finally:
        fake_llm.mode = "ok"
    assert result.delivered and not result.discarded
    assert len(fake_evolution.sent_to(chat)) == 1
    assert [t.status for t in await worker_a.turns(conversation)] == [TurnStatus.RESPONDIDA]
