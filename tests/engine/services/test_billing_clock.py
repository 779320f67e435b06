"""The supervisor's billing clock on a real PostgreSQL: grace periods and trials end by
themselves, with no Stripe event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from engine.config import Settings
from engine.services.billing import BillingClock
from tests.support.postgres import asyncpg_dsn

pytestmark = pytest.mark.integration


async def _cliente(db: asyncpg.Connection, **columns: object) -> int:
    names = ", ".join(["nome", *columns])
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 2))
    return int(
        await db.fetchval(
            f"INSERT INTO clientes ({names}) VALUES ({values}) RETURNING id",
            "Loja do relógio",
            *columns.values(),
        )
    )


async def test_grace_periods_and_trials_that_are_over_stop_service_and_nothing_else(
    settings: Settings, database_url: str
) -> None:
    now = datetime.now(UTC)
    grace = timedelta(seconds=settings.billing_grace_s)
    db = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        over = await _cliente(
            db, status="ATIVO", subscription_status="past_due", past_due_since=now - grace * 2
        )
        in_grace = await _cliente(
            db, status="ATIVO", subscription_status="past_due", past_due_since=now
        )
        trial_over = await _cliente(db, status="ATIVO", trial_ends_at=now - timedelta(hours=1))
        in_trial = await _cliente(db, status="ATIVO", trial_ends_at=now + timedelta(days=3))
        paying = await _cliente(
            db,
            status="ATIVO",
            subscription_status="active",
            trial_ends_at=now - timedelta(days=1),  # subscribed during the trial
        )
        suspended = await _cliente(
            db, status="SUSPENSO", subscription_status="past_due", past_due_since=now - grace * 2
        )

        stopped = await BillingClock(settings).run_once(now=now)

        mine = {over, in_grace, trial_over, in_trial, paying, suspended}
        assert sorted(set(stopped) & mine) == sorted([over, trial_over])
        rows = await db.fetch("SELECT id, status FROM clientes WHERE id = ANY($1::int[])", mine)
        assert {r["id"]: r["status"] for r in rows} == {
            over: "INADIMPLENTE",
            in_grace: "ATIVO",
            trial_over: "PENDENTE",
            in_trial: "ATIVO",
            paying: "ATIVO",
            suspended: "SUSPENSO",
        }
        assert set(await BillingClock(settings).run_once(now=now)) & mine == set()  # once
    finally:
        await db.execute("DELETE FROM clientes WHERE nome = 'Loja do relógio'")
        await db.close()
