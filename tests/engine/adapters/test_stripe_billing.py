"""The Stripe adapter against the test-run Stripe API: event verification and subscriptions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from engine.adapters.stripe_billing import StripeBilling, verify_event
from engine.errors import InvalidSignature, UpstreamUnavailable
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import build_event, sign_event, signature_header

SECRET = "whsec_adapter_test_0123456789"


def _event() -> dict[str, object]:
    return build_event("customer.created", {"id": "cus_1", "object": "customer"})


def test_an_event_signed_by_stripe_is_read() -> None:
    signed = sign_event(_event(), SECRET)
    event = verify_event(signed.payload, signed.signature, secret=SECRET, tolerance_s=300)
    assert (event.id, event.type, event.object["id"]) == (signed.id, "customer.created", "cus_1")


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        (None, "No Stripe-Signature"),
        ("", "No Stripe-Signature"),
        ("t=1,v1=abc", "No signatures found matching"),
        ("nonsense", "Unable to extract"),
    ],
)
def test_missing_or_wrong_signatures_are_refused(signature: str | None, why: str) -> None:
    signed = sign_event(_event(), SECRET)
    with pytest.raises(InvalidSignature, match=why):
        verify_event(signed.payload, signature, secret=SECRET, tolerance_s=300)


def test_a_stale_or_foreign_signature_is_refused() -> None:
    stale = sign_event(_event(), SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_event(stale.payload, stale.signature, secret=SECRET, tolerance_s=300)
    foreign = sign_event(_event(), "whsec_other")
    with pytest.raises(InvalidSignature):
        verify_event(foreign.payload, foreign.signature, secret=SECRET, tolerance_s=300)


def test_a_signed_body_that_is_not_an_event_is_refused() -> None:
    payload = b'{"hello": "world"}'
    with pytest.raises(InvalidSignature, match="not a Stripe event"):
        verify_event(payload, signature_header(payload, SECRET), secret=SECRET, tolerance_s=300)


async def test_subscriptions_are_read_from_stripe_and_failures_translated(
    fake_stripe: FakeStripe,
) -> None:
    billing = StripeBilling(api_key=fake_stripe.api_key, api_base=fake_stripe.url)
    created_at = datetime.now(UTC)
    customer = await billing.create_customer(cliente_id=41, name="Loja", created_at=created_at)
    assert fake_stripe.customers[customer]["metadata"] == {"cliente_id": "41"}
    again = await billing.create_customer(cliente_id=41, name="Loja", created_at=created_at)
    assert again == customer  # a retry is the same customer
    # another cliente 41 (a reset database, another deployment): another customer, no refusal
    other = await billing.create_customer(cliente_id=41, name="Outra", created_at=datetime.now(UTC))
    assert other != customer
    old = fake_stripe.create_subscription(customer, status="canceled")
    new = fake_stripe.create_subscription(customer, status="past_due")
    found = {s.id: s.status for s in await billing.subscriptions_of(customer)}
    assert found == {old["id"]: "canceled", new["id"]: "past_due"}

    fake_stripe.fail_status = 500
    try:
        with pytest.raises(UpstreamUnavailable, match="500"):
            await billing.subscriptions_of(customer)
    finally:
        fake_stripe.fail_status = None
