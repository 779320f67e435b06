"""Billing rules: Stripe's subscription status → ClienteStatus, the grace clock, which
subscription counts, and what an event names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.billing import (
    BillingFacts,
    EventRefs,
    Subscription,
    current_subscription,
    decide_status,
    event_refs,
    grace_ends_at,
    initial_status,
    is_served,
    past_due_since,
)
from engine.core.statuses import ClienteStatus as S

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE_S = 3 * 86400.0
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("stored", "stripe", "since", "trial_ends", "expected"),
    [
        # Stripe's statuses, from a cliente that was waiting to pay
        (S.PENDENTE, "active", None, None, S.ATIVO),
        (S.PENDENTE, "trialing", None, None, S.ATIVO),
        (S.PENDENTE, "incomplete", None, None, S.PENDENTE),
        (S.PENDENTE, "incomplete_expired", None, None, S.CANCELADO),
        # payment failed: served during the grace period, then not
        (S.ATIVO, "past_due", NOW, None, S.ATIVO),
        (S.ATIVO, "past_due", NOW - timedelta(days=3) + HOUR, None, S.ATIVO),
        (S.ATIVO, "past_due", NOW - timedelta(days=3), None, S.INADIMPLENTE),
        (S.ATIVO, "past_due", None, None, S.ATIVO),  # first seen now: the grace starts now
        (S.ATIVO, "unpaid", NOW - timedelta(days=9), None, S.INADIMPLENTE),
        (S.ATIVO, "canceled", None, None, S.CANCELADO),
        (S.ATIVO, "paused", None, None, S.PAUSADO),
        # paid again
        (S.INADIMPLENTE, "active", None, None, S.ATIVO),
        (S.CANCELADO, "active", None, None, S.ATIVO),
        (S.PAUSADO, "active", None, None, S.ATIVO),
        # an operator's suspension is never overridden by Stripe
        (S.SUSPENSO, "active", None, None, S.SUSPENSO),
        (S.SUSPENSO, "canceled", None, None, S.SUSPENSO),
        (S.EXCLUINDO, "active", None, None, S.EXCLUINDO),
        # no subscription: a trial Conversa granted, or what an operator set
        (S.ATIVO, None, None, NOW + HOUR, S.ATIVO),
        (S.ATIVO, None, None, NOW, S.PENDENTE),
        (S.ATIVO, None, None, None, S.ATIVO),
        (S.PENDENTE, None, None, None, S.PENDENTE),
        # a status Stripe might add one day changes nothing
        (S.ATIVO, "frozen_by_a_future_api", None, None, S.ATIVO),
    ],
)
def test_status_table(
    stored: S,
    stripe: str | None,
    since: datetime | None,
    trial_ends: datetime | None,
    expected: S,
) -> None:
    facts = BillingFacts(stored, stripe, since, trial_ends)
    assert decide_status(facts, now=NOW, grace_s=GRACE_S) is expected


def test_only_ativo_is_served() -> None:
    assert [s for s in S if is_served(s)] == [S.ATIVO]


@pytest.mark.parametrize(
    ("stripe", "previous", "expected"),
    [
        ("past_due", None, NOW),  # first seen: the grace starts now
        ("past_due", NOW - HOUR, NOW - HOUR),  # a replayed event never restarts it
        ("active", NOW - HOUR, None),
        ("unpaid", NOW - HOUR, None),
        (None, None, None),
    ],
)
def test_past_due_since(stripe: str | None, previous: datetime | None, expected: object) -> None:
    assert past_due_since(stripe, previous=previous, now=NOW) == expected


def test_grace_ends_grace_s_after_past_due_was_first_seen() -> None:
    facts = BillingFacts(S.ATIVO, "past_due", NOW)
    assert grace_ends_at(facts, grace_s=60) == NOW + timedelta(seconds=60)
    assert grace_ends_at(BillingFacts(S.ATIVO, "active"), grace_s=60) is None


def sub(sub_id: str, status: str, created: int) -> Subscription:
    return Subscription(sub_id, status, created, "cus_1")


@pytest.mark.parametrize(
    ("subscriptions", "expected"),
    [
        ([], None),
        ([sub("a", "active", 1)], "a"),
        ([sub("old", "canceled", 1), sub("new", "active", 2)], "new"),
        ([sub("new", "active", 2), sub("old", "canceled", 1)], "new"),  # any order
        ([sub("old", "active", 1), sub("new", "incomplete_expired", 2)], "old"),
        ([sub("a", "canceled", 1), sub("b", "canceled", 2)], "b"),
        ([sub("a", "past_due", 5), sub("b", "active", 3)], "a"),  # the newest alive counts
    ],
)
def test_the_newest_live_subscription_decides(
    subscriptions: list[Subscription], expected: str | None
) -> None:
    found = current_subscription(subscriptions)
    assert (found.id if found else None) == expected


def test_a_new_cliente_is_pendente_unless_an_operator_or_a_trial_says_otherwise() -> None:
    assert initial_status(requested=None, trial_days=0) is S.PENDENTE
    assert initial_status(requested=None, trial_days=14) is S.ATIVO
    assert initial_status(requested=S.ATIVO, trial_days=0) is S.ATIVO
    assert initial_status(requested=S.SUSPENSO, trial_days=14) is S.SUSPENSO


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        (
            "checkout.session.completed",
            {"client_reference_id": "7", "customer": "cus_1", "subscription": "sub_1"},
            EventRefs(7, "cus_1", "sub_1"),
        ),
        (
            "checkout.session.completed",
            {"client_reference_id": None, "metadata": {"cliente_id": "8"}, "customer": "cus_1"},
            EventRefs(8, "cus_1", None),
        ),
        (
            "customer.subscription.updated",
            {"id": "sub_1", "customer": "cus_1", "metadata": {"cliente_id": "7"}},
            EventRefs(7, "cus_1", "sub_1"),
        ),
        (
            "customer.subscription.deleted",
            {"id": "sub_1", "customer": {"id": "cus_1"}, "metadata": {}},
            EventRefs(None, "cus_1", "sub_1"),
        ),
        (
            "invoice.payment_failed",
            {
                "customer": "cus_1",
                "parent": {
                    "subscription_details": {
                        "subscription": "sub_1",
                        "metadata": {"cliente_id": "7"},
                    }
                },
            },
            EventRefs(7, "cus_1", "sub_1"),
        ),
        (
            "invoice.paid",
            {"customer": "cus_1", "parent": None, "subscription": "sub_9"},
            EventRefs(None, "cus_1", "sub_9"),
        ),
        # a reference that is not a cliente id is ignored, not trusted
        (
            "customer.subscription.updated",
            {"id": "sub_1", "customer": "cus_1", "metadata": {"cliente_id": "1; DROP"}},
            EventRefs(None, "cus_1", "sub_1"),
        ),
        ("customer.created", {"id": "cus_1"}, EventRefs(None, None, None)),
    ],
    ids=[
        "checkout",
        "checkout-metadata",
        "subscription",
        "subscription-expanded-customer",
        "invoice",
        "invoice-old-shape",
        "bad-reference",
        "other",
    ],
)
def test_what_an_event_names(event_type: str, obj: dict[str, object], expected: EventRefs) -> None:
    assert event_refs(event_type, obj) == expected
