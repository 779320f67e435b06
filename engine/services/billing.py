"""Billing flows: Stripe events in, Checkout and Portal links out, and the grace-period clock.

Ordering (Stripe delivers late, twice and out of order): every event is verified, deduplicated on
its id, and then used only to learn *which* cliente and customer changed; the state applied is
read again from Stripe's API (all the customer's subscriptions, `core.billing.
current_subscription`), with the cliente's row locked so two events for one cliente apply one
after the other. Replaying events, or delivering them in any order, ends in Stripe's current
state. A status change that stops a cliente being served is announced to its live
conversations (`announce`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters import metrics
from engine.adapters.stripe_billing import StripeBilling, verify_event
from engine.config import Settings
from engine.core import billing
from engine.core.statuses import ClienteStatus
from engine.db import billing as billing_db
from engine.db import inbox as inbox_db
from engine.db.session import create_engine, session_factory
from engine.errors import Conflict, NotConfigured, NotFound

log = logging.getLogger(__name__)

SILENCE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StatusChange:
    cliente_id: int
    before: ClienteStatus
    after: ClienteStatus

    @property
    def stops_serving(self) -> bool:
        return billing.is_served(self.before) and not billing.is_served(self.after)


@dataclass(frozen=True)
class EventOutcome:
    """What a Stripe event did (the webhook's answer)."""

    event_id: str
    outcome: str  # applied | duplicate | ignored | unknown_cliente | customer_mismatch
    cliente_id: int | None = None
    change: StatusChange | None = None


@dataclass(frozen=True)
class BillingStatus:
    """What a cliente (or an operator) sees of its billing."""

    status: ClienteStatus
    served: bool
    subscription_status: str | None
    past_due_since: datetime | None
    grace_ends_at: datetime | None
    trial_ends_at: datetime | None
    has_customer: bool


async def announce(change: StatusChange | None, supervisor: Any) -> None:
    """Tell the live conversations of a cliente that just stopped being served to stop."""
    if change is None or not change.stops_serving:
        return
    await supervisor.silence_cliente.remote(change.cliente_id)


class Billing:
    """The ingress's side of billing (one per process)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._sessions = sessions
        self._settings = settings
        self._stripe: StripeBilling | None = None
        if settings.stripe_api_key is not None:
            self._stripe = StripeBilling(
                api_key=settings.stripe_api_key.get_secret_value(),
                api_base=settings.stripe_api_base,
            )

    # --- Stripe events -------------------------------------------------------------------

    async def handle_event(self, payload: bytes, signature: str | None) -> EventOutcome:
        """Verify, deduplicate and apply one `POST /webhooks/stripe`. Nothing is written for a
        refused signature; an error reaching Stripe writes nothing either (Stripe retries)."""
        secret = self._settings.stripe_webhook_secret
        if secret is None:
            raise NotConfigured("Stripe events cannot be verified: set STRIPE_WEBHOOK_SECRET")
        event = verify_event(
            payload,
            signature,
            secret=secret.get_secret_value(),
            tolerance_s=self._settings.stripe_webhook_tolerance_s,
        )
        outcome = await self._record(event)
        # The type tag stays bounded: Stripe's types Conversa handles, anything else is `other`.
        kind = event.type if event.type in billing.HANDLED_EVENTS else "other"
        metrics.stripe_event(kind, outcome.outcome)
        log.info(
            "stripe event",
            extra={
                "cliente_id": outcome.cliente_id,
                "event_id": event.id,
                "event_type": event.type,
                "outcome": outcome.outcome,
                "status": outcome.change.after.value if outcome.change else None,
            },
        )
        return outcome

    async def _record(self, event: billing.StripeEvent) -> EventOutcome:
        """Apply a verified event once (deduplicated on its id, across replicas)."""
        async with self._sessions() as session:
            if await billing_db.event_seen(session, event.id):
                return EventOutcome(event.id, "duplicate")
            outcome = await self._apply(session, event)
            claimed = await inbox_db.claim_webhook_key(
                session, source=billing_db.STRIPE_SOURCE, key=event.id, outcome=outcome.outcome
            )
            if not claimed:  # the same event, applied by another replica meanwhile
                await session.rollback()
                return EventOutcome(event.id, "duplicate", outcome.cliente_id)
            await session.commit()
        return outcome

    async def _apply(self, session: AsyncSession, event: billing.StripeEvent) -> EventOutcome:
        if event.type not in billing.HANDLED_EVENTS:
            return EventOutcome(event.id, "ignored")
        refs = billing.event_refs(event.type, event.object)
        cliente_id = refs.cliente_id
        if cliente_id is None and refs.customer_id is not None:
            cliente_id = await billing_db.cliente_of_customer(session, refs.customer_id)
        row = (
            None
            if cliente_id is None
            else await billing_db.read_billing(session, cliente_id, lock=True)
        )
        if row is None:
            log.warning(
                "stripe event for no known cliente",
                extra={"event_id": event.id, "customer_id": refs.customer_id},
            )
            return EventOutcome(event.id, "unknown_cliente")
        customer_id = row.stripe_customer_id or refs.customer_id
        if refs.customer_id and customer_id != refs.customer_id:
            log.warning(
                "stripe event names another customer than the cliente's; not applied",
                extra={"cliente_id": row.cliente_id, "event_id": event.id},
            )
            return EventOutcome(event.id, "customer_mismatch", row.cliente_id)
        if customer_id is None:
            return EventOutcome(event.id, "ignored", row.cliente_id)
        subscriptions = await self._require_stripe().subscriptions_of(customer_id)
        change = await self._save(session, row, customer_id, subscriptions)
        return EventOutcome(event.id, "applied", row.cliente_id, change)

    async def _save(
        self,
        session: AsyncSession,
        row: billing_db.BillingRow,
        customer_id: str,
        subscriptions: list[billing.Subscription],
    ) -> StatusChange:
        now = datetime.now(UTC)
        current = billing.current_subscription(subscriptions)
        sub_status = current.status if current else row.subscription_status
        since = billing.past_due_since(sub_status, previous=row.past_due_since, now=now)
        facts = billing.BillingFacts(
            status=row.status,
            subscription_status=sub_status,
            past_due_since=since,
            trial_ends_at=row.trial_ends_at,
        )
        status = billing.decide_status(facts, now=now, grace_s=self._settings.billing_grace_s)
        await billing_db.save_billing(
            session,
            row.cliente_id,
            customer_id=customer_id,
            subscription_id=current.id if current else row.stripe_subscription_id,
            subscription_status=sub_status,
            past_due_since=since,
            status=status,
        )
        return StatusChange(row.cliente_id, row.status, status)

    # --- links for the business ----------------------------------------------------------

    async def checkout_url(
        self, cliente_id: int, *, success_url: str | None = None, cancel_url: str | None = None
    ) -> str:
        """A Stripe Checkout page that subscribes the cliente to STRIPE_PRICE_ID."""
        stripe = self._require_stripe()
        price_id = self._settings.stripe_price_id
        if not price_id:
            raise NotConfigured("Checkout needs a price: set STRIPE_PRICE_ID")
        customer_id = await self._customer_of(cliente_id, create=True)
        assert customer_id is not None
        back = self._return_url()
        return await stripe.checkout_url(
            cliente_id=cliente_id,
            customer_id=customer_id,
            price_id=price_id,
            success_url=success_url or f"{back}?checkout=success",
            cancel_url=cancel_url or f"{back}?checkout=cancel",
        )

    async def portal_url(self, cliente_id: int, *, return_url: str | None = None) -> str:
        """A Stripe Customer Portal page (card, invoices, cancellation) for a paying cliente."""
        stripe = self._require_stripe()
        customer_id = await self._customer_of(cliente_id, create=False)
        if customer_id is None:
            raise Conflict(
                f"cliente {cliente_id} has no Stripe customer yet: subscribe through checkout first"
            )
        return await stripe.portal_url(
            customer_id=customer_id, return_url=return_url or self._return_url()
        )

    async def status(self, cliente_id: int) -> BillingStatus:
        async with self._sessions() as session:
            row = await billing_db.read_billing(session, cliente_id)
        if row is None:
            raise NotFound(f"cliente {cliente_id} does not exist")
        return BillingStatus(
            status=row.status,
            served=billing.is_served(row.status),
            subscription_status=row.subscription_status,
            past_due_since=row.past_due_since,
            grace_ends_at=billing.grace_ends_at(row.facts, grace_s=self._settings.billing_grace_s),
            trial_ends_at=row.trial_ends_at,
            has_customer=row.stripe_customer_id is not None,
        )

    async def _customer_of(self, cliente_id: int, *, create: bool) -> str | None:
        """The cliente's Stripe customer; made (once, under the row lock) when `create`."""
        async with self._sessions() as session:
            row = await billing_db.read_billing(session, cliente_id, lock=create)
            if row is None:
                raise NotFound(f"cliente {cliente_id} does not exist")
            if row.stripe_customer_id is not None or not create:
                return row.stripe_customer_id
            customer_id = await self._require_stripe().create_customer(
                cliente_id=cliente_id, name=row.nome, created_at=row.created_at
            )
            await billing_db.set_customer(session, cliente_id, customer_id)
            await session.commit()
            return customer_id

    def _require_stripe(self) -> StripeBilling:
        if self._stripe is None:
            raise NotConfigured("billing is not configured: set STRIPE_API_KEY")
        return self._stripe

    def _return_url(self) -> str:
        return (self._settings.billing_return_url or self._settings.base_url).rstrip("/")


class BillingClock:
    """The supervisor's periodic pass: ends grace periods and trials nobody paid for, even when
    Stripe sends nothing more."""

    def __init__(self, settings: Settings):
        assert settings.database_url
        self._grace_s = settings.billing_grace_s
        self._engine = create_engine(settings.database_url, pool_size=1)
        self._sessions = session_factory(self._engine)

    async def run_once(self, *, now: datetime | None = None) -> list[int]:
        """Apply the status each over-due cliente should have now; returns those no longer
        served."""
        now = now or datetime.now(UTC)
        stopped = []
        async with self._sessions() as session:
            for row in await billing_db.clock_candidates(session, now=now, grace_s=self._grace_s):
                status = billing.decide_status(row.facts, now=now, grace_s=self._grace_s)
                if status is row.status:
                    continue
                await billing_db.set_status(session, row.cliente_id, status)
                stopped.append(row.cliente_id)
                log.warning(
                    "grace period or trial over: cliente no longer served",
                    extra={"cliente_id": row.cliente_id, "status": status.value},
                )
            await session.commit()
        return stopped
