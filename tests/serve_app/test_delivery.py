"""Replies reach the customer once, on the running stack, whatever Evolution does: down for a
while (owed and retried), slower than the timeout or cut off after the request (confirmed by its
echo, not resent blindly), echoing our message before answering (attached, not resent),
answering a 2xx that is not JSON, or refusing (dead-lettered, visible, re-sendable)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import ECHO_WINDOW_S, EVOLUTION_TIMEOUT_S
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "O produto X custa R$ 100 e é azul."
FAST = {"debounce_s": 0.3, "max_wait_s": 1.0}
SLOWER_THAN_THE_TIMEOUT_S = EVOLUTION_TIMEOUT_S + 2


def _with_echo(tenant: TenantHandle, fake: FakeEvolution, conversa: Any) -> None:
    """The instance's webhook as the README sets it up: Evolution posts `send.message`."""
    fake.configure_webhook(
        tenant.instance,
        url=f"{conversa.base_url}/webhooks/evolution",
        headers={"x-conversa-secret": tenant.secret},
        events=["MESSAGES_UPSERT", "SEND_MESSAGE"],
    )


async def _sent(fake: FakeEvolution, chat: str, count: int = 1) -> list[Any] | None:
    sent = fake.sent_to(chat)
    return sent if len(sent) >= count else None


async def _deliveries(tenant: TenantHandle, state: str = "all") -> list[dict[str, Any]]:
    response = await tenant.api.get(f"/admin/clientes/{tenant.id}/deliveries?state={state}")
    response.raise_for_status()
    return response.json()


async def _answered(tenant: TenantHandle, chat: str) -> bool:
    turns = await tenant.turns(chat)
    return bool(turns) and all(t["status"] == "RESPONDIDA" for t in turns)


async def test_a_reply_owed_while_evolution_is_down_is_delivered_once_it_is_back(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    evolution_faults.fail("sendText", for_s=3.0)  # all of Evolution, for 3 s
    await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))

    async def failed_once() -> list[dict[str, Any]]:
        return [d for d in await _deliveries(tenant, "owed") if d["error"]]

    [owed] = await eventually(failed_once)
    assert owed["status"] == "PENDENTE" and owed["attempts"] >= 1 and "500" in owed["error"]
    messages = await tenant.messages(chat)
    assert [m["status"] for m in messages if m["direction"] == "inbound"] == ["RECEBIDA"]

    [reply] = await eventually(lambda: _sent(evolution_faults, chat), timeout_s=30)
    assert "R$ 100" in reply.text
    await eventually(lambda: _answered(tenant, chat))
    await asyncio.sleep(1.0)
    assert len(evolution_faults.sent_to(chat)) == 1
    # Retried with backoff, not hammered: 3 s of outage, a handful of attempts.
    assert 2 <= len(evolution_faults.attempts_to(chat)) <= 8
    messages = await tenant.messages(chat)
    assert [(m["direction"], m["status"]) for m in messages] == [
        ("inbound", "RESPONDIDA"),
        ("outbound", "ENVIADA"),
    ]
    assert messages[1]["wa_message_id"] == reply.key_id
    assert await _deliveries(tenant) == []


