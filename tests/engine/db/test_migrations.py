"""The Alembic scripts build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import pytest
from alembic import command

from engine.db import migrate
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(database_url: str) -> None:
    assert migrate.check(database_url) == []


def test_migrations_downgrade_to_nothing_and_upgrade_again(postgres_admin_url: str) -> None:
    name, url = create_database(postgres_admin_url, "conversa_migrations")
    try:
        migrate.upgrade(url)
        command.downgrade(migrate.alembic_config(url), "base")
        migrate.upgrade(url)
        assert migrate.check(url) == []
    finally:
        drop_database(postgres_admin_url, name)


def test_revisions_keep_the_seed_numbering() -> None:
    names = sorted(p.stem for p in migrate.MIGRATIONS_DIR.joinpath("versions").glob("0*.py"))
    assert names[:3] == [
        "001_create_clientes",
        "002_add_cliente_settings_billing",
        "003_add_instancias_whatsapp",
    ]
