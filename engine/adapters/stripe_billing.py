"""Stripe, through the `stripe` library: verifying webhook events, reading subscriptions, and
making Checkout and Customer Portal sessions.

The library's errors are translated here: a bad signature is `InvalidSignature` (the webhook
answers 400 and writes nothing); Stripe unreachable or failing is `UpstreamUnavailable` (the
webhook answers 5xx, so Stripe delivers the event again later).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import stripe

from engine.core.billing import CLIENTE_METADATA_KEY, StripeEvent, Subscription
from engine.errors import InvalidSignature, UpstreamUnavailable

TIMEOUT_S = 20.0
# The library retries connection errors and 5xx with the same idempotency key.
NETWORK_RETRIES = 2


def verify_event(
    payload: bytes, signature: str | None, *, secret: str, tolerance_s: int
) -> StripeEvent:
    """The event in `payload` if `signature` (the `Stripe-Signature` header) is Stripe's for
    exactly these bytes and not older than `tolerance_s`; else InvalidSignature."""
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance_s)
        body = json.loads(payload)
    except stripe.SignatureVerificationError as e:
        raise InvalidSignature(f"Stripe-Signature refused: {e.user_message or e}") from e
    except ValueError as e:  # not UTF-8 or not JSON, though signed
        raise InvalidSignature(f"the signed body is not a JSON event: {e}") from e
    data = body.get("data") if isinstance(body, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not (
        isinstance(body.get("id"), str)
        and isinstance(body.get("type"), str)
        and isinstance(obj, dict)
    ):
        raise InvalidSignature("the signed body is not a Stripe event (id, type, data.object)")
    created = body.get("created")
    return StripeEvent(
        id=body["id"],
        type=body["type"],
        created=created if isinstance(created, int) else 0,
        object=obj,
    )


class StripeBilling:
    """Stripe's REST API with Conversa's secret key (asynchronous, over httpx)."""

    def __init__(self, *, api_key: str, api_base: str | None = None):
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else {},
            http_client=stripe.HTTPXClient(timeout=TIMEOUT_S),
            max_network_retries=NETWORK_RETRIES,
        )

    async def subscriptions_of(self, customer_id: str) -> list[Subscription]:
        """Every subscription of a customer, whatever its status (Stripe's current state)."""
        listed = await self._call(
            self._client.v1.subscriptions.list_async(
                params={"customer": customer_id, "status": "all", "limit": 100}
            )
        )
        return [
            Subscription(id=s.id, status=s.status, created=s.created, customer_id=_id(s.customer))
            for s in listed.data
        ]

    async def create_customer(self, *, cliente_id: int, name: str, created_at: datetime) -> str:
        """A Stripe customer for a cliente (idempotent per cliente for Stripe's 24 hours). The
        key names this cliente's row, not only its id: after a database reset, or beside another
        deployment on the same Stripe account, another "cliente 41" is another customer."""
        key = f"conversa-cliente-{cliente_id}-{created_at.timestamp():.6f}-customer"
        customer = await self._call(
            self._client.v1.customers.create_async(
                params={"name": name, "metadata": {CLIENTE_METADATA_KEY: str(cliente_id)}},
                options={"idempotency_key": key},
            )
        )
        return str(customer.id)

    async def checkout_url(
        self,
        *,
        cliente_id: int,
        customer_id: str,
        price_id: str,
        success_url: str,
        cancel_url: str,
    ) -> str:
        """A hosted Checkout page subscribing the customer to `price_id`. The cliente's id rides
        on the session and on the subscription it makes, so every later event names it."""
        reference = {CLIENTE_METADATA_KEY: str(cliente_id)}
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "line_items": [{"price": price_id, "quantity": 1}],
                    "client_reference_id": str(cliente_id),
                    "metadata": reference,
                    "subscription_data": {"metadata": reference},
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                }
            )
        )
        return str(session.url)

    async def portal_url(self, *, customer_id: str, return_url: str) -> str:
        """A Customer Portal page: card, invoices, cancellation."""
        session = await self._call(
            self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    @staticmethod
    async def _call(request: Any) -> Any:
        try:
            return await request
        except stripe.StripeError as e:
            status = getattr(e, "http_status", None)
            raise UpstreamUnavailable(
                f"Stripe answered {status or 'nothing'}: {e.user_message or e}"
            ) from e


def _id(value: Any) -> str:
    return str(value if isinstance(value, str) else getattr(value, "id", value))
