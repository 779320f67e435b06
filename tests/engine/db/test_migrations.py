"""The Alembic scripts build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from alembic import command
from cryptography.fernet import Fernet

from engine.db import migrate
from tests.support.postgres import asyncpg_dsn, create_database, drop_database

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


def test_instance_tokens_stored_in_plain_text_are_sealed_by_010_and_opened_by_its_downgrade(
    postgres_admin_url: str,
) -> None:
    key = Fernet.generate_key().decode()
    name, url = create_database(postgres_admin_url, "conversa_migrations")
    config = migrate.alembic_config(url, secrets_key=key)

    async def sql(statement: str) -> object:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    try:
        command.upgrade(config, "007")
        cliente = asyncio.run(
            sql("INSERT INTO clientes (nome, status) VALUES ('Loja', 'ATIVO') RETURNING id")
        )
        asyncio.run(
            sql(
                "INSERT INTO instancias_whatsapp (cliente_id, instance_id, status, "
                f"webhook_secret_sha256, api_key) VALUES ({cliente}, 'loja', 'PENDENTE', 'x', "
                "'token-in-plain-text')"
            )
        )
        command.upgrade(config, "010")
        sealed = asyncio.run(sql("SELECT api_key_encrypted FROM instancias_whatsapp"))
        assert isinstance(sealed, str) and "token-in-plain-text" not in sealed
        assert Fernet(key).decrypt(sealed.encode()).decode() == "token-in-plain-text"

        command.downgrade(config, "007")
        assert asyncio.run(sql("SELECT api_key FROM instancias_whatsapp")) == "token-in-plain-text"
    finally:
        drop_database(postgres_admin_url, name)
