"""Stripe webhook events as Stripe builds and signs them, for tests of `POST /webhooks/stripe`.

An event is the JSON Stripe posts (`id` `evt_…`, `object: "event"`, `type`, `created`,
`data.object`, `api_version`, `livemode: false`). It is signed with Stripe's real scheme:
`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>` over the exact bytes
that are posted, so a receiver that re-serializes the JSON before verifying fails, as it would in
production. `stripe.Webhook.construct_event` accepts these (tests/support/test_stripe_events.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import httpx
import stripe

API_VERSION = stripe.api_version  # the installed library's pinned version, e.g. 2026-10-28.endive
STRIPE_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"

# The event types these helpers build, with the `object` their `data.object` must be.
EVENT_OBJECTS: dict[str, str] = {
    "checkout.session.completed": "checkout.session",
    "checkout.session.expired": "checkout.session",
    "customer.created": "customer",
    "customer.deleted": "customer",
    "customer.subscription.created": "subscription",
    "customer.subscription.updated": "subscription",
    "customer.subscription.deleted": "subscription",
    "customer.subscription.paused": "subscription",
    "customer.subscription.resumed": "subscription",
    "customer.subscription.trial_will_end": "subscription",
    "invoice.paid": "invoice",
    "invoice.payment_failed": "invoice",
    "invoice.payment_succeeded": "invoice",
}

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: `prefix_` and random letters and digits (`evt_1Q…`)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def build_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    previous_attributes: dict[str, Any] | None = None,
    api_version: str = API_VERSION,
) -> dict[str, Any]:
    """The event Stripe would post for `event_type` about `data_object` (a snapshot, as Stripe's
    "snapshot" events carry). `created` is whole seconds, as Stripe's: two events in the same
    second have the same `created`."""
    expected = EVENT_OBJECTS.get(event_type)
    if expected is None:
        raise ValueError(f"unknown event type {event_type!r}; known: {sorted(EVENT_OBJECTS)}")
    if data_object.get("object") != expected:
        raise ValueError(f"{event_type} carries a {expected}, not {data_object.get('object')!r}")
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signature_header(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`, as Stripe signs. Pass an old
    `timestamp` (over 300 s ago) for the stale-signature case, another `secret` for a bad one."""
    t = int(time.time()) if timestamp is None else timestamp
    body = payload.decode() if isinstance(payload, bytes) else payload
    signature = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


@dataclass(frozen=True)
class SignedEvent:
    """The exact bytes to post and the headers Stripe sends with them."""

    event: dict[str, Any]
    payload: bytes
    signature: str

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": STRIPE_USER_AGENT,
            "Stripe-Signature": self.signature,
        }


def sign_event(event: dict[str, Any], secret: str, *, timestamp: int | None = None) -> SignedEvent:
    """Serialize `event` as Stripe does (indented JSON) and sign those bytes."""
    payload = json.dumps(event, indent=2, ensure_ascii=False).encode()
    return SignedEvent(event, payload, signature_header(payload, secret, timestamp=timestamp))


async def deliver(
    url: str,
    event: dict[str, Any] | SignedEvent,
    secret: str,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    timeout_s: float = 30.0,
) -> httpx.Response:
    """POST an event to a webhook endpoint the way Stripe does. A `SignedEvent` is posted as it
    is (byte for byte, e.g. to replay it); `signature` replaces the header (`""` sends none)."""
    signed = (
        event if isinstance(event, SignedEvent) else sign_event(event, secret, timestamp=timestamp)
    )
    headers = signed.headers
    if signature is not None:
        headers.pop("Stripe-Signature")
        if signature:
            headers["Stripe-Signature"] = signature
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        return await client.post(url, content=signed.payload, headers=headers)
