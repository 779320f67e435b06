"""Sessions against a real PostgreSQL: statements time out, a frozen transaction does not keep
its locks, losing the server is `DatabaseUnavailable`, and the pool survives a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db.session import create_engine, session_factory
from engine.errors import DatabaseUnavailable
from tests.support.postgres import asyncpg_dsn
from tests.support.private_postgres import PrivatePostgres

pytestmark = pytest.mark.integration


@pytest.fixture
async def scratch(own_database_url: str) -> AsyncIterator[str]:
    """A one-row table to lock, in the module's own database."""
    connection = await asyncpg.connect(asyncpg_dsn(own_database_url))
    await connection.execute("CREATE TABLE IF NOT EXISTS scratch (id int PRIMARY KEY)")
    await connection.execute("INSERT INTO scratch VALUES (1) ON CONFLICT DO NOTHING")
    await connection.close()
    yield own_database_url


async def _one(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(text("SELECT 1")))


async def test_a_statement_past_the_timeout_is_cancelled_and_reported_unavailable(
    own_database_url: str,
) -> None:
    engine = create_engine(own_database_url, pool_size=1, statement_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="statement timeout"):
        async with session_factory(engine)() as session:
            await session.execute(text("SELECT pg_sleep(10)"))
    assert time.monotonic() - started < 5
    assert await _one(engine) == 1  # the connection is fine afterwards
    await engine.dispose()


async def test_a_wrong_statement_is_an_error_of_its_own_not_unavailability(
    own_database_url: str,
) -> None:
    engine = create_engine(own_database_url, pool_size=1)
    with pytest.raises(DBAPIError) as raised:
        async with session_factory(engine)() as session:
            await session.execute(text("SELECT 1 / 0"))
    assert not isinstance(raised.value, DatabaseUnavailable)
    await engine.dispose()


async def test_a_statement_waiting_for_a_hung_transactions_lock_gives_up_after_the_timeout(
    scratch: str,
) -> None:
    hung = await asyncpg.connect(asyncpg_dsn(scratch))  # holds the row and never commits
    transaction = hung.transaction()
    await transaction.start()
    await hung.execute("SELECT * FROM scratch WHERE id = 1 FOR UPDATE")
    engine = create_engine(scratch, pool_size=1, statement_timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable):
            async with session_factory(engine)() as session:
                await session.execute(text("SELECT * FROM scratch WHERE id = 1 FOR UPDATE"))
        assert time.monotonic() - started < 5
    finally:
        await transaction.rollback()
        await hung.close()
        await engine.dispose()


async def test_a_frozen_transaction_is_ended_so_its_row_locks_are_released(scratch: str) -> None:
    # Conversa's connections end a transaction idle for 6 statement timeouts (here 1.2 s).
    frozen = create_engine(scratch, pool_size=1, statement_timeout_s=0.2)
    other = create_engine(scratch, pool_size=1, statement_timeout_s=5.0)
    with pytest.raises(DatabaseUnavailable):
        async with session_factory(frozen)() as session:
            await session.execute(text("SELECT * FROM scratch WHERE id = 1 FOR UPDATE"))
            started = time.monotonic()
            async with session_factory(other)() as waiting:  # blocks until the lock is freed
                await waiting.execute(text("SELECT * FROM scratch WHERE id = 1 FOR UPDATE"))
            waited_s = time.monotonic() - started
            await session.execute(text("SELECT 1"))  # the frozen one's connection is gone
    assert 0.8 < waited_s < 4.5
    await frozen.dispose()
    await other.dispose()


async def test_the_pool_reports_a_stopped_server_fast_and_recovers_by_itself_after_a_restart(
    private_postgres: PrivatePostgres,
) -> None:
    engine = create_engine(
        private_postgres.url, pool_size=2, statement_timeout_s=2.0, connect_timeout_s=2.0
    )
    assert await _one(engine) == 1
    await asyncio.to_thread(private_postgres.stop)
    try:
        for _ in range(2):  # the pooled connection is dead, then no new one can be made
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                await _one(engine)
            assert time.monotonic() - started < 4
    finally:
        await asyncio.to_thread(private_postgres.start)
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(await _one(engine))
        except DatabaseUnavailable:
            outcomes.append(0)
    assert outcomes[1:] == [1, 1]  # the same engine, no restart of ours: back by itself
    await engine.dispose()


async def test_an_sql_error_logged_carries_no_bound_customer_text(
    own_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    customer_text = "meu CPF é 123.456.789-00, rua das Flores 12"
    engine = create_engine(own_database_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError) as failed:
            async with session_factory(engine)() as session:
                # A statement that fails on the server with the customer's text bound to it
                # (without hide_parameters the error would end "[parameters: ('meu CPF…',)]").
                await session.execute(
                    text("SELECT CAST(:body AS text), 1 / 0"), {"body": customer_text}
                )
        logging.getLogger("conversa.test").exception("query failed", exc_info=failed.value)
    finally:
        await engine.dispose()

    assert "division by zero" in str(failed.value)  # the error itself is still useful
    assert customer_text not in str(failed.value)
    assert customer_text not in caplog.text
    assert "hidden due to hide_parameters" in caplog.text
