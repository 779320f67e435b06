"""Issue 7 point 9: one person, one conversation, whether WhatsApp shows them by lid or phone.

Every lid ↔ phone pair an instance reports is remembered; an `@lid` message without a phone JID
is keyed by a pair seen before; a conversation opened under the lid before its pair was known is
re-keyed to the phone (or merged into the phone's conversation when both exist), with its memory,
pause and session state.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import asyncpg
import pytest

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

_lids = itertools.count(1)
QUICK = {"debounce_s": 0.3, "max_wait_s": 1.0}


def new_lid() -> str:
    return f"{900000000000000 + next(_lids) * 1000 + uuid.uuid4().int % 1000}@lid"


async def sent(fake_evolution: FakeEvolution, chat: str, count: int):  # type: ignore[no-untyped-def]
    replies = fake_evolution.sent_to(chat)
    return replies if len(replies) >= count else None


async def chats_of(tenant: TenantHandle) -> list[str]:
    return sorted(c["chat_jid"] for c in await tenant.conversations())


def history_sent_with(fake_llm: FakeOpenAI, text: str) -> list[dict[str, str]]:
    [request] = fake_llm.requests_about(text)
    return request["messages"][1:-1]


async def test_lid_conversation_is_rekeyed_to_the_phone_with_its_memory(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    tenant = await make_tenant(**QUICK)
    lid, phone = new_lid(), wa.new_chat()

    # 1. The first message carries only the lid: a conversation under the lid, answered there.
    first = "Meu nome é Joana. Vocês entregam?"
    assert (await tenant.post(wa.text(tenant.instance, lid, first))).json()["status"] == "accepted"
    [first_reply] = await eventually(lambda: sent(fake_evolution, lid, 1))
    assert await chats_of(tenant) == [lid]

    # 2. Evolution now reports the pair: the same conversation, keyed by the phone.
    second = "E qual é o prazo?"
    payload = wa.text(tenant.instance, phone, second, key_extra={"remoteJidAlt": lid})
    assert (await tenant.post(payload)).json()["status"] == "accepted"
    await eventually(lambda: sent(fake_evolution, phone, 1))
    assert await chats_of(tenant) == [phone]
    assert history_sent_with(fake_llm, second) == [
        {"role": "user", "content": first},
        {"role": "assistant", "content": first_reply.text},
    ]

    # 3. A later lid-only message joins it through the remembered pair.
    third = "Obrigada!"
    assert (await tenant.post(wa.text(tenant.instance, lid, third))).json()["status"] == "accepted"
    await eventually(lambda: sent(fake_evolution, phone, 2))
    assert await chats_of(tenant) == [phone]
    inbound = [m["text"] for m in await tenant.messages(phone) if m["direction"] == "inbound"]
    assert inbound == [first, second, third]
    assert len(fake_evolution.sent_to(lid)) == 1  # nothing more went to the lid


async def test_pause_set_under_the_lid_holds_for_the_phone(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(**QUICK, human_pause_s=600)
    lid, phone = new_lid(), wa.new_chat()
    await tenant.post(wa.text(tenant.instance, lid, "Oi, preciso de ajuda"))
    await eventually(lambda: sent(fake_evolution, lid, 1))
    # A human answers on the business phone: the bot pauses in that chat.
    takeover = wa.text(tenant.instance, lid, "Oi, aqui é a Ana, vou te atender", from_me=True)
    assert (await tenant.post(takeover)).json()["detail"] == "human_takeover"

    payload = wa.text(tenant.instance, phone, "Ana, e o boleto?", key_extra={"remoteJidAlt": lid})
    await tenant.post(payload)

    async def left_to_the_human() -> bool:
        messages = await tenant.messages(phone)
        last = messages[-1]
        return last["text"] == "Ana, e o boleto?" and last["ignored_reason"] == "paused"

    await eventually(left_to_the_human)
    conversation = await tenant.conversation_for(phone)
    assert conversation["paused_by"] == "human" and conversation["paused_until"] is not None
    await asyncio.sleep(1.5)  # a reply would have come by now
    assert fake_evolution.sent_to(phone) == []
    assert len(fake_evolution.sent_to(lid)) == 1


async def test_lid_and_phone_conversations_of_one_contact_are_merged(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    """Both exist when the contact wrote by phone (no pair given) and by lid (no pair given);
    the first message that carries the pair merges them: messages, turns, memory, one actor."""
    tenant = await make_tenant(**QUICK)
    lid, phone = new_lid(), wa.new_chat()
    by_phone, by_lid = "Meu pedido é o 4417.", "Esqueci: moro em Campinas."
    await tenant.post(wa.text(tenant.instance, phone, by_phone))
    [phone_reply] = await eventually(lambda: sent(fake_evolution, phone, 1))
    await tenant.post(wa.text(tenant.instance, lid, by_lid))
    [lid_reply] = await eventually(lambda: sent(fake_evolution, lid, 1))
    assert await chats_of(tenant) == sorted([lid, phone])

    question = "Quando chega?"
    payload = wa.text(tenant.instance, phone, question, key_extra={"remoteJidAlt": lid})
    assert (await tenant.post(payload)).json()["status"] == "accepted"
    await eventually(lambda: sent(fake_evolution, phone, 2))

    assert await chats_of(tenant) == [phone]
    inbound = [m["text"] for m in await tenant.messages(phone) if m["direction"] == "inbound"]
    assert inbound == [by_phone, by_lid, question]
    assert [t["user_text"] for t in await tenant.turns(phone)] == [by_phone, by_lid, question]
    # The phone's actor held only its own exchange; it was retired and the new one restored both.
    assert history_sent_with(fake_llm, question) == [
        {"role": "user", "content": by_phone},
        {"role": "assistant", "content": phone_reply.text},
        {"role": "user", "content": by_lid},
        {"role": "assistant", "content": lid_reply.text},
    ]


async def test_pair_reported_in_a_group_keys_a_later_private_lid_message(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, database_url: str
) -> None:
    tenant = await make_tenant(**QUICK)
    lid, phone = new_lid(), wa.new_chat()
    group = wa.text(
        tenant.instance,
        "120363041234567890@g.us",
        "bom dia, grupo",
        key_extra={"participant": lid, "participantAlt": phone},
    )
    assert (await tenant.post(group)).json()["status"] == "ignored"
    assert await _pairs(database_url, tenant.id) == [(lid, phone)]

    await tenant.post(wa.text(tenant.instance, lid, "Oi, vi vocês no grupo"))
    await eventually(lambda: sent(fake_evolution, phone, 1))
    assert await chats_of(tenant) == [phone]


@pytest.mark.parametrize(
    "key_extra",
    [
        pytest.param(lambda lid, phone: {"senderPn": phone}, id="senderPn (2.3.1-2.3.4)"),
        pytest.param(
            lambda lid, phone: {"previousRemoteJid": lid, "senderLid": lid}, id="previousRemoteJid"
        ),
    ],
)
async def test_every_field_that_carries_a_pair_is_remembered(
    key_extra, make_tenant: MakeTenant, database_url: str
) -> None:
    tenant = await make_tenant(status="SUSPENSO")  # recorded, not answered: no actors needed
    lid, phone = new_lid(), wa.new_chat()
    remote = phone if "previousRemoteJid" in key_extra(lid, phone) else lid
    payload = wa.text(tenant.instance, remote, "oi", key_extra=key_extra(lid, phone))
    assert (await tenant.post(payload)).status_code == 200
    assert await _pairs(database_url, tenant.id) == [(lid, phone)]
    assert await chats_of(tenant) == [phone]


async def test_pairs_are_never_shared_between_clientes(
    make_tenant: MakeTenant, database_url: str
) -> None:
    """The same contact writes to two businesses; only the first has seen their phone."""
    knows, does_not = await make_tenant(status="SUSPENSO"), await make_tenant(status="SUSPENSO")
    lid, phone = new_lid(), wa.new_chat()
    await knows.post(wa.text(knows.instance, phone, "oi", key_extra={"remoteJidAlt": lid}))
    await does_not.post(wa.text(does_not.instance, lid, "oi"))
    assert await chats_of(knows) == [phone]
    assert await chats_of(does_not) == [lid]
    assert await _pairs(database_url, does_not.id) == []


async def test_a_redelivered_pair_message_changes_nothing(
    make_tenant: MakeTenant, database_url: str, db_counts
) -> None:
    tenant = await make_tenant(status="SUSPENSO")
    lid, phone = new_lid(), wa.new_chat()
    payload = wa.text(tenant.instance, phone, "oi", key_extra={"remoteJidAlt": lid})
    assert (await tenant.post(payload)).json()["status"] == "recorded"
    before = await db_counts(tenant.id)
    assert (await tenant.post(payload)).json()["status"] == "duplicate"
    assert await db_counts(tenant.id) == before
    assert await _pairs(database_url, tenant.id) == [(lid, phone)]


async def _pairs(database_url: str, cliente_id: int) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT lid_jid, phone_jid FROM lid_pairs WHERE cliente_id = $1 ORDER BY lid_jid",
            cliente_id,
        )
    finally:
        await connection.close()
    return [(r["lid_jid"], r["phone_jid"]) for r in rows]
