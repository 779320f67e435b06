"""The ingress's rate limits: requests per API key on /v1, and failed authentications per source
address on /admin, /v1 and the Evolution webhook (a brute-forcer is slowed to a few guesses a
minute). Counted in PostgreSQL, so the limits hold across every ingress replica.

A source over its failure limit is refused (429) *before* its credential is checked, or a
correct guess would still get through. That check costs no query on the success path: a replica
remembers the sources it has refused until their `Retry-After`; one that has not yet seen a
source fail learns of it at that source's next failure, which the shared count refuses. So a
blocked source gets at most one more guess per replica per blocking period.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core.rate_limit import Rate, Verdict
from engine.db import rate_limits as rate_limits_db
from engine.errors import TooManyRequests

log = logging.getLogger(__name__)

CLEANUP_INTERVAL_S = 600.0  # how often a replica deletes the keys back at a full burst


class RateLimits:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        per_api_key: Rate,
        auth_failures: Rate,
    ):
        self._sessions = sessions
        self._per_api_key = per_api_key
        self._auth_failures = auth_failures
        self._blocked_until: dict[str, float] = {}  # source → monotonic time its block ends
        self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_S

    async def spend_api_key(self, api_key_id: int) -> None:
        """One request of an API key; TooManyRequests when the key is over its rate."""
        verdict = await self._take(f"api_key:{api_key_id}", self._per_api_key)
        if not verdict.allowed:
            raise TooManyRequests(
                "this API key is over its request rate (API_RATE_PER_MIN); retry after "
                f"{verdict.retry_after_s:.0f} s",
                retry_after_s=verdict.retry_after_s,
            )

    def refuse_blocked(self, source: str | None) -> None:
        """TooManyRequests for a source this replica saw go over its failure limit."""
        if source is None:
            return
        until = self._blocked_until.get(source)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[source]
            return
        raise _too_many_failures(left)

    async def failed_authentication(self, source: str | None) -> None:
        """Count a failed authentication of `source`; TooManyRequests (instead of the 401) once
        it is over AUTH_FAILURES_PER_MIN, and the source is refused until it may retry."""
        if source is None:
            return
        verdict = await self._take(f"auth_failures:{source}", self._auth_failures)
        if verdict.allowed:
            return
        self._blocked_until[source] = time.monotonic() + verdict.retry_after_s
        log.warning(
            "authentication failures over the limit: source refused",
            extra={"source": source, "retry_after_s": round(verdict.retry_after_s, 1)},
        )
        raise _too_many_failures(verdict.retry_after_s)

    async def _take(self, key: str, rate: Rate) -> Verdict:
        async with self._sessions() as session:
            verdict = await rate_limits_db.take(session, key, rate)
            if time.monotonic() >= self._next_cleanup:  # each replica, now and then
                self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_S
                await rate_limits_db.forget_spent(session)
                self._blocked_until = {
                    s: t for s, t in self._blocked_until.items() if t > time.monotonic()
                }
            await session.commit()
        return verdict


def _too_many_failures(retry_after_s: float) -> TooManyRequests:
    return TooManyRequests(
        "too many failed authentications from this address (AUTH_FAILURES_PER_MIN); retry "
        f"after {retry_after_s:.0f} s",
        retry_after_s=retry_after_s,
    )
