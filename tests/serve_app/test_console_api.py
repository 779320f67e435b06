"""What the console added to the tenant API: a person sends from the page (out through Evolution,
the bot pauses like a takeover on the phone), and a test question shows the passages a reply
would use. Both only ever reach the key's own cliente."""

from __future__ import annotations

import pytest

from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "# Entregas\n\nA Padaria Sol entrega em Pinheiros de terça a domingo, taxa de R$ 7."


async def _chat_of(tenant: TenantHandle, text: str) -> tuple[str, int]:
    chat = wa.new_chat()
    assert (await tenant.post(wa.text(tenant.instance, chat, text))).status_code == 200
    conversation = await eventually(lambda: _find(tenant, chat))
    return chat, conversation["id"]


async def _find(tenant: TenantHandle, chat: str) -> dict[str, object] | None:
    return next((c for c in await tenant.conversations() if c["chat_jid"] == chat), None)


async def test_a_human_sends_from_the_api_it_goes_out_and_the_bot_pauses_as_on_the_phone(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    tenant = await make_tenant(human_pause_s=600)
    account = await make_account(tenant.id)
    chat, conversation_id = await _chat_of(tenant, "oi, meu pedido atrasou")
    number = chat.split("@")[0]

    sent = await account.client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"text": "Olá, sou a Ana da loja: já vejo seu pedido."},
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["author"] == "human" and body["direction"] == "outbound"
    assert body["status"] == "ENVIADA"
    out = [
        s for s in fake_evolution.sent if s.text == "Olá, sou a Ana da loja: já vejo seu pedido."
    ]
    assert [s.instance for s in out] == [tenant.instance]
    assert out[0].number in (chat, number)
    assert out[0].key_id == body["wa_message_id"]

    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_by"] == "human" and conversation["paused_until"] is not None
    # the customer writes again: recorded, left to the human (no bot reply)
    before = len(fake_evolution.sent_to(chat)) + len(fake_evolution.sent_to(number))
    assert (await tenant.post(wa.text(tenant.instance, chat, "ok, obrigado"))).status_code == 200

    async def ignored() -> bool:
        messages = await tenant.messages(chat)
        return any(m["text"] == "ok, obrigado" and m["status"] == "IGNORADA" for m in messages)

    await eventually(ignored)
    after = len(fake_evolution.sent_to(chat)) + len(fake_evolution.sent_to(number))
    assert after == before
    authors = [m["author"] for m in await tenant.messages(chat)]
    assert authors.count("human") == 1  # Evolution's echo of the send is not a second message


async def test_a_human_send_is_refused_with_a_reason_and_never_reaches_another_tenants_chat(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_evolution: FakeEvolution
) -> None:
    owner, other = await make_tenant(), await make_tenant()
    _, conversation_id = await _chat_of(owner, "bom dia")
    intruder = await make_account(other.id)
    sends_before = len(fake_evolution.sent)

    response = await intruder.client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"text": "olá"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    account = await make_account(owner.id)
    for body in ({"text": ""}, {"text": "x" * 4097}, {}, {"text": "oi", "extra": 1}):
        refused = await account.client.post(
            f"/v1/conversations/{conversation_id}/messages", json=body
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["fields"]
    blank = await account.client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"text": "   "}
    )
    assert blank.status_code == 422 and blank.json()["error"]["code"] == "invalid_input"
    assert len(fake_evolution.sent) == sends_before
    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_until"] is None  # nothing sent: the bot is not paused


async def test_a_test_question_shows_the_passages_a_reply_would_use_from_its_own_documents(
    make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    mine = await make_account((await make_tenant(documents=(DOC,))).id)
    theirs = await make_account(
        (await make_tenant(documents=("A Loja Lua vende parafusos e porcas.",))).id
    )
    found = await mine.client.post(
        "/v1/knowledge/search", json={"question": "vocês entregam em Pinheiros?"}
    )
    assert found.status_code == 200, found.text
    passages = found.json()
    assert passages and "Pinheiros" in passages[0]["text"]
    assert passages[0]["title"] == "doc-0" and passages[0]["section"]
    assert 0 < passages[0]["similarity"] <= 1

    other = await theirs.client.post(
        "/v1/knowledge/search", json={"question": "vocês entregam em Pinheiros?", "k": 20}
    )
    assert other.status_code == 200
    assert all("Pinheiros" not in p["text"] for p in other.json())
    for body in ({"question": ""}, {"question": "x", "k": 0}, {"q": "x"}):
        assert (await mine.client.post("/v1/knowledge/search", json=body)).status_code == 422
