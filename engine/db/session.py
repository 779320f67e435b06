"""Async SQLAlchemy engines over asyncpg."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def async_url(url: str) -> str:
    """Any PostgreSQL URL (`postgres://`, `postgresql://`, `…+asyncpg://`) for asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"DATABASE_URL must be a PostgreSQL URL, got {parsed.get_backend_name()!r}"
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 8) -> AsyncEngine:
    # A fixed pool: overflow connections were closed as soon as they were returned and reopened
    # on the next burst (~150 connects per 2,000 webhooks). No pre-ping: it cost three round trips
    # per request on the ack path; a connection dropped by a server restart fails one request
    # (Evolution retries it) and is replaced.
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=0, pool_recycle=1800
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
