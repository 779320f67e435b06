"""Stripe drives who is served: signed events against the test-run Stripe API, on the whole stack.

The fake plays Stripe's side (`complete_checkout`, `fail_invoice`, `pay_invoice`,
`set_subscription` return the events Stripe would send); the test delivers them signed with
Stripe's real scheme to `POST /webhooks/stripe`, and watches a customer's WhatsApp message get
answered, or not.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import pytest
import ray

from engine.config import Settings
from engine.core.naming import session_id
from tests.conftest import BILLING_GRACE_S
from tests.support import evolution_payloads as wa
from tests.support.accounts import Account, MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_stripe import FakeStripe
from tests.support.postgres import asyncpg_dsn
from tests.support.stripe_events import SignedEvent
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOC = "A Loja Paga abre de segunda a sábado, das 9h às 18h."


class Shop:
    """A business that pays through Stripe: its WhatsApp instance, its key, its events."""

    def __init__(self, tenant: TenantHandle, account: Account, stripe: FakeStripe, url: str):
        self.tenant, self.account, self.stripe = tenant, account, stripe
        self.webhook = f"{url}/webhooks/stripe"
        self.delivered: list[SignedEvent] = []
        self.subscription_id = ""

    async def checkout(self) -> list[dict[str, Any]]:
        """The business opens the Checkout link and pays: the events Stripe then sends."""
        response = await self.account.client.post("/v1/billing/checkout", json={})
        assert response.status_code == 200, response.text
        session_id = response.json()["url"].rsplit("/", 1)[-1]
        events = self.stripe.complete_checkout(session_id)
        self.subscription_id = self.stripe.checkout_sessions[session_id]["subscription"]
        return events

    async def deliver(self, events: list[dict[str, Any]]) -> list[str]:
        outcomes = []
        for event in events:
            signed = self.stripe.sign(event)
            response = await self.stripe.deliver(self.webhook, signed)
            assert response.status_code == 200, response.text
            self.delivered.append(signed)
            outcomes.append(response.json()["outcome"])
        return outcomes

    async def billing(self) -> dict[str, Any]:
        response = await self.account.client.get("/v1/billing")
        response.raise_for_status()
        return response.json()


@pytest.fixture
async def open_shop(
    make_tenant: MakeTenant, make_account: MakeAccount, fake_stripe: FakeStripe, conversa: Any
) -> Any:
    async def make(**fields: Any) -> Shop:
        tenant = await make_tenant(status=None, debounce_s=0.3, max_wait_s=1.0, **fields)
        return Shop(tenant, await make_account(tenant.id), fake_stripe, conversa.base_url)

    return make


async def _say(shop: Shop, chat: str, text: str) -> dict[str, Any]:
    response = await shop.tenant.post(wa.text(shop.tenant.instance, chat, text))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _answered(shop: Shop, fake_evolution: FakeEvolution, text: str) -> None:
    chat = wa.new_chat()
    assert (await _say(shop, chat, text))["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, chat), timeout_s=60)


async def _not_answered(
    shop: Shop, fake_evolution: FakeEvolution, text: str, *, reason: str
) -> None:
    chat = wa.new_chat()
    assert await _say(shop, chat, text) == {"status": "recorded", "detail": reason}
    await asyncio.sleep(1.5)
    assert fake_evolution.sent_to(chat) == []


async def _sent(fake_evolution: FakeEvolution, chat: str) -> list[Any]:
    return fake_evolution.sent_to(chat)


async def test_signed_events_drive_a_cliente_from_pendente_through_grace_and_back(
    open_shop: Any, fake_evolution: FakeEvolution, fake_stripe: FakeStripe, database_url: str
) -> None:
    shop = await open_shop(documents=(DOC,))
    assert await shop.account.status() == "PENDENTE"  # a new business is not served yet
    await _not_answered(shop, fake_evolution, "Vocês abrem sábado?", reason="cliente_pendente")

    assert await shop.deliver(await shop.checkout()) == ["applied", "applied", "applied"]
    assert await shop.account.status() == "ATIVO"
    await _answered(shop, fake_evolution, "Vocês abrem sábado?")

    await shop.deliver(fake_stripe.fail_invoice(shop.subscription_id))  # the card was refused
    billing = await shop.billing()
    assert (billing["status"], billing["subscription_status"]) == ("ATIVO", "past_due")
    assert billing["served"] and billing["grace_ends_at"] is not None
    await _answered(shop, fake_evolution, "E domingo?")  # still served during the grace period

    async def grace_over() -> bool:
        return await shop.account.status() == "INADIMPLENTE"

    # No event arrives: the supervisor's clock ends the grace period.
    await eventually(grace_over, timeout_s=BILLING_GRACE_S + 20)
    assert not (await shop.billing())["served"]
    await _not_answered(shop, fake_evolution, "Alô?", reason="cliente_inadimplente")

    await shop.deliver(fake_stripe.pay_invoice(shop.subscription_id))  # paid again
    assert await shop.account.status() == "ATIVO"
    assert (await shop.billing())["past_due_since"] is None
    await _answered(shop, fake_evolution, "Vocês abrem sábado?")

    stripe_keys = await _stripe_keys(database_url)
    for signed in shop.delivered:  # Stripe retries: the same bytes again
        response = await fake_stripe.deliver(shop.webhook, signed)
        assert (response.status_code, response.json()["outcome"]) == (200, "duplicate")
    assert await _stripe_keys(database_url) == stripe_keys
    assert await shop.account.status() == "ATIVO"


async def test_events_delivered_in_reverse_order_end_in_the_same_state_as_in_order(
    open_shop: Any, fake_stripe: FakeStripe
) -> None:
    in_order, reversed_ = await open_shop(), await open_shop()
    histories = []
    for shop in (in_order, reversed_):
        events = await shop.checkout()
        events += fake_stripe.fail_invoice(shop.subscription_id)
        events += fake_stripe.pay_invoice(shop.subscription_id)
        events += fake_stripe.fail_invoice(shop.subscription_id)
        events.append(fake_stripe.set_subscription(shop.subscription_id, status="unpaid"))
        histories.append(events)

    await in_order.deliver(histories[0])
    await reversed_.deliver(list(reversed(histories[1])))  # the oldest (checkout) arrives last

    for shop in (in_order, reversed_):
        billing = await shop.billing()
        assert (billing["status"], billing["subscription_status"]) == ("INADIMPLENTE", "unpaid")
        assert not billing["served"]
    # and replaying everything in order once more changes nothing
    await reversed_.deliver(histories[1])
    assert (await reversed_.billing())["subscription_status"] == "unpaid"


async def test_bad_and_stale_signatures_are_refused_and_write_nothing(
    open_shop: Any, fake_stripe: FakeStripe, database_url: str
) -> None:
    shop = await open_shop()
    events = await shop.checkout()
    completed = events[-1]
    assert completed["type"] == "checkout.session.completed"
    before = await _stripe_keys(database_url)

    signed = fake_stripe.sign(completed)
    stale = fake_stripe.sign(completed, timestamp=int(time.time()) - 301)
    other = fake_stripe.sign(completed, secret="whsec_someone_else_0123456789")
    tampered = SignedEvent(
        signed.event, signed.payload.replace(b'"complete"', b'"open"'), signed.signature
    )
    attempts: list[tuple[SignedEvent, str | None]] = [
        (other, None),
        (stale, None),
        (tampered, None),
        (signed, ""),  # no Stripe-Signature header
        (signed, "t=abc,v1=00"),  # garbage
    ]
    for event, signature in attempts:
        response = await fake_stripe.deliver(shop.webhook, event, signature=signature)
        assert response.status_code == 400, response.text
        assert "Stripe-Signature" in response.json()["detail"]
    assert await _stripe_keys(database_url) == before
    assert await shop.account.status() == "PENDENTE"

    for event in events:  # the genuine deliveries are applied
        assert (await fake_stripe.deliver(shop.webhook, event)).status_code == 200
    assert await shop.account.status() == "ATIVO"


async def test_a_deactivation_silences_a_live_conversation_within_seconds_and_a_new_subscription_revives_it(  # noqa: E501
    open_shop: Any, fake_evolution: FakeEvolution, fake_stripe: FakeStripe, settings: Settings
) -> None:
    shop = await open_shop(documents=(DOC,))
    await shop.deliver(await shop.checkout())
    # Long enough that, left alone, the burst would be turned (and the actor reaped) much later.
    await shop.account.client.patch("/v1/me", json={"debounce_s": 10, "max_wait_s": 20})

    chat = wa.new_chat()
    assert (await _say(shop, chat, "Vocês abrem sábado?"))["status"] == "accepted"
    name = session_id(shop.tenant.id, chat)
    await eventually(lambda: _alive(name, settings), timeout_s=30)  # a burst is pending in it

    started = time.monotonic()
    await shop.deliver([fake_stripe.set_subscription(shop.subscription_id, status="canceled")])
    assert await shop.account.status() == "CANCELADO"
    await eventually(lambda: _gone(name, settings), timeout_s=15)
    silenced_s = time.monotonic() - started
    print(f"cancellation event → actor gone: {silenced_s:.2f} s")  # shown with -s

    async def recorded_unanswered() -> bool:
        [message] = await shop.tenant.messages(chat)
        return message["status"] == "IGNORADA" and message["ignored_reason"] == "cliente_cancelado"

    await eventually(recorded_unanswered, timeout_s=15)
    assert silenced_s < 8  # told to stop, not reaped after its debounce (10 s) ran out
    await asyncio.sleep(10)  # past the debounce the burst had: still nothing sent
    assert fake_evolution.sent_to(chat) == []

    await shop.deliver(await shop.checkout())  # subscribes again: a new subscription
    assert await shop.account.status() == "ATIVO"
    assert (await _say(shop, chat, "E agora, abrem sábado?"))["status"] == "accepted"
    await eventually(lambda: _sent(fake_evolution, chat), timeout_s=60)


async def test_an_operators_suspension_silences_live_chats_and_stripe_never_lifts_it(
    open_shop: Any,
    fake_evolution: FakeEvolution,
    fake_stripe: FakeStripe,
    api: httpx.AsyncClient,
    settings: Settings,
) -> None:
    shop = await open_shop(documents=(DOC,))
    await shop.deliver(await shop.checkout())
    await api.patch(f"/admin/clientes/{shop.tenant.id}", json={"debounce_s": 10, "max_wait_s": 20})
    chat = wa.new_chat()
    assert (await _say(shop, chat, "Oi?"))["status"] == "accepted"
    name = session_id(shop.tenant.id, chat)
    await eventually(lambda: _alive(name, settings), timeout_s=30)

    started = time.monotonic()
    response = await api.patch(f"/admin/clientes/{shop.tenant.id}", json={"status": "SUSPENSO"})
    assert response.json()["status"] == "SUSPENSO"
    await eventually(lambda: _gone(name, settings), timeout_s=15)
    assert time.monotonic() - started < 8  # told to stop, not left to its 10 s debounce

    await shop.deliver(fake_stripe.pay_invoice(shop.subscription_id))
    assert await shop.account.status() == "SUSPENSO"
    await asyncio.sleep(10)
    assert fake_evolution.sent_to(chat) == []
    [message] = await shop.tenant.messages(chat)
    assert message["ignored_reason"] == "cliente_suspenso"


async def test_checkout_and_portal_links_come_from_stripe_for_the_keys_own_cliente(
    open_shop: Any, fake_stripe: FakeStripe
) -> None:
    shop = await open_shop()
    response = await shop.account.client.post("/v1/billing/portal", json={})
    assert response.status_code == 409  # no customer before the first checkout
    assert response.json()["error"]["code"] == "conflict"

    await shop.checkout()
    [created] = [
        r
        for r in fake_stripe.requests_to("POST", "/v1/checkout/sessions")
        if r.params.get("client_reference_id") == str(shop.tenant.id)
    ]
    assert created.params["mode"] == "subscription"
    assert created.params["line_items"] == [{"price": "price_conversa_mensal", "quantity": "1"}]
    assert created.params["subscription_data"]["metadata"] == {"cliente_id": str(shop.tenant.id)}
    customer = created.params["customer"]
    assert fake_stripe.customers[customer]["metadata"] == {"cliente_id": str(shop.tenant.id)}

    response = await shop.account.client.post(
        "/v1/billing/portal", json={"return_url": "https://loja.example.com/conta"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith("https://billing.stripe.com/")
    [portal] = [
        r
        for r in fake_stripe.requests_to("POST", "/v1/billing_portal/sessions")
        if r.params["customer"] == customer
    ]
    assert portal.params["return_url"] == "https://loja.example.com/conta"


async def _alive(name: str, settings: Settings) -> bool:
    try:
        ray.get_actor(name, namespace=settings.ray_namespace)
    except ValueError:
        return False
    return True


async def _gone(name: str, settings: Settings) -> bool:
    return not await _alive(name, settings)


async def _stripe_keys(database_url: str) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT key FROM processed_webhooks WHERE source = 'stripe' ORDER BY key"
        )
    finally:
        await connection.close()
    return [r["key"] for r in rows]
