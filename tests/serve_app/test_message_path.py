"""A WhatsApp message in, a grounded reply out: the whole path on real parts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import ray

from engine.config import Settings
from engine.core.naming import get_collection_name
from engine.db.session import create_engine, session_factory
from engine.services.inbox import EvolutionInbox
from engine.wiring import default_behaviour
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.ray_actors import kill_actor
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PRODUTO_X = "O produto X custa R$ 100 e é azul."
PRODUTO_Y = "O produto Y custa R$ 200 e é vermelho."


async def test_each_cliente_is_answered_only_from_its_own_documents(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    cliente_1 = await make_tenant(documents=(PRODUTO_X, "O produto X tem garantia de 1 ano."))
    cliente_2 = await make_tenant(documents=(PRODUTO_Y, "O produto Y tem garantia de 2 anos."))
    chat = wa.new_chat()  # the same customer writes to both businesses

    for tenant in (cliente_1, cliente_2):
        response = await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto?"))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"

    replies = await eventually(lambda: _replies(fake_evolution, chat, count=2))
    by_instance = {r.instance: r.text for r in replies}
    reply_1, reply_2 = by_instance[cliente_1.instance], by_instance[cliente_2.instance]
    assert "produto X" in reply_1 and "azul" in reply_1 and "R$ 100" in reply_1
    assert "produto Y" not in reply_1 and "vermelho" not in reply_1
    assert "produto Y" in reply_2 and "vermelho" in reply_2 and "R$ 200" in reply_2
    assert "produto X" not in reply_2 and "azul" not in reply_2

    [turn_1] = await cliente_1.turns(chat)
    [turn_2] = await cliente_2.turns(chat)
    sources_1 = " ".join(s["text"] for s in turn_1["sources"])
    sources_2 = " ".join(s["text"] for s in turn_2["sources"])
    assert "produto X" in sources_1 and "produto Y" not in sources_1
    assert "produto Y" in sources_2 and "produto X" not in sources_2


async def test_burst_of_three_messages_gets_one_reply_covering_all_three(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=1.0, max_wait_s=6.0)
    chat = wa.new_chat()
    parts = ["Oi, bom dia!", "Queria saber do produto X", "Quanto custa e qual a cor?"]
    base = 1_761_060_000
    # Posted out of order (as Evolution does), inside the debounce window.
    for i in (0, 2, 1):
        response = await tenant.post(wa.text(tenant.instance, chat, parts[i], timestamp=base + i))
        assert response.json()["status"] == "accepted"
        await asyncio.sleep(0.2)

    [reply] = await eventually(lambda: _replies(fake_evolution, chat, count=1))
    await asyncio.sleep(2.0)  # a second reply would have come by now
    assert len(fake_evolution.sent_to(chat)) == 1
    assert "\n".join(parts) in reply.text  # one user turn, in the order the customer wrote
    [turn] = await tenant.turns(chat)
    assert turn["user_text"] == "\n".join(parts)
    assert reply.apikey == f"instance-key-{tenant.id}"


async def test_a_message_whose_hand_off_was_lost_still_gets_its_passages(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings, database_url: str
) -> None:
    # The actor searches for the burst it holds while the reply worker claims the burst. Here the
    # claimed burst also holds a message the actor never got (accepted, but its hand-off lost):
    # the search must be run again for the whole burst, so both questions get their passages.
    delivery = "Entregamos em Campinas e Jundiaí."
    others = tuple(f"Aviso {i}: funcionamento normal na semana {i}." for i in range(8))
    tenant = await make_tenant(documents=(delivery, PRODUTO_X, *others))
    chat = wa.new_chat()
    base = 1_761_070_000
    # The chat's actor is up (a new one would restore the lost message from PostgreSQL).
    assert (await tenant.post(wa.text(tenant.instance, chat, "Bom dia", timestamp=base))).json()[
        "status"
    ] == "accepted"
    await eventually(lambda: _replies(fake_evolution, chat, count=1))
    lost = wa.text(tenant.instance, chat, "Vocês entregam em Campinas?", timestamp=base + 10)
    await _accept_without_hand_off(settings, database_url, tenant.secret, lost)
    handed = wa.text(tenant.instance, chat, "Quanto custa o produto X?", timestamp=base + 11)
    assert (await tenant.post(handed)).json()["status"] == "accepted"

    await eventually(lambda: _replies(fake_evolution, chat, count=2))
    [_, turn] = await tenant.turns(chat)
    assert turn["user_text"] == "Vocês entregam em Campinas?\nQuanto custa o produto X?"
    best = {s["text"].strip() for s in turn["sources"][:2]}
    assert best == {delivery, PRODUTO_X}


async def test_a_new_chats_actor_starts_the_retriever_while_the_customer_types(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings
) -> None:
    # The retriever's cold start (imports, opening Chroma) must not be added to the first reply:
    # the chat's new actor starts it inside the debounce window, before the burst is answered.
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=5.0, max_wait_s=10.0)
    retriever = get_collection_name(tenant.id)
    assert kill_actor(retriever, namespace=settings.ray_namespace)  # reaped, as when idle
    chat = wa.new_chat()
    assert (await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))).json()[
        "status"
    ] == "accepted"

    async def retriever_up() -> bool:
        try:
            ray.get_actor(retriever, namespace=settings.ray_namespace)
        except ValueError:
            return False
        return True

    assert await eventually(retriever_up, timeout_s=4.0)
    assert not fake_evolution.sent_to(chat)  # still inside the customer's typing window
    [reply] = await eventually(lambda: _replies(fake_evolution, chat, count=1))
    assert "R$ 100" in reply.text


async def test_a_bursts_passages_are_searched_before_it_is_due_and_its_turn_uses_them(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings
) -> None:
    # The search (the question's embedding, Chroma, BM25) runs SEARCH_AHEAD_S (1 s in tests)
    # before the burst is due, not while the customer may still be typing, and its turn does not
    # search again: the search is off the reply's path.
    tenant = await make_tenant(documents=(PRODUTO_X, PRODUTO_Y), debounce_s=3.0, max_wait_s=10.0)
    chat = wa.new_chat()
    actor = await _answered_once(tenant, chat, settings, fake_evolution)
    before = (await actor.status.remote())["searches"]
    question = wa.text(tenant.instance, chat, "Quanto custa o produto X?")
    assert (await tenant.post(question)).json()["status"] == "accepted"

    status = await eventually(lambda: _status_when(actor, lambda s: s["pending"] == 1))
    assert status["searches"] == before  # 2 s before the search ahead
    status = await eventually(lambda: _status_when(actor, lambda s: s["searches"] > before))
    assert status["pending"] == 1 and len(fake_evolution.sent_to(chat)) == 1  # not due yet
    [_, reply] = await eventually(lambda: _replies(fake_evolution, chat, count=2))
    assert "R$ 100" in reply.text
    assert (await actor.status.remote())["searches"] == before + 1


async def test_a_message_after_the_search_ahead_has_the_whole_burst_searched(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings
) -> None:
    # A message that comes once the burst was searched ahead changes what the burst asks: the
    # passages come from a search for the burst with it, not the one made without it.
    delivery = "Entregamos em Campinas e Jundiaí."
    others = tuple(f"Aviso {i}: funcionamento normal na semana {i}." for i in range(8))
    tenant = await make_tenant(
        documents=(delivery, PRODUTO_X, *others), debounce_s=3.0, max_wait_s=10.0
    )
    chat = wa.new_chat()
    actor = await _answered_once(tenant, chat, settings, fake_evolution)
    before = (await actor.status.remote())["searches"]
    base = 1_761_080_000
    first = wa.text(tenant.instance, chat, "Quanto custa o produto X?", timestamp=base)
    assert (await tenant.post(first)).json()["status"] == "accepted"
    status = await eventually(lambda: _status_when(actor, lambda s: s["searches"] > before))
    assert status["pending"] == 1  # searched ahead; 1 s left before it is due
    second = wa.text(tenant.instance, chat, "Vocês entregam em Campinas?", timestamp=base + 1)
    assert (await tenant.post(second)).json()["status"] == "accepted"

    await eventually(lambda: _replies(fake_evolution, chat, count=2))
    [_, turn] = await tenant.turns(chat)
    assert turn["user_text"] == "Quanto custa o produto X?\nVocês entregam em Campinas?"
    assert {s["text"].strip() for s in turn["sources"][:2]} == {delivery, PRODUTO_X}
    assert (await actor.status.remote())["searches"] == before + 2  # the first one dropped


async def _answered_once(
    tenant: Any, chat: str, settings: Settings, fake_evolution: FakeEvolution
) -> Any:
    """The chat's actor, once a first message was answered (it is warm, its retriever up)."""
    assert (await tenant.post(wa.text(tenant.instance, chat, "Bom dia"))).json()[
        "status"
    ] == "accepted"
    await eventually(lambda: _replies(fake_evolution, chat, count=1))
    conversation = await tenant.conversation_for(chat)
    return ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)


