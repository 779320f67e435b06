"""Queries about a cliente's billing: its Stripe ids, subscription status and grace clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.billing import BillingFacts
from engine.core.statuses import ClienteStatus
from engine.db.models import Cliente, ProcessedWebhook

STRIPE_SOURCE = "stripe"  # the idempotency source of Stripe events (key: event.id)


@dataclass(frozen=True)
class BillingRow:
    cliente_id: int
    nome: str
    status: ClienteStatus
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    subscription_status: str | None
    subscription_updated_at: datetime | None
    past_due_since: datetime | None
    trial_ends_at: datetime | None
    created_at: datetime

    @property
    def facts(self) -> BillingFacts:
        return BillingFacts(
            status=self.status,
            subscription_status=self.subscription_status,
            past_due_since=self.past_due_since,
            trial_ends_at=self.trial_ends_at,
        )


_COLUMNS = (
    Cliente.id,
    Cliente.nome,
    Cliente.status,
    Cliente.stripe_customer_id,
    Cliente.stripe_subscription_id,
    Cliente.subscription_status,
    Cliente.subscription_updated_at,
    Cliente.past_due_since,
    Cliente.trial_ends_at,
    Cliente.created_at,
)


def _row(row: Any) -> BillingRow:
    return BillingRow(*row)


async def read_billing(
    session: AsyncSession, cliente_id: int, *, lock: bool = False
) -> BillingRow | None:
    """A cliente's billing state; `lock` holds its row until the transaction ends, so two
    events about one cliente are applied one after the other."""
    query = select(*_COLUMNS).where(Cliente.id == cliente_id)
    if lock:
        query = query.with_for_update(of=Cliente)
    row = (await session.execute(query)).first()
    return None if row is None else _row(row)


async def cliente_of_customer(session: AsyncSession, customer_id: str) -> int | None:
    return await session.scalar(select(Cliente.id).where(Cliente.stripe_customer_id == customer_id))


async def set_customer(session: AsyncSession, cliente_id: int, customer_id: str) -> None:
    await session.execute(
        update(Cliente).where(Cliente.id == cliente_id).values(stripe_customer_id=customer_id)
    )


async def save_billing(
    session: AsyncSession,
    cliente_id: int,
    *,
    customer_id: str,
    subscription_id: str | None,
    subscription_status: str | None,
    past_due_since: datetime | None,
    status: ClienteStatus,
) -> None:
    await session.execute(
        update(Cliente)
        .where(Cliente.id == cliente_id)
        .values(
            stripe_customer_id=customer_id,
            stripe_subscription_id=subscription_id,
            subscription_status=subscription_status,
            subscription_updated_at=func.now(),
            past_due_since=past_due_since,
            status=status,
            updated_at=func.now(),
        )
    )


async def set_status(session: AsyncSession, cliente_id: int, status: ClienteStatus) -> None:
    await session.execute(
        update(Cliente).where(Cliente.id == cliente_id).values(status=status, updated_at=func.now())
    )


async def clock_candidates(
    session: AsyncSession, *, now: datetime, grace_s: float
) -> list[BillingRow]:
    """Served clientes whose grace period or trial is over (locked; others' passes skip them)."""
    grace_over = and_(
        Cliente.subscription_status == "past_due",
        Cliente.past_due_since <= now - timedelta(seconds=grace_s),
    )
    trial_over = and_(Cliente.subscription_status.is_(None), Cliente.trial_ends_at <= now)
    rows = await session.execute(
        select(*_COLUMNS)
        .where(Cliente.status == ClienteStatus.ATIVO, or_(grace_over, trial_over))
        .with_for_update(of=Cliente, skip_locked=True)
    )
    return [_row(r) for r in rows]


async def event_seen(session: AsyncSession, event_id: str) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    ProcessedWebhook.source == STRIPE_SOURCE, ProcessedWebhook.key == event_id
                )
            )
        )
    )
