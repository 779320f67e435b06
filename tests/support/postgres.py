"""Throwaway databases on a test PostgreSQL server."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from engine.db.session import asyncpg_dsn

__all__ = ["asyncpg_dsn"]


def _admin(server_url: str, sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def create_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A new empty database; returns its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