async def test_a_refused_reply_is_dead_lettered_visible_and_resent_by_the_operator(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    other = await make_tenant(**FAST)
    chat = wa.new_chat()
    evolution_faults.fail("sendText", status=401, number=chat)  # say, a revoked instance key
    await tenant.post(wa.text(tenant.instance, chat, "Quanto custa o produto X?"))

    [dead] = await eventually(lambda: _deliveries(tenant, "dead"), timeout_s=30)
    assert dead["status"] == "FALHOU" and "refused by Evolution" in dead["error"]
    assert dead["attempts"] == 1 and dead["chat_jid"] == chat
    [turn] = await tenant.turns(chat)
    assert turn["status"] == "FALHOU"
    messages = await tenant.messages(chat)
    assert [m["status"] for m in messages if m["direction"] == "inbound"] == ["RECEBIDA"]
    assert not evolution_faults.sent_to(chat)

    url = f"/admin/clientes/{{}}/turns/{dead['turn_id']}/resend"
    refused = await tenant.api.post(url.format(other.id))  # not the other cliente's to resend
    assert refused.status_code == 404
    evolution_faults.clear_faults()  # the operator fixed the key
    response = await tenant.api.post(url.format(tenant.id))
    assert response.status_code == 200
    assert response.json() == {"turn_id": dead["turn_id"], "parts_requeued": 1}
    again = await tenant.api.post(url.format(tenant.id))
    assert again.status_code == 409 and "only a dead-lettered reply" in again.json()["detail"]

    [reply] = await eventually(lambda: _sent(evolution_faults, chat))
    assert "R$ 100" in reply.text
    await eventually(lambda: _answered(tenant, chat))
    messages = await tenant.messages(chat)
    assert [m["status"] for m in messages if m["direction"] == "inbound"] == ["RESPONDIDA"]
    assert len(evolution_faults.sent_to(chat)) == 1


async def test_a_send_slower_than_the_timeout_is_confirmed_by_its_echo_and_not_resent(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution, conversa: Any
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    _with_echo(tenant, evolution_faults, conversa)
    chat = wa.new_chat()
    evolution_faults.slow("sendText", delay_s=SLOWER_THAN_THE_TIMEOUT_S, number=chat)
    await tenant.post(wa.text(tenant.instance, chat, "Qual a cor do produto X?"))

    [reply] = await eventually(lambda: _sent(evolution_faults, chat))
    await eventually(lambda: _answered(tenant, chat), timeout_s=30)
    await asyncio.sleep(SLOWER_THAN_THE_TIMEOUT_S + ECHO_WINDOW_S)  # past any resend
    assert len(evolution_faults.sent_to(chat)) == 1
    messages = await tenant.messages(chat)
    assert [(m["direction"], m["status"]) for m in messages] == [
        ("inbound", "RESPONDIDA"),
        ("outbound", "ENVIADA"),
    ]
    assert messages[1]["wa_message_id"] == reply.key_id  # learnt from the echo


async def test_a_send_cut_off_after_the_request_is_confirmed_by_its_echo_and_not_resent(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution, conversa: Any
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    _with_echo(tenant, evolution_faults, conversa)
    chat = wa.new_chat()
    evolution_faults.reset_connection(number=chat)
    await tenant.post(wa.text(tenant.instance, chat, "Tem o produto X?"))

    [reply] = await eventually(lambda: _sent(evolution_faults, chat))
    await eventually(lambda: _answered(tenant, chat))
    await asyncio.sleep(ECHO_WINDOW_S + 1)
    assert len(evolution_faults.sent_to(chat)) == 1
    outbound = [m for m in await tenant.messages(chat) if m["direction"] == "outbound"]
    assert [(m["status"], m["wa_message_id"]) for m in outbound] == [("ENVIADA", reply.key_id)]


async def test_without_an_echo_an_unknown_outcome_is_resent_only_after_the_echo_window(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution
) -> None:
    """The documented duplicate window: Evolution sent it, its answer was lost, and no echo
    came (its webhook lacks SEND_MESSAGE): after SEND_ECHO_WINDOW_S the part is sent again."""
    tenant = await make_tenant(documents=(DOC,), **FAST)  # no webhook: no echo
    chat = wa.new_chat()
    evolution_faults.reset_connection(number=chat, calls=1)
    await tenant.post(wa.text(tenant.instance, chat, "Vocês entregam?"))

    first, second = await eventually(lambda: _sent(evolution_faults, chat, 2), timeout_s=30)
    assert first.text == second.text
    assert second.at - first.at >= ECHO_WINDOW_S  # not blindly: only once the window closed
    await eventually(lambda: _answered(tenant, chat))
    [part] = [m for m in await tenant.messages(chat) if m["direction"] == "outbound"]
    assert part["status"] == "ENVIADA" and part["attempts"] == 2
    await asyncio.sleep(1.0)
    assert len(evolution_faults.sent_to(chat)) == 2


async def test_an_echo_arriving_before_the_send_returns_is_attached_and_nothing_is_resent(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution, fake_llm: FakeOpenAI, conversa: Any
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    _with_echo(tenant, evolution_faults, conversa)
    chat = wa.new_chat()
    evolution_faults.echo_before_reply(number=chat)  # the fromMe upsert, before the 201
    fake_llm.paragraphs = 3
    try:
        await tenant.post(wa.text(tenant.instance, chat, "Me fala do produto X"))
        sent = await eventually(lambda: _sent(evolution_faults, chat, 3), timeout_s=30)
    finally:
        fake_llm.paragraphs = 1
    await eventually(lambda: _answered(tenant, chat))
    await asyncio.sleep(ECHO_WINDOW_S + 1)
    assert len(evolution_faults.sent_to(chat)) == 3  # every part once, the later ones too
    messages = await tenant.messages(chat)
    outbound = [m for m in messages if m["direction"] == "outbound"]
    assert [(m["status"], m["wa_message_id"]) for m in outbound] == [
        ("ENVIADA", s.key_id) for s in sent
    ]  # the echoes are the parts, not rows of their own
    conversation = await tenant.conversation_for(chat)
    assert conversation["paused_until"] is None  # our own echo is no human takeover


async def test_a_2xx_that_is_not_json_counts_as_delivered(
    make_tenant: MakeTenant, evolution_faults: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    evolution_faults.answer_not_json(number=chat)
    await tenant.post(wa.text(tenant.instance, chat, "Qual o preço?"))
    await eventually(lambda: _sent(evolution_faults, chat))
    await eventually(lambda: _answered(tenant, chat))
    await asyncio.sleep(ECHO_WINDOW_S + 1)
    assert len(evolution_faults.sent_to(chat)) == 1
    [part] = [m for m in await tenant.messages(chat) if m["direction"] == "outbound"]
    assert part["status"] == "ENVIADA" and part["attempts"] == 1
