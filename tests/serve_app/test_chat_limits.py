"""Per-chat limits through the running stack: webhooks in over HTTP, the fake Evolution sees
what the contact gets."""

from __future__ import annotations

import asyncio

import pytest

from engine.config import Settings
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_a_contact_flooding_a_chat_gets_one_notice_then_silence_and_a_human(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings: Settings
) -> None:
    tenant = await make_tenant()
    chat = wa.new_chat()
    flood = settings.chat_max_messages + 1

    answers = await asyncio.gather(
        *(tenant.post(wa.text(tenant.instance, chat, f"oi {i}")) for i in range(flood))
    )
    assert {a.status_code for a in answers} == {200}

    async def notice_sent() -> bool:
        return settings.too_many_messages_message in [s.text for s in fake_evolution.sent_to(chat)]

    try:
        await eventually(notice_sent, timeout_s=30)
    except AssertionError:
        messages = await tenant.messages(chat)
        raise AssertionError(
            f"sent: {[s.text for s in fake_evolution.sent_to(chat)]}; inbound: "
            f"{[(m['status'], m.get('ignored_reason')) for m in messages]}"
        ) from None
    later = [await tenant.post(wa.text(tenant.instance, chat, f"alô {i}")) for i in range(3)]
    await asyncio.sleep(settings.max_wait_s + 1)  # time for any (wrong) answer to go out

    texts = [s.text for s in fake_evolution.sent_to(chat)]
    assert texts.count(settings.too_many_messages_message) == 1
    assert texts[-1] == settings.too_many_messages_message  # nothing after the notice
    assert [a.json()["detail"] for a in later] == ["paused"] * 3
    conversation = await tenant.conversation_for(chat)
    assert conversation["needs_human_reason"] == "too_many_messages"
    waiting = await tenant.api.get(f"/admin/clientes/{tenant.id}/needs-human")
    assert chat in [c["chat_jid"] for c in waiting.json()["conversations"]]
    status = (await tenant.api.get("/admin/status")).json()
    assert status["waiting_for_a_human"]["too_many_messages"][str(tenant.id)] == 1