async def _status_when(actor: Any, condition: Any) -> dict[str, Any] | None:
    status: dict[str, Any] = await actor.status.remote()
    return status if condition(status) else None


async def _accept_without_hand_off(
    settings: Settings, database_url: str, secret: str, payload: dict[str, Any]
) -> None:
    """What the webhook records for a message, without handing it to the chat's actor."""
    engine = create_engine(database_url, pool_size=1)
    try:
        inbox = EvolutionInbox(session_factory(engine), defaults=default_behaviour(settings))
        outcome = await inbox.handle(secret=secret, read_body=wa.body_reader(payload))
        assert outcome.delivery is not None, outcome
    finally:
        await engine.dispose()


async def test_a_message_accepted_before_its_actor_started_counts_its_wait_from_acceptance(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings, database_url: str
) -> None:
    # A chat's new actor restores the chat's pending messages from PostgreSQL, the one that
    # started it included. Their wait counts from when each was accepted, not from when the
    # actor got going: here the first message waited 5 s for its actor (its hand-off lost), so
    # the burst is due 10 s (MAX_WAIT) after it, not a whole debounce after the actor started.
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=10.0, max_wait_s=10.0)
    chat = wa.new_chat()
    first = wa.text(tenant.instance, chat, "Bom dia")
    accepted = time.monotonic()
    await _accept_without_hand_off(settings, database_url, tenant.secret, first)
    await asyncio.sleep(5.0 - (time.monotonic() - accepted))
    second = wa.text(tenant.instance, chat, "Quanto custa o produto X?")
    assert (await tenant.post(second)).json()["status"] == "accepted"  # starts the chat's actor

    [reply] = await eventually(lambda: _replies(fake_evolution, chat, count=1), timeout_s=20)
    waited_s = reply.at - accepted
    # Due at 10 s (the actor has 5 s to start); counted from the actor's start it would be due
    # after 15 s or more (5 s + the debounce + the start).
    assert 9.9 <= waited_s < 13.0, waited_s


