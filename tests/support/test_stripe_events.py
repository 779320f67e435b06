"""Events signed by `stripe_events` verify with the installed `stripe.Webhook.construct_event`
exactly as Stripe's own do, and fail it the way a forged, stale or unsigned post does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import stripe

from tests.support.fake_stripe import FakeStripe
from tests.support.receiver import Receiver
from tests.support.stripe_events import build_event, sign_event, signature_header

SECRET = "whsec_test_secret_for_signatures"


def _subscription_event() -> dict[str, object]:
    fake = FakeStripe()  # not started: only its object shapes are needed
    customer = fake.create_customer()
    sub = fake.create_subscription(customer["id"], metadata={"cliente_id": "9"})
    return fake.set_subscription(sub["id"], status="past_due")


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[FakeStripe]:
    """A fake that went through checkout, a failed renewal and a cancellation."""
    fake = FakeStripe().start()
    params = {"mode": "subscription", "line_items": [{"price": "price_conversa_mensal"}]}
    session = fake.client().v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    fake.complete_checkout(session.id)
    sub_id = next(iter(fake.subscriptions))
    fake.fail_invoice(sub_id)
    fake.set_subscription(sub_id, status="canceled")
    yield fake
    fake.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_a_signed_event_is_accepted_and_parsed() -> None:
    signed = sign_event(_subscription_event(), SECRET)
    event = stripe.Webhook.construct_event(signed.payload, signed.signature, SECRET)
    assert isinstance(event, stripe.Event)
    assert event.id.startswith("evt_") and event.type == "customer.subscription.updated"
    assert event.livemode is False and event.api_version == stripe.api_version
    sub = event.data.object
    assert isinstance(sub, stripe.Subscription)  # typed from its "object" field
    assert (sub.status, sub.metadata["cliente_id"]) == ("past_due", "9")
    assert event.data.previous_attributes["status"] == "active"  # type: ignore[index]


@pytest.mark.parametrize(
    "event_type",
    [
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    ],
)
def test_every_lifecycle_event_the_fake_makes_verifies(
    lifecycle: FakeStripe, event_type: str
) -> None:
    fake = lifecycle
    [event] = [e for e in fake.events if e["type"] == event_type][:1]
    signed = fake.sign(event)
    parsed = stripe.Webhook.construct_event(signed.payload, signed.signature, fake.webhook_secret)
    assert parsed.type == event_type
    assert parsed.data.object.id == event["data"]["object"]["id"]


def test_the_header_is_stripes_scheme_byte_for_byte() -> None:
    payload = '{"id": "evt_1", "object": "event"}'
    header = signature_header(payload, SECRET, timestamp=1700000000)
    assert header.startswith("t=1700000000,v1=")
    library = stripe.WebhookSignature.generate_signature_header(payload, SECRET, 1700000000)
    assert header == library


def test_a_wrong_secret_is_refused() -> None:
    signed = sign_event(_subscription_event(), "whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(signed.payload, signed.signature, SECRET)


def test_a_reserialized_body_no_longer_matches_its_signature() -> None:
    signed = sign_event(_subscription_event(), SECRET)
    compact = json.dumps(json.loads(signed.payload), separators=(",", ":"))
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(compact, signed.signature, SECRET)


def test_stale_timestamps_are_refused_after_the_300_s_default_tolerance() -> None:
    assert stripe.Webhook.DEFAULT_TOLERANCE == 300
    event = _subscription_event()
    now = int(time.time())
    fresh = sign_event(event, SECRET, timestamp=now - 290)
    stripe.Webhook.construct_event(fresh.payload, fresh.signature, SECRET)
    stale = sign_event(event, SECRET, timestamp=now - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="Timestamp outside the tolerance"):
        stripe.Webhook.construct_event(stale.payload, stale.signature, SECRET)
    # Only old timestamps are checked: one from the future passes, and tolerance=0 turns the
    # check off altogether (a receiver must not pass 0 thinking it means "strict").
    future = sign_event(event, SECRET, timestamp=now + 3600)
    stripe.Webhook.construct_event(future.payload, future.signature, SECRET)
    stripe.Webhook.construct_event(stale.payload, stale.signature, SECRET, tolerance=0)


def test_a_bad_signature_is_reported_before_a_stale_timestamp() -> None:
    stale_and_forged = sign_event(_subscription_event(), "whsec_other", timestamp=1)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(stale_and_forged.payload, stale_and_forged.signature, SECRET)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "No Stripe-Signature header value was provided"),
        ("", "No Stripe-Signature header value was provided"),
        ("garbage", "Unable to extract timestamp and signatures from header"),
        ("t=notanumber,v1=abc", "Unable to extract timestamp and signatures from header"),
        (f"t={int(time.time())}", "No signatures found with expected scheme v1"),
        (f"t={int(time.time())},v0=abc", "No signatures found with expected scheme v1"),
    ],
)
def test_missing_or_malformed_headers_are_refused(header: str | None, message: str) -> None:
    signed = sign_event(_subscription_event(), SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match=message) as caught:
        stripe.Webhook.construct_event(signed.payload, header, SECRET)
    assert isinstance(caught.value, stripe.StripeError)  # the library's error root
    assert caught.value.http_status is None


def test_any_of_several_v1_signatures_may_match() -> None:
    # During a secret roll Stripe sends one v1 per active secret.
    signed = sign_event(_subscription_event(), SECRET)
    t, good = signed.signature.split(",")
    header = f"{t},v1={'0' * 64},{good}"
    stripe.Webhook.construct_event(signed.payload, header, SECRET)


def test_a_signed_body_that_is_not_json_raises_value_error_not_a_signature_error() -> None:
    payload = "not json at all"
    header = signature_header(payload, SECRET)
    with pytest.raises(ValueError) as caught:
        stripe.Webhook.construct_event(payload, header, SECRET)
    assert not isinstance(caught.value, stripe.SignatureVerificationError)


def test_unknown_event_types_and_mismatched_objects_are_refused_by_the_builder() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        build_event("customer.subscription.upgraded", {"object": "subscription"})
    with pytest.raises(ValueError, match="carries a invoice"):
        build_event("invoice.paid", {"object": "subscription"})


async def test_deliver_posts_the_exact_signed_bytes_with_stripes_headers(
    receiver: Receiver,
) -> None:
    fake = FakeStripe()
    event = _subscription_event()
    signed = fake.sign(event)
    response = await fake.deliver(f"{receiver.url}/webhooks/stripe", signed)
    assert response.status_code == 200
    [post] = receiver.posts("/webhooks/stripe")
    assert post.body == signed.payload
    assert post.headers["user-agent"].startswith("Stripe/1.0")
    assert post.headers["content-type"] == "application/json; charset=utf-8"
    parsed = stripe.Webhook.construct_event(
        post.body, post.headers["stripe-signature"], fake.webhook_secret
    )
    assert parsed.id == event["id"]
    await fake.deliver(f"{receiver.url}/webhooks/stripe", event, signature="")
    assert "stripe-signature" not in receiver.posts()[-1].headers
    await fake.deliver(f"{receiver.url}/webhooks/stripe", event, timestamp=1)
    stale = receiver.posts()[-1]
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(
            stale.body, stale.headers["stripe-signature"], fake.webhook_secret
        )
