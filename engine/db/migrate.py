"""Apply and check Alembic migrations from code (the run path and tests use the same scripts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from engine.db.models import Base
from engine.db.session import async_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str, *, secrets_key: str | None = None) -> Config:
    """`secrets_key` seals secrets a migration moves into encrypted columns (unset: Settings')."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    if secrets_key is not None:
        config.attributes["secrets_key"] = secrets_key
    return config


def upgrade(database_url: str, *, secrets_key: str | None = None) -> None:
    """Bring the database to the newest revision (idempotent)."""
    command.upgrade(alembic_config(database_url, secrets_key=secrets_key), "head")


async def schema_drift(database_url: str) -> list[object]:
    """Differences between the models and the migrated database; empty when they agree."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


def check(database_url: str) -> list[object]:
    return asyncio.run(schema_drift(database_url))
