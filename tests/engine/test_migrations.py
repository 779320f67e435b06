"""The Alembic scripts build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from engine.db import migrate

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(database_url: str) -> None:
    assert migrate.check(database_url) == []


def test_migrations_downgrade_to_nothing_and_upgrade_again(postgres_admin_url: str) -> None:
    name = f"conversa_migrations_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(postgres_admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        command.downgrade(migrate.alembic_config(url), "base")
        migrate.upgrade(url)
        assert migrate.check(url) == []
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_revisions_keep_the_seed_numbering() -> None:
    names = sorted(p.stem for p in migrate.MIGRATIONS_DIR.joinpath("versions").glob("0*.py"))
    assert names[:3] == [
        "001_create_clientes",
        "002_add_cliente_settings_billing",
        "003_add_instancias_whatsapp",
    ]
