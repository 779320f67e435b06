"""Raw asyncpg pools for the hot paths (the webhook's ack, a conversation's turn).

SQLAlchemy costs ~0.7 ms of CPU per statement here against ~0.12 ms for the same round trip on
asyncpg, so the statements a customer waits for are written by hand and run on a pool of their
own, with the timeouts `engine.db.session` gives every connection. Losing PostgreSQL is
`DatabaseUnavailable`, as it is for a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg

from engine.db.session import IDLE_IN_TRANSACTION_FACTOR, UNAVAILABLE_STATES
from engine.errors import DatabaseUnavailable


class RawPool:
    """A small asyncpg pool, opened on first use."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int,
        statement_timeout_s: float,
        connect_timeout_s: float,
    ):
        self._dsn = dsn
        self._pool_size = pool_size
        self._statement_timeout_s = statement_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def opened(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                statement_ms = int(self._statement_timeout_s * 1000)
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=self._connect_timeout_s,
                    command_timeout=self._statement_timeout_s + 5,
                    max_inactive_connection_lifetime=1800,
                    reset=_keep_session,
                    server_settings={
                        "statement_timeout": str(statement_ms),
                        "idle_in_transaction_session_timeout": str(
                            statement_ms * IDLE_IN_TRANSACTION_FACTOR
                        ),
                    },
                )
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; losing PostgreSQL (on the way in or while it is used) is
        `DatabaseUnavailable`. A connection the server closed (a restart) is seen closed by
        asyncpg and replaced when the pool hands it out next."""
        with unavailable_as_error():
            pool = await self.opened()
            async with pool.acquire() as connection:
                yield connection

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


@contextlib.contextmanager
def unavailable_as_error() -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if is_unavailable(e):
            raise DatabaseUnavailable(
                f"PostgreSQL is unavailable ({type(e).__name__}: {e}); the request can be retried"
            ) from e
        raise


def is_unavailable(error: BaseException) -> bool:
    """Losing PostgreSQL (refused, dropped, starting up, too slow), as `engine.db.session`
    sees it."""
    if isinstance(error, OSError | TimeoutError | asyncpg.ConnectionDoesNotExistError):
        return True
    state = getattr(error, "sqlstate", None) or ""
    return state.startswith(UNAVAILABLE_STATES)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back, instead of asyncpg's default reset.

    The default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    release: a second round trip per ack, which the ack waits for. These pools run only statements
    and short transactions that leave no advisory lock, cursor, listener or setting behind;
    asyncpg still rolls back a transaction left open (an interrupted statement) before calling
    this.
    """
