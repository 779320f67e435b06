"""LGPD for one contact: export everything held about them, erase it (rows and live memory)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
import ray

from engine.config import Settings
from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PRODUCT = "O produto X custa R$ 100 e é azul."


async def test_export_then_erase_one_contact_under_both_jids(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    fake_evolution: FakeEvolution,
    fake_llm: FakeOpenAI,
    settings: Settings,
    database_url: str,
    api: httpx.AsyncClient,
) -> None:
    tenant = await make_tenant(documents=(PRODUCT,), debounce_s=0.3, max_wait_s=1.0)
    account = await make_account(tenant.id)
    phone, lid, other = wa.new_chat(), "778899001122334@lid", wa.new_chat()
    digits = phone.split("@")[0]
    # Joana writes under her LID (Evolution gives her phone alongside); another customer too.
    await tenant.post(
        wa.text(
            tenant.instance,
            lid,
            "Meu nome é Joana. Quanto custa o produto X?",
            key_extra={"remoteJidAlt": phone, "addressingMode": "lid"},
        )
    )
    await tenant.post(wa.text(tenant.instance, other, "Quanto custa o produto X?"))
    await eventually(lambda: _sent(fake_evolution, phone, 1))
    await eventually(lambda: _sent(fake_evolution, other, 1))

    # Export, by the phone as people type it (tenant API) and by the LID (operator): the same.
    response = await account.client.get(f"/v1/contacts/+{digits[:2]} {digits[2:]}/export")
    assert response.status_code == 200, response.text
    export = response.json()
    by_lid = (await api.get(f"/admin/clientes/{tenant.id}/contacts/{lid}/export")).json()
    assert by_lid["conversations"] == export["conversations"]
    assert export["jids"] == sorted([lid, phone])
    assert export["lid_pairs"] == [
        {"lid_jid": lid, "phone_jid": phone, "learned_at": export["lid_pairs"][0]["learned_at"]}
    ]
    [conversation] = export["conversations"]
    assert conversation["chat_jid"] == phone
    texts = [m["text"] for m in conversation["messages"]]
    assert texts[0] == "Meu nome é Joana. Quanto custa o produto X?" and len(texts) >= 2
    [turn] = conversation["turns"]
    assert any(PRODUCT in (s.get("text") or "") for s in turn["sources"]), turn["sources"]
    assert conversation["memory"] == [
        {"user": "Meu nome é Joana. Quanto custa o produto X?", "assistant": turn["reply_text"]}
    ]
    assert other not in response.text

    # Erase (by the LID: the phone's conversation goes too) while the actor still holds memory.
    # She asks once more first, so the erase follows a turn closely: the exports above can take
    # longer than the test stack's idle TTL (3 s) on a loaded machine, and a reaped actor has
    # nothing left to forget.
    await tenant.post(
        wa.text(
            tenant.instance,
            lid,
            "E ele vem em outra cor?",
            key_extra={"remoteJidAlt": phone, "addressingMode": "lid"},
        )
    )
    actor = ray.get_actor(conversation["session_id"], namespace=settings.ray_namespace)

    async def remembered() -> bool:  # the turn ends (memory kept) once the send is recorded
        return (await actor.status.remote())["memory_turns"] == 2

    assert await eventually(remembered)
    held_messages = len(await tenant.messages(phone))
    response = await account.client.delete(f"/v1/contacts/{lid}")
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["conversations"] == 1 and erased["turns"] == 2 and erased["lid_pairs"] == 1
    assert erased["messages"] == held_messages > len(texts)
    assert erased["processed_webhooks"] == 2
    assert erased["actors_forgotten"] == 1

    for path in (f"/v1/contacts/{digits}/export", f"/v1/contacts/{lid}/export"):
        response = await account.client.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"].endswith("holds no data about this contact")
    assert (await account.client.delete(f"/v1/contacts/{digits}")).status_code == 404
    # The other customer is untouched.
    still = (await api.get(f"/admin/clientes/{tenant.id}/contacts/{other}/export")).json()
    assert len(still["conversations"]) == 1 and len(still["conversations"][0]["turns"]) == 1

    # Audited: who and what, the contact masked, none of the erased data.
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT actor, action, subject, detail::text AS detail FROM audit_log "
            "WHERE cliente_id = $1 ORDER BY id",
            tenant.id,
        )
        held = await connection.fetchval(
            "SELECT count(*) FROM processed_webhooks p JOIN messages m "
            "ON p.key = m.wa_message_id WHERE m.cliente_id = $1",
            tenant.id,
        )
    finally:
        await connection.close()
    actions = [(r["actor"], r["action"]) for r in rows]
    assert (f"api_key:{account.key_id}", "contact.erase") in actions
    assert ("operator", "contact.export") in actions
    for row in rows:
        record = " ".join(str(v) for v in row.values())
        assert digits not in record and lid.split("@")[0] not in record and "Joana" not in record
    assert held == 1  # only the other customer's message key is left

    # She writes again: a clean conversation, nothing of the erased one in the prompt.
    replies_before = len(fake_evolution.sent_to(phone))
    await tenant.post(wa.text(tenant.instance, phone, "Qual é a cor dele?"))
    await eventually(lambda: _sent(fake_evolution, phone, replies_before + 1))
    [request] = fake_llm.requests_about("Qual é a cor dele?")
    assert request["messages"][1:-1] == []
    assert "Joana" not in str(request["messages"])

    async def gone() -> bool:  # forgotten: it left (the next message went to a new actor)
        try:
            await actor.status.remote()
        except ray.exceptions.RayActorError:
            return True
        return False

    assert await eventually(gone, timeout_s=15)


async def test_bad_contact_is_a_clear_422_and_other_tenants_see_nothing(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    owner = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    stranger = await make_account((await make_tenant()).id)
    chat = wa.new_chat()
    await owner.post(wa.text(owner.instance, chat, "Oi"))
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    for bad in ("1203630000@g.us", "status@broadcast", "abc", "123"):
        response = await stranger.client.get(f"/v1/contacts/{bad}/export")
        assert response.status_code == 422, response.text
        assert "phone number" in response.json()["error"]["message"]
    for response in (
        await stranger.client.get(f"/v1/contacts/{chat}/export"),
        await stranger.client.delete(f"/v1/contacts/{chat}"),
    ):
        assert response.status_code == 404 and chat not in response.text
    assert len(await owner.conversations()) == 1


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int) -> Any:
    sent = fake_evolution.sent_to(chat)
    return sent if len(sent) >= count else None
