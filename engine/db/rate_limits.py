"""Rate-limit checks against the shared TAT of a key (engine/core/rate_limit.py), on
PostgreSQL's clock so that replicas with drifting clocks still agree."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.rate_limit import Rate, Verdict, check

# `check` as one statement: the row lock of ON CONFLICT serialises concurrent checks of a key;
# a refused check matches no row (WHERE) and so changes nothing.
_TAKE = text(
    """
    INSERT INTO rate_limits AS r (key, tat_s)
    VALUES (:key, extract(epoch FROM clock_timestamp()) + :emission_s)
    ON CONFLICT (key) DO UPDATE
    SET tat_s = GREATEST(r.tat_s, extract(epoch FROM clock_timestamp())) + :emission_s
    WHERE GREATEST(r.tat_s, extract(epoch FROM clock_timestamp()))
          - extract(epoch FROM clock_timestamp()) <= :tolerance_s
    RETURNING tat_s
    """
)
# A key whose TAT has passed has its whole burst back: its row says nothing a missing row does not.
_FORGET_SPENT = text("DELETE FROM rate_limits WHERE tat_s < extract(epoch FROM clock_timestamp())")
_READ = text(
    "SELECT (SELECT tat_s FROM rate_limits WHERE key = :key), "
    "extract(epoch FROM clock_timestamp())::float8"
)


async def take(session: AsyncSession, key: str, rate: Rate) -> Verdict:
    """Spend one request of `key`'s rate if one is left (atomically); refused: when to retry."""
    tat_s = await session.scalar(
        _TAKE, {"key": key, "emission_s": rate.emission_s, "tolerance_s": rate.tolerance_s}
    )
    if tat_s is not None:
        return Verdict(True, float(tat_s), 0.0)
    refused = await peek(session, key, rate)  # allowed again only if time passed in between
    return Verdict(False, refused.tat_s, refused.retry_after_s)


async def peek(session: AsyncSession, key: str, rate: Rate) -> Verdict:
    """Whether one more request of `key` would be allowed now, spending nothing."""
    tat_s, now_s = (await session.execute(_READ, {"key": key})).one()
    return check(None if tat_s is None else float(tat_s), float(now_s), rate)


async def forget_spent(session: AsyncSession) -> int:
    """Delete the keys back at a full burst (the table holds only sources and keys limited now)."""
    result = await session.execute(_FORGET_SPENT)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
