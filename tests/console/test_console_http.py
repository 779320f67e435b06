"""The console over plain HTTP (no browser): sign-in that is no oracle, the session cookie's
flags, a session that ends with its key, CSRF on every POST, both languages, errors beside the
fields, and another cliente's ids giving nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_app.console.i18n import LANGS, MESSAGES
from tests.conftest import ADMIN_TOKEN as ADMIN
from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.console import ConsoleBrowser, console_client, csrf_of
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NewBrowser = Callable[[], ConsoleBrowser]


@pytest.fixture
async def browser(conversa: Any) -> AsyncIterator[NewBrowser]:
    made: list[httpx.AsyncClient] = []

    def new() -> ConsoleBrowser:
        made.append(console_client(conversa.base_url))
        return ConsoleBrowser(made[-1])

    yield new
    for client in made:
        await client.aclose()


async def _conversation(tenant: TenantHandle, text: str, chat: str | None = None) -> int:
    chat = chat or wa.new_chat()
    assert (await tenant.post(wa.text(tenant.instance, chat, text))).status_code == 200

    async def found() -> int | None:
        rows = [c for c in await tenant.conversations() if c["chat_jid"] == chat]
        return rows[0]["id"] if rows else None

    conversation_id: int = await eventually(found)
    return conversation_id


async def test_sign_in_refuses_every_bad_key_alike_and_sets_a_strict_cookie(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    revoked = await make_account(tenant.id)
    assert (await api.delete(f"/admin/clientes/{tenant.id}/api-keys/{revoked.key_id}")).is_success

    bodies = set()
    for key in ("", "nonsense", "cvk_" + "x" * 50, revoked.key, account.key + "x", ADMIN + "x"):
        response = await browser().sign_in(key)
        assert response.status_code == 401
        assert "conversa_session" not in response.cookies
        bodies.add(response.text.replace(csrf_of(response.text), "TOKEN"))
    assert len(bodies) == 1  # one generic refusal: nothing tells which keys exist
    assert "Não foi possível entrar com essa chave." in bodies.pop()

    # a stale or forged sign-in form is refused the same way, even with a good key
    stale = browser()
    await stale.client.get("/console/entrar")
    forged = await stale.client.post("/console/entrar", data={"key": account.key, "csrf": "x"})
    assert forged.status_code == 401

    me = browser()
    signed = await me.sign_in(account.key)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/painel"
    cookie = next(
        h for h in signed.headers.get_list("set-cookie") if h.startswith("conversa_session=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/console"} <= flags
    assert "secure" not in flags  # plain HTTP here; a forged X-Forwarded-Proto is not trusted
    assert account.key not in cookie
    page = await me.client.get("/console/painel")
    assert page.headers["x-frame-options"] == "DENY"  # no clickjacking of the buttons
    assert page.headers["cache-control"] == "no-store"

    spoofed = browser()
    form = await spoofed.client.get("/console/entrar")
    over_https = await spoofed.client.post(
        "/console/entrar",
        data={"key": account.key, "csrf": csrf_of(form.text)},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert over_https.status_code == 303
    assert "secure" not in over_https.headers["set-cookie"].lower()


async def test_revoking_the_key_or_signing_out_ends_the_session(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303
    assert (await me.client.get("/console/conversas")).status_code == 200
    assert (await api.delete(f"/admin/clientes/{tenant.id}/api-keys/{account.key_id}")).is_success
    gone = await me.client.get("/console/conversas")
    assert gone.status_code == 303 and gone.headers["location"] == "/console/entrar"
    fragment = await me.client.get("/console/conversas/lista", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"] == "/console/entrar"

    other = await make_account(tenant.id)
    again = browser()
    assert (await again.sign_in(other.key)).status_code == 303
    out = await again.post("/console/sair")
    assert out.status_code == 303
    assert (await again.client.get("/console/painel")).status_code == 303


async def test_every_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    conversation_id = await _conversation(tenant, "oi")
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303

    attempts = [
        ("/console/configuracoes", {"system_prompt": "Você é um pirata."}),
        (f"/console/conversas/{conversation_id}/pausar", {}),
        (f"/console/conversas/{conversation_id}/enviar", {"text": "oi"}),
        ("/console/conhecimento/apagar-tudo", {}),
        ("/console/whatsapp", {}),
        ("/console/sair", {}),
    ]
    for path, data in attempts:
        for token in (None, "wrong", me.csrf + "x"):
            form = data if token is None else {**data, "csrf": token}
            refused = await me.client.post(path, data=form)
            assert refused.status_code == 403, (path, token, refused.text)
            as_htmx = await me.client.post(
                path, data=data, headers={"HX-Request": "true", "X-CSRF-Token": token or ""}
            )
            assert as_htmx.status_code == 403
    me_now = await account.me()
    assert me_now["system_prompt"] is None
    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_until"] is None
    assert (await account.client.get("/v1/instances")).json() == [
        i for i in (await account.client.get("/v1/instances")).json() if not i["provisioned"]
    ]
    # still signed in (sign-out was refused too), and the same posts with the token work
    paused = await me.client.post(
        f"/console/conversas/{conversation_id}/pausar",
        headers={"HX-Request": "true", "X-CSRF-Token": me.csrf},
    )
    assert paused.status_code == 200 and 'data-state="paused_by_operator"' in paused.text
    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_until"].startswith("9999")  # until resumed
    resumed = await me.client.post(
        f"/console/conversas/{conversation_id}/retomar",
        headers={"HX-Request": "true", "X-CSRF-Token": me.csrf},
    )
    assert 'data-state="bot"' in resumed.text
    for_a_while = await me.client.post(
        f"/console/conversas/{conversation_id}/pausar",
        data={"duration_s": "1800"},
        headers={"HX-Request": "true", "X-CSRF-Token": me.csrf},
    )
    assert 'data-state="paused_by_operator"' in for_a_while.text
    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    until = datetime.fromisoformat(conversation["paused_until"])
    assert timedelta(minutes=29) < until - datetime.now(UTC) <= timedelta(minutes=30)


async def test_portuguese_by_default_english_on_request_and_remembered(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser
) -> None:
    for lang in LANGS:
        assert set(MESSAGES[lang]) <= set(MESSAGES["pt-BR"]), f"{lang} has keys pt-BR lacks"
    assert set(MESSAGES["en"]) == set(MESSAGES["pt-BR"]) - {"app.title"}

    anonymous = browser()
    assert "Entrar no Conversa" in (await anonymous.client.get("/console/entrar")).text
    english = await anonymous.client.get("/console/entrar", params={"lang": "en"})
    assert "Sign in to Conversa" in english.text and '<html lang="en">' in english.text

    me = browser()
    assert (await me.sign_in((await make_account((await make_tenant()).id)).key)).status_code == 303
    page = await me.client.get("/console/conversas")
    assert "Conversas" in page.text and "Nenhuma conversa ainda." in page.text
    assert "Conversations" not in page.text
    await me.client.get("/console/painel", params={"lang": "en"})
    remembered = await me.client.get("/console/conversas")
    assert "No conversations yet." in remembered.text and '<html lang="en">' in remembered.text
    back = await me.client.get("/console/conversas", params={"lang": "pt-BR"})
    assert "Nenhuma conversa ainda." in back.text


async def test_settings_errors_are_shown_beside_their_fields_and_nothing_is_saved(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser
) -> None:
    account = await make_account((await make_tenant()).id)
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303
    form = {
        "system_prompt": "Você é a atendente da Padaria Sol.",
        "debounce_s": "abc",
        "max_wait_s": "5",
        "human_pause_s": "-1",
        "timezone": "America/Sao_Paulo",
        "day_mon": "9h às 18h",
        "group_replies": "off",
    }
    refused = await me.post("/console/configuracoes", form)
    assert refused.status_code == 422
    html = refused.text
    for field in ("debounce_s", "human_pause_s", "business_hours"):
        assert f'id="error-{field}"' in html, field
    assert "mon: &#39;9h às 18h&#39; is not HH:MM-HH:MM" in html
    assert 'value="abc"' in html  # what was typed stays in the form
    assert "Informe um número." in html and "O valor mínimo é 0." in html  # in the page's language
    assert (await account.me())["system_prompt"] is None

    crossed = await me.post(
        "/console/configuracoes", {**form, "debounce_s": "9", "human_pause_s": "60", "day_mon": ""}
    )
    assert crossed.status_code == 422 and 'id="error-max_wait_s"' in crossed.text

    bad_zone = {**form, "debounce_s": "1", "human_pause_s": "60", "timezone": "Mars/Base"}
    bad_zone["day_mon"] = "09:00-18:00"
    zone = await me.post("/console/configuracoes", bad_zone)
    assert zone.status_code == 422 and 'id="error-business_hours"' in zone.text

    good = {**bad_zone, "timezone": "America/Sao_Paulo", "day_sat": "09:00-13:00"}
    saved = await me.post("/console/configuracoes", good)
    assert saved.status_code == 200 and 'id="saved"' in saved.text
    now = await account.me()
    assert now["system_prompt"] == "Você é a atendente da Padaria Sol."
    assert now["debounce_s"] == 1 and now["max_wait_s"] == 5 and now["human_pause_s"] == 60
    assert now["business_hours"] == {
        "timezone": "America/Sao_Paulo",
        "weekly": {"mon": [["09:00", "18:00"]], "sat": [["09:00", "13:00"]]},
    }
    page = await me.client.get("/console/configuracoes")
    assert 'value="09:00-13:00"' in page.text


async def test_another_clientes_ids_give_404_and_none_of_its_data(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser
) -> None:
    victim = await make_tenant(documents=("O cofre da Loja Vítima abre com a senha 4242.",))
    victim_account = await make_account(victim.id)
    conversation_id = await _conversation(victim, "segredo do cliente vítima")
    document_id = (await victim_account.client.get("/v1/documents")).json()[0]["id"]
    instance_id = (await victim_account.client.get("/v1/instances")).json()[0]["id"]

    intruder = browser()
    assert (
        await intruder.sign_in((await make_account((await make_tenant()).id)).key)
    ).status_code == 303
    gets = [
        f"/console/conversas/{conversation_id}",
        f"/console/conversas/{conversation_id}/historico",
        f"/console/whatsapp/{instance_id}/qr.png",
    ]
    posts = [
        (f"/console/conversas/{conversation_id}/pausar", {}),
        (f"/console/conversas/{conversation_id}/retomar", {}),
        (f"/console/conversas/{conversation_id}/enviar", {"text": "oi"}),
        (f"/console/conhecimento/documentos/{document_id}/apagar", {}),
        (f"/console/whatsapp/{instance_id}/reconectar", {}),
        (f"/console/whatsapp/{instance_id}/desconectar", {}),
    ]
    responses = [await intruder.client.get(path) for path in gets]
    responses += [await intruder.post(path, data) for path, data in posts]
    for response in responses:
        assert response.status_code == 404, response.request.url
        assert "segredo" not in response.text and "4242" not in response.text
    for page in ("/console/conversas", "/console/conhecimento", "/console/whatsapp"):
        html = (await intruder.client.get(page)).text
        assert "segredo" not in html and "Vítima" not in html and victim.instance not in html
    asked = await intruder.post("/console/conhecimento/perguntar", {"question": "senha do cofre"})
    assert asked.status_code == 200 and "4242" not in asked.text
    # the victim's things are all still there
    assert len((await victim_account.client.get("/v1/documents")).json()) == 1
    conversation = (await victim_account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_until"] is None


async def test_an_operator_sees_every_cliente_and_switches_between_them(
    make_tenant: MakeTenant, browser: NewBrowser, api: httpx.AsyncClient
) -> None:
    first, second = await make_tenant(), await make_tenant()
    names = {
        c: (await api.get(f"/admin/clientes/{c}")).json()["nome"] for c in (first.id, second.id)
    }
    operator = browser()
    assert (await operator.sign_in(ADMIN)).status_code == 303
    page = (await operator.client.get("/console/painel")).text
    assert 'id="cliente-switch"' in page
    assert names[first.id] in page and names[second.id] in page
    switched = await operator.post("/console/cliente", {"cliente_id": str(second.id)})
    assert switched.status_code == 303
    operator.csrf = csrf_of((await operator.client.get("/console/painel")).text)
    settings = (await operator.client.get("/console/configuracoes")).text
    assert f'<option value="{second.id}" selected>' in settings
    missing = await operator.post("/console/cliente", {"cliente_id": "2147483000"})
    assert missing.status_code == 404


async def test_the_chat_list_and_a_chat_show_messages_states_and_the_passages_used(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser
) -> None:
    tenant = await make_tenant(documents=("A margherita custa R$ 42.",))
    account = await make_account(tenant.id)
    conversation_id = await _conversation(tenant, "quanto custa a margherita?")

    async def answered() -> bool:
        messages = await account.client.get(f"/v1/conversations/{conversation_id}/messages")
        return any(m["author"] == "bot" for m in messages.json()["items"])

    await eventually(answered)
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303
    listed = await me.client.get("/console/conversas/lista", headers={"HX-Request": "true"})
    assert listed.status_code == 200, listed.text
    assert f'data-id="{conversation_id}" data-state="bot"' in listed.text
    chat = await me.client.get(f"/console/conversas/{conversation_id}")
    assert chat.status_code == 200, chat.text
    assert "quanto custa a margherita?" in chat.text
    assert 'class="msg bot"' in chat.text and "A margherita custa R$ 42." in chat.text


async def test_the_dashboard_shows_billing_and_sends_the_business_to_stripe_checkout(
    make_tenant: MakeTenant, make_account: MakeAccount, browser: NewBrowser, fake_stripe: Any
) -> None:
    account = await make_account((await make_tenant(status=None)).id)  # PENDENTE: not paying
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303
    page = await me.client.get("/console/painel")
    assert page.status_code == 200
    assert 'id="billing-status">PENDENTE<' in page.text and 'id="checkout"' in page.text
    assert page.text.count("<rect ") == 4 * 30  # four charts, one bar per day
    going = await me.post("/console/painel/assinar")
    assert going.status_code == 303
    session_id = going.headers["location"].rsplit("/", 1)[-1]
    session = fake_stripe.checkout_sessions[session_id]
    assert session["client_reference_id"] == str(account.cliente_id)
    assert session["success_url"].endswith("/console/painel")


async def test_a_chat_whose_reply_was_given_up_shows_failed_sends_and_a_human_send_error(
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    browser: NewBrowser,
    evolution_faults: Any,
) -> None:
    tenant = await make_tenant()
    account = await make_account(tenant.id)
    chat = wa.new_chat()
    evolution_faults.fail("sendText", status=401, number=chat)  # say, a revoked instance key
    conversation_id = await _conversation(tenant, "oi, alguém aí?", chat)

    async def dead() -> bool:
        page = await account.client.get(f"/v1/conversations/{conversation_id}/messages")
        return any(m["status"] == "FALHOU" for m in page.json()["items"])

    await eventually(dead, timeout_s=30)
    me = browser()
    assert (await me.sign_in(account.key)).status_code == 303
    listed = await me.client.get("/console/conversas/lista", headers={"HX-Request": "true"})
    assert f'data-id="{conversation_id}" data-state="failed_sends"' in listed.text
    assert "Envios falharam" in listed.text
    # a person's send refused by Evolution: said beside the chat, nothing recorded or paused
    refused = await me.client.post(
        f"/console/conversas/{conversation_id}/enviar",
        data={"text": "Olá!"},
        headers={"HX-Request": "true", "X-CSRF-Token": me.csrf},
    )
    assert refused.status_code == 409 and "Evolution refused" in refused.text
    assert 'data-status="409"' in refused.text and "<html" not in refused.text
    messages = (await account.client.get(f"/v1/conversations/{conversation_id}/messages")).json()
    assert all(m["author"] != "human" for m in messages["items"])
    conversation = (await account.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["paused_until"] is None
