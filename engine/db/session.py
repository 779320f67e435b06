"""Async SQLAlchemy engines over asyncpg, with timeouts, and sessions that say when PostgreSQL
is unavailable.

Every connection runs with `statement_timeout` (a hung query fails instead of holding a chat's
turn forever) and `idle_in_transaction_session_timeout` (a process frozen mid-transaction does
not keep its row locks); asyncpg's own `command_timeout` covers a server that stopped answering.
A session translates losing PostgreSQL (connect refused, connection dropped by a restart, a
statement timeout) into `DatabaseUnavailable`, which the webhook answers 503 so that Evolution
retries. The pool drops every stale connection after the first one fails (SQLAlchemy invalidates
the pool on a disconnect), so after a restart it works again by itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from engine.errors import DatabaseUnavailable

# SQLSTATEs that mean "the server is not there for us right now", not "this query is wrong":
# class 08 (connection exception), admin/crash shutdown, starting up, too many connections, and
# the statement timeout (57014 query_canceled).
UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "57014")
IDLE_IN_TRANSACTION_FACTOR = 6


def async_url(url: str) -> str:
    """Any PostgreSQL URL (`postgres://`, `postgresql://`, `…+asyncpg://`) for asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"DATABASE_URL must be a PostgreSQL URL, got {parsed.get_backend_name()!r}"
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """Any PostgreSQL URL as the DSN `asyncpg` itself takes (for the ack path's own pool)."""
    return (
        make_url(async_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def create_engine(
    url: str,
    *,
    pool_size: int = 8,
    statement_timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
) -> AsyncEngine:
    # A fixed pool: overflow connections were closed as soon as they were returned and reopened
    # on the next burst (~150 connects per 2,000 webhooks). No pre-ping: it cost three round trips
    # per request on the ack path; a connection dropped by a server restart fails one request
    # (DatabaseUnavailable → 503, Evolution retries it) and the pool replaces them all.
    statement_ms = int(statement_timeout_s * 1000)
    engine = _create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        hide_parameters=True,  # an SQL error in a log never carries customer text
        pool_timeout=connect_timeout_s + statement_timeout_s,
        connect_args={
            "timeout": connect_timeout_s,
            "command_timeout": statement_timeout_s + 5,  # the server's own timeout comes first
            "server_settings": {
                "statement_timeout": str(statement_ms),
                "idle_in_transaction_session_timeout": str(
                    statement_ms * IDLE_IN_TRANSACTION_FACTOR
                ),
            },
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    return engine


def _connect_or_unavailable(
    dialect: Any, connection_record: Any, cargs: Any, cparams: dict[str, Any]
) -> Any:
    """Open a connection; any failure to (refused, no socket, timeout, starting up, bad
    credentials) is PostgreSQL being unavailable to us."""
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as e:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL ({type(e).__name__}: {e}); check DATABASE_URL and "
            "that the server is up"
        ) from e


def is_unavailable(error: BaseException) -> bool:
    """Whether a database error means PostgreSQL is (for now) unreachable or too slow, rather
    than that the statement itself is wrong."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None) or ""
    return state.startswith(UNAVAILABLE_STATES) or "connection was closed" in str(error.orig)


class Session(AsyncSession):
    """An AsyncSession whose `async with` block turns PostgreSQL being unavailable into
    `DatabaseUnavailable` (with the driver's error as its cause)."""

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await super().__aexit__(type_, value, traceback)
        if (
            value is not None
            and not isinstance(value, DatabaseUnavailable)
            and is_unavailable(value)
        ):
            raise DatabaseUnavailable(
                f"PostgreSQL is unavailable ({type(value.orig).__name__}: {value.orig}); "
                "the request can be retried"
            ) from value


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=Session, expire_on_commit=False)
