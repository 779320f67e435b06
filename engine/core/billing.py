"""Billing rules: which `ClienteStatus` a Stripe subscription means, and who is served. Pure.

The webhook handler (`engine.services.billing`) re-reads the customer's subscriptions from
Stripe's API on every event (Stripe's advice: events arrive late, twice and out of order), picks
the one that counts (`current_subscription`), and lets `decide_status` map it. So replaying every
event, or delivering them in reverse order, ends in the same state: the state is always Stripe's
current one, never an event's snapshot. The supervisor's periodic pass calls `decide_status`
again for clientes in their grace period, so the grace ends without a new event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core.statuses import ClienteStatus

# The events that can change a cliente's billing state (anything else is acknowledged, unused).
HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
# Set by Conversa on the Checkout Session (`client_reference_id`) and on the subscription it
# creates (`subscription_data[metadata]`), so every later event names its cliente.
CLIENTE_METADATA_KEY = "cliente_id"

# Stripe statuses that still describe a subscription being paid for (or about to be).
_LIVE = frozenset({"active", "trialing", "past_due", "unpaid", "paused", "incomplete"})


@dataclass(frozen=True)
class StripeEvent:
    """A verified Stripe event: its id (the idempotency key), type, time and object."""

    id: str
    type: str
    created: int
    object: Mapping[str, Any]


@dataclass(frozen=True)
class Subscription:
    """What Conversa needs of a Stripe subscription."""

    id: str
    status: str  # Stripe's enum: active, trialing, past_due, unpaid, canceled, paused, incomplete…
    created: int  # epoch seconds
    customer_id: str


@dataclass(frozen=True)
class BillingFacts:
    """A cliente's stored status and what is known of its subscription."""

    status: ClienteStatus
    subscription_status: str | None  # None: no subscription (yet)
    past_due_since: datetime | None = None
    trial_ends_at: datetime | None = None  # a trial Conversa granted without Stripe


def current_subscription(subscriptions: Iterable[Subscription]) -> Subscription | None:
    """The subscription that decides a customer's status: the newest one still alive, else the
    newest of all (a canceled one, if that is all there is). A customer who cancelled and
    subscribed again is judged by the new subscription, whatever order events came in."""
    ordered = sorted(subscriptions, key=lambda s: (s.created, s.id), reverse=True)
    return next((s for s in ordered if s.status in _LIVE), ordered[0] if ordered else None)


def decide_status(facts: BillingFacts, *, now: datetime, grace_s: float) -> ClienteStatus:
    """The status a cliente should have now.

    An operator's SUSPENSO, and a cliente being deleted (EXCLUINDO), are never overridden.
    active/trialing → ATIVO; past_due → still ATIVO for `grace_s` after it was first seen, then
    INADIMPLENTE; unpaid → INADIMPLENTE; canceled and incomplete_expired → CANCELADO; paused →
    PAUSADO; incomplete (the first payment is being made) → PENDENTE. With no subscription, a
    running trial is ATIVO and an ended one PENDENTE; without either, the stored status stands
    (an operator set it).
    """
    if facts.status in (ClienteStatus.SUSPENSO, ClienteStatus.EXCLUINDO):
        return facts.status
    match facts.subscription_status:
        case None:
            if facts.trial_ends_at is None:
                return facts.status
            return ClienteStatus.ATIVO if now < facts.trial_ends_at else ClienteStatus.PENDENTE
        case "active" | "trialing":
            return ClienteStatus.ATIVO
        case "past_due":
            since = facts.past_due_since or now
            in_grace = now < since + timedelta(seconds=grace_s)
            return ClienteStatus.ATIVO if in_grace else ClienteStatus.INADIMPLENTE
        case "unpaid":
            return ClienteStatus.INADIMPLENTE
        case "canceled" | "incomplete_expired":
            return ClienteStatus.CANCELADO
        case "paused":
            return ClienteStatus.PAUSADO
        case "incomplete":
            return ClienteStatus.PENDENTE
        case _:  # a status Stripe adds later: change nothing until someone decides
            return facts.status


def past_due_since(
    subscription_status: str | None, *, previous: datetime | None, now: datetime
) -> datetime | None:
    """When the grace period started: kept while the subscription stays past_due (a replayed
    event never restarts it), cleared as soon as it is anything else."""
    if subscription_status != "past_due":
        return None
    return previous or now


def grace_ends_at(facts: BillingFacts, *, grace_s: float) -> datetime | None:
    """When a past_due cliente stops being served (None when it is not in a grace period)."""
    if facts.subscription_status != "past_due" or facts.past_due_since is None:
        return None
    return facts.past_due_since + timedelta(seconds=grace_s)


def is_served(status: ClienteStatus) -> bool:
    """Only an ATIVO cliente's customers are answered."""
    return status is ClienteStatus.ATIVO


def initial_status(*, requested: ClienteStatus | None, trial_days: int) -> ClienteStatus:
    """A new cliente's status: what an operator asked for, else ATIVO during a configured trial,
    else PENDENTE (not served until it pays)."""
    if requested is not None:
        return requested
    return ClienteStatus.ATIVO if trial_days > 0 else ClienteStatus.PENDENTE


@dataclass(frozen=True)
class EventRefs:
    """Who and what a Stripe event is about, read from its `data.object`."""

    cliente_id: int | None  # from `client_reference_id` or the metadata Conversa set
    customer_id: str | None
    subscription_id: str | None


def event_refs(event_type: str, obj: Mapping[str, Any]) -> EventRefs:
    """The cliente, customer and subscription named by an event's object (a checkout session, a
    subscription or an invoice, in the shapes of Stripe's API since 2025-03-31)."""
    customer = _str(obj.get("customer"))
    if event_type.startswith("checkout.session."):
        reference = _cliente_id(obj.get("client_reference_id")) or _metadata_cliente(obj)
        return EventRefs(reference, customer, _str(obj.get("subscription")))
    if event_type.startswith("customer.subscription."):
        return EventRefs(_metadata_cliente(obj), customer, _str(obj.get("id")))
    if event_type.startswith("invoice."):
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        subscription = _str(details.get("subscription")) or _str(obj.get("subscription"))
        return EventRefs(_metadata_cliente(details), customer, subscription)
    return EventRefs(None, customer, None)


def _metadata_cliente(obj: Mapping[str, Any]) -> int | None:
    metadata = obj.get("metadata")
    return _cliente_id(metadata.get(CLIENTE_METADATA_KEY)) if isinstance(metadata, dict) else None


def _cliente_id(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _str(value: Any) -> str | None:
    """An id, whether the object carries it as a string or expanded (`{"id": …}`)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
