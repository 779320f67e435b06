"""Rate limits in PostgreSQL (engine/db/rate_limits.py): the UPSERT does what the pure GCRA
says, and holds when several processes (ingress replicas) check one key at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from engine.core.rate_limit import Rate
from engine.db import rate_limits as rate_limits_db
from engine.db.session import create_engine, session_factory

pytestmark = pytest.mark.integration

SLOW = Rate.per_minute(1, burst=5)  # nothing refills during a test


async def test_a_key_gets_its_burst_then_429_with_when_to_retry(own_database_url: str) -> None:
    engine = create_engine(own_database_url, pool_size=1)
    key = f"test:{uuid.uuid4().hex}"
    try:
        sessions = session_factory(engine)
        verdicts = []
        for _ in range(7):
            async with sessions() as session:
                verdicts.append(await rate_limits_db.take(session, key, SLOW))
                await session.commit()
        async with sessions() as session:
            peeked = await rate_limits_db.peek(session, key, SLOW)
    finally:
        await engine.dispose()

    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert 55 < verdicts[-1].retry_after_s <= 60  # one emission interval of 60 s
    assert verdicts[-1].tat_s == verdicts[4].tat_s  # refusals changed nothing
    assert not peeked.allowed


async def test_replicas_checking_one_key_at_once_share_one_limit(own_database_url: str) -> None:
    """Four pools (as four ingress replicas would hold) race 40 checks of one key: exactly the
    burst is allowed."""
    engines = [create_engine(own_database_url, pool_size=3) for _ in range(4)]
    key = f"test:{uuid.uuid4().hex}"

    async def one(i: int) -> bool:
        async with session_factory(engines[i % 4])() as session:
            verdict = await rate_limits_db.take(session, key, SLOW)
            await session.commit()
        return verdict.allowed

    try:
        allowed = await asyncio.gather(*(one(i) for i in range(40)))
    finally:
        for engine in engines:
            await engine.dispose()

    assert sum(allowed) == SLOW.burst


async def test_keys_back_at_a_full_burst_are_forgotten(own_database_url: str) -> None:
    engine = create_engine(own_database_url, pool_size=1)
    limited, spent = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    try:
        async with session_factory(engine)() as session:
            await rate_limits_db.take(session, limited, SLOW)  # TAT a minute ahead
            await rate_limits_db.take(session, spent, Rate(per_s=1000.0, burst=1))  # 1 ms
            await session.commit()
        await asyncio.sleep(0.05)
        async with session_factory(engine)() as session:
            await rate_limits_db.forget_spent(session)
            await session.commit()
            left = set(
                await session.scalars(
                    text("SELECT key FROM rate_limits WHERE key = ANY(:k)"),
                    {"k": [limited, spent]},
                )
            )
    finally:
        await engine.dispose()

    assert left == {limited}
