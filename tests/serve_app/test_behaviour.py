"""What customers and businesses notice: takeover, sessions, typing, media, hours, groups."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.ray_actors import kill_actor
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "O produto X custa R$ 100 e é azul."
FAST = {"debounce_s": 0.3, "max_wait_s": 1.0}
ALWAYS_OPEN = {
    "timezone": "America/Sao_Paulo",
    "weekly": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}


async def _sent(fake: FakeEvolution, chat: str, count: int):  # type: ignore[no-untyped-def]
    sent = fake.sent_to(chat)
    return sent if len(sent) >= count else None


async def _kill_actor(tenant: TenantHandle, chat: str, settings) -> None:  # type: ignore[no-untyped-def]
    session_id = (await tenant.conversation_for(chat))["session_id"]
    kill_actor(session_id, namespace=settings.ray_namespace)


async def _say(tenant: TenantHandle, chat: str, text: str, **kwargs) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = await tenant.post(wa.text(tenant.instance, chat, text, **kwargs))
    assert response.status_code == 200, response.text
    return response.json()


async def test_human_typing_on_the_phone_pauses_the_bot_until_the_pause_ends(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), human_pause_s=4.0, **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Oi, quanto custa?")
    await eventually(lambda: _sent(fake_evolution, chat, 1))

    ack = await _say(tenant, chat, "Oi Maria, aqui é a Carla!", from_me=True)
    assert ack == {"status": "recorded", "detail": "human_takeover"}
    await _kill_actor(tenant, chat, settings)  # the pause lives in PostgreSQL, not the actor
    during = await _say(tenant, chat, "Obrigada Carla, e a cor?")
    assert during == {"status": "recorded", "detail": "paused"}
    await asyncio.sleep(1.5)
    assert len(fake_evolution.sent_to(chat)) == 1  # the bot kept quiet while the human talked

    await asyncio.sleep(3.0)  # the pause runs out by itself
    assert (await _say(tenant, chat, "Ainda tem o produto X?"))["status"] == "accepted"
    [_, resumed] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert "Ainda tem o produto X?" in resumed.text
    assert "e a cor?" not in resumed.text  # what the human handled stays with the human


async def test_echo_of_our_own_reply_is_not_a_takeover(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Quanto custa?")
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    echo = await _say(tenant, chat, reply.text, from_me=True)  # Evolution echoing our send
    assert echo == {"status": "recorded", "detail": "own_message_echo"}
    assert (await _say(tenant, chat, "E a cor?"))["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, chat, 2))


async def test_operator_can_pause_and_resume_a_chat(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Oi")
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    conversation = await tenant.conversation_for(chat)
    base = f"/admin/clientes/{tenant.id}/conversations/{conversation['id']}"

    paused = await tenant.api.post(f"{base}/pause", json={})
    assert paused.status_code == 200 and paused.json()["paused_by"] == "operator"
    assert (await _say(tenant, chat, "alguém aí?"))["detail"] == "paused"
    await asyncio.sleep(1.5)
    assert len(fake_evolution.sent_to(chat)) == 1

    resumed = await tenant.api.post(f"{base}/resume")
    assert resumed.status_code == 200 and resumed.json()["paused_until"] is None
    assert (await _say(tenant, chat, "voltou?"))["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, chat, 2))
    other = await tenant.api.post(
        f"/admin/clientes/{tenant.id + 10_000}/conversations/{conversation['id']}/pause", json={}
    )
    assert other.status_code == 404


async def test_session_expires_after_silence_and_memory_starts_over(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), session_expire_s=2.0, **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Meu nome é Ana.")
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    await _say(tenant, chat, "Quanto custa para a Ana?")
    await eventually(lambda: _sent(fake_evolution, chat, 2))
    [within] = fake_llm.requests_about("Quanto custa para a Ana?")
    assert len(within["messages"]) == 4  # system, the earlier turn (user + assistant), this one

    await _kill_actor(tenant, chat, settings)  # a re-created actor must know the session expired
    await asyncio.sleep(3.0)  # longer than session_expire_s
    await _say(tenant, chat, "Qual é o meu nome?")
    await eventually(lambda: _sent(fake_evolution, chat, 3))
    [after] = fake_llm.requests_about("Qual é o meu nome?")
    assert len(after["messages"]) == 2  # a new session: no memory carried over
    assert len(await tenant.turns(chat)) == 3  # history is kept


async def test_finish_keyword_closes_the_session_politely(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Meu pedido é o 123.")
    await eventually(lambda: _sent(fake_evolution, chat, 1))
    await _say(tenant, chat, "  #SAIR ")
    [_, goodbye] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert goodbye.text == settings.finish_message
    await _say(tenant, chat, "Oi de novo")
    await eventually(lambda: _sent(fake_evolution, chat, 3))
    [again] = fake_llm.requests_about("Oi de novo")
    assert len(again["messages"]) == 2


async def test_long_reply_is_split_into_messages_sent_in_order_with_typing(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    fake_llm.paragraphs = 4
    try:
        await _say(tenant, chat, "Me explica tudo sobre o produto X")
        parts = await eventually(lambda: _sent(fake_evolution, chat, 4))
    finally:
        fake_llm.paragraphs = 1
    assert [p.text for p in parts[1:]] == [f"Parágrafo {i} de 4." for i in (2, 3, 4)]
    assert parts[0].text.startswith("Segundo a base:")
    assert [p.at for p in parts] == sorted(p.at for p in parts)
    assert all(p.delay_ms > 0 for p in parts)  # "typing…" before each part
    [presence] = fake_evolution.presences_to(chat)  # and while the reply was being written
    assert presence.presence == "composing" and presence.at <= parts[0].at
    messages = [m for m in await tenant.messages(chat) if m["direction"] == "outbound"]
    assert [m["status"] for m in messages] == ["ENVIADA"] * 4
    assert [m["wa_message_id"] for m in messages] == [p.key_id for p in parts]


async def test_messages_during_a_reply_join_the_next_turn(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    fake_llm.mode, fake_llm.slow_s = "slow", 1.5
    try:
        await _say(tenant, chat, "primeira pergunta")
        await eventually(lambda: _async(fake_llm.requests_about("primeira pergunta")))
        loop = asyncio.get_running_loop()
        posted = loop.time()
        await _say(tenant, chat, "segunda pergunta")  # while the first reply is being written
        assert loop.time() - posted < 1.0  # acked at once although the conversation is busy
        first, second = await eventually(lambda: _sent(fake_evolution, chat, 2), timeout_s=30)
    finally:
        fake_llm.mode = "ok"
    assert first.text.endswith("primeira pergunta") and "segunda" not in first.text
    assert second.text.endswith("segunda pergunta")


async def _async(value):  # type: ignore[no-untyped-def]
    return value


async def test_audio_without_transcription_gets_the_polite_text_only_reply(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    tenant = await make_tenant(documents=(DOC,), **FAST)
    chat = wa.new_chat()
    audio = {
        "audioMessage": {
            "url": "https://mmg.whatsapp.net/x",
            "mimetype": "audio/ogg; codecs=opus",
            "seconds": 7,
            "ptt": True,
        }
    }
    response = await tenant.post(
        wa.upsert(tenant.instance, remote_jid=chat, message=audio, message_type="audioMessage")
    )
    assert response.json()["status"] == "accepted"
    [reply] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert reply.text == settings.media_unsupported_message
    assert "unknown" not in reply.text
    image = await tenant.post(
        wa.upsert(
            tenant.instance,
            remote_jid=chat,
            message_type="imageMessage",
            message={"imageMessage": {"mimetype": "image/jpeg", "caption": "Quanto custa este?"}},
        )
    )
    assert image.json()["status"] == "accepted"
    [_, captioned] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert captioned.text.endswith("Quanto custa este?")  # a caption is read like text


async def test_out_of_office_reply_once_per_closed_period(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution, settings
) -> None:
    closed = {"timezone": "America/Sao_Paulo", "weekly": {}}
    tenant = await make_tenant(documents=(DOC,), business_hours=closed, **FAST)
    chat = wa.new_chat()
    await _say(tenant, chat, "Vocês estão abertos?")
    [notice] = await eventually(lambda: _sent(fake_evolution, chat, 1))
    assert notice.text == settings.out_of_office_message
    await _say(tenant, chat, "Alô?")
    await asyncio.sleep(1.5)
    assert len(fake_evolution.sent_to(chat)) == 1  # told once, not on every message
    [*_, later] = await tenant.messages(chat)
    assert later["status"] == "IGNORADA" and later["ignored_reason"] == "out_of_office"

    opened = await tenant.api.patch(
        f"/admin/clientes/{tenant.id}", json={"business_hours": ALWAYS_OPEN}
    )
    assert opened.status_code == 200
    await _say(tenant, chat, "E agora, quanto custa?")
    [*_, answer] = await eventually(lambda: _sent(fake_evolution, chat, 2))
    assert "R$ 100" in answer.text


async def test_invalid_business_hours_are_refused_with_a_reason(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.api.patch(
        f"/admin/clientes/{tenant.id}",
        json={"business_hours": {"timezone": "Mars/Olympus", "weekly": {}}},
    )
    assert response.status_code == 422
    assert "business_hours" in response.json()["detail"]


async def test_groups_are_answered_only_when_enabled_and_mentioned(
    make_tenant: MakeTenant, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(documents=(DOC,), group_replies="mentioned", **FAST)
    owner = "5511912345678@s.whatsapp.net"  # the instance's own number (the envelope's sender)
    group = "120363041234567890@g.us"[:-5] + f"{tenant.id:05d}@g.us"
    plain = wa.text(
        tenant.instance, group, "alguém sabe o preço?", key_extra={"participant": wa.new_chat()}
    )
    assert (await tenant.post(plain)).json() == {"status": "ignored", "detail": "group"}
    mention = wa.text(
        tenant.instance,
        group,
        "@5511912345678 quanto custa o produto X?",
        key_extra={"participant": wa.new_chat()},
        sender=owner,
    )
    mention["data"]["contextInfo"] = {"mentionedJid": [owner]}
    assert (await tenant.post(mention)).json()["status"] == "accepted"
    [reply] = await eventually(lambda: _sent(fake_evolution, group, 1))
    assert reply.text.endswith("quanto custa o produto X?")
    assert "R$ 100" in reply.text
