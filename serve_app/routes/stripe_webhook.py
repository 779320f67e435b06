"""`POST /webhooks/stripe`: Stripe's signed events (subscriptions, invoices, checkout)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serve_app.deps import Ctx

router = APIRouter(tags=["webhooks"])


class StripeAck(BaseModel):
    received: bool = True
    outcome: str = Field(
        description="applied | duplicate | ignored | unknown_cliente | customer_mismatch"
    )


@router.post(
    "/webhooks/stripe",
    response_model=StripeAck,
    responses={400: {"description": "missing, wrong or stale Stripe-Signature: nothing written"}},
)
async def stripe_webhook(request: Request, ctx: Ctx) -> StripeAck:
    """Verified on the raw body with STRIPE_WEBHOOK_SECRET, deduplicated on the event id; the
    state applied is re-read from Stripe's API, so late or reordered events cannot regress it."""
    outcome = await ctx.billing.handle_event(
        await request.body(), request.headers.get("stripe-signature")
    )
    ctx.announce(outcome.change)
    return StripeAck(outcome=outcome.outcome)