async def test_max_wait_caps_the_debounce_for_a_chatty_customer(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=1.0, max_wait_s=2.5)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "oi"))  # warm up: actors exist after this
    await eventually(lambda: _replies(fake_evolution, chat, count=1))

    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    # A message every 0.5 s (< debounce_s) would push a plain debounce back forever.
    while len(fake_evolution.sent_to(chat)) < 2 and loop.time() - started < 15:
        await tenant.post(wa.text(tenant.instance, chat, f"mensagem {sent}"))
        sent += 1
        await asyncio.sleep(0.5)
    replies = fake_evolution.sent_to(chat)
    assert len(replies) >= 2, "no reply although the customer kept writing past max_wait_s"
    assert replies[1].at - started < 2.5 + 2.0  # max_wait_s, plus the reply's own work
    assert "mensagem 0" in replies[1].text


async def test_redelivered_webhook_gets_no_second_reply(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,))
    chat = wa.new_chat()
    payload = wa.text(tenant.instance, chat, "Qual a cor do produto X?")
    first = await tenant.post(payload)
    assert first.json()["status"] == "accepted"
    again = await tenant.post(payload)  # Evolution's retry of the same key.id
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    await eventually(lambda: _replies(fake_evolution, chat, count=1))
    late = await tenant.post(payload)  # a redelivery after the answer
    assert late.json()["status"] == "duplicate"
    await asyncio.sleep(1.5)
    assert len(fake_evolution.sent_to(chat)) == 1
    assert len([m for m in await tenant.messages(chat) if m["direction"] == "inbound"]) == 1


@pytest.mark.parametrize(
    ("kind", "payload_of"),
    [
        (
            "group",
            lambda i, c: wa.text(
                i, "120363041234567890@g.us", "oi grupo", key_extra={"participant": c}
            ),
        ),
        ("status_broadcast", lambda i, c: wa.text(i, "status@broadcast", "meu status")),
        ("broadcast", lambda i, c: wa.text(i, "1234567890@broadcast", "lista")),
        ("newsletter", lambda i, c: wa.text(i, "120363000000000000@newsletter", "canal")),
        (
            "reaction",
            lambda i, c: wa.upsert(
                i,
                remote_jid=c,
                message={"reactionMessage": {"key": {"id": "ABC"}, "text": "👍"}},
                message_type="reactionMessage",
            ),
        ),
        (
            "protocol",
            lambda i, c: wa.upsert(
                i,
                remote_jid=c,
                message={"protocolMessage": {"type": 0, "key": {"id": "ABC"}}},
                message_type="protocolMessage",
            ),
        ),
        ("fromMe", lambda i, c: wa.text(i, c, "Oi Maria, aqui é a Carla", from_me=True)),
    ],
)
async def test_messages_the_bot_must_not_answer_get_no_reply(
    kind: str, payload_of, make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    payload = payload_of(tenant.instance, chat)
    response = await tenant.post(payload)
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("ignored", "recorded")
    remote = payload["data"]["key"]["remoteJid"]
    await asyncio.sleep(1.5)
    assert fake_evolution.sent_to(remote) == [] and fake_evolution.sent_to(chat) == []
    if kind == "fromMe":  # kept as the human-takeover signal
        [message] = await tenant.messages(chat)
        assert (message["author"], message["direction"]) == ("human", "outbound")


async def test_inactive_cliente_is_recorded_but_not_answered(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(
        documents=(PRODUTO_X,), status="SUSPENSO", debounce_s=0.3, max_wait_s=1.0
    )
    chat = wa.new_chat()
    response = await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))
    assert response.status_code == 200
    assert response.json() == {"status": "recorded", "detail": "cliente_suspenso"}
    await asyncio.sleep(1.5)
    assert fake_evolution.sent_to(chat) == []
    [message] = await tenant.messages(chat)
    assert message["status"] == "IGNORADA" and message["text"] == "Quanto custa o produto X?"


async def _replies(fake_evolution: FakeEvolution, chat: str, *, count: int):  # type: ignore[no-untyped-def]
    sent = fake_evolution.sent_to(chat)
    return sent if len(sent) >= count else None
