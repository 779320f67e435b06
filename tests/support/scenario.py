"""What the separate-process scenarios (node loss, multi-node) set up in their own database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.db import clientes as clientes_db


@dataclass(frozen=True)
class ScenarioCliente:
    id: int
    instance: str
    secret: str


async def make_cliente(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    nome: str,
    instance_prefix: str,
    debounce_s: float,
    max_wait_s: float,
) -> ScenarioCliente:
    """An ATIVO cliente with one registered instance (its token sealed as Conversa keeps it)."""
    secret = uuid.uuid4().hex * 2
    async with sessions() as session:
        cliente = await clientes_db.create_cliente(
            session, nome=nome, status="ATIVO", debounce_s=debounce_s, max_wait_s=max_wait_s
        )
        instance = f"{instance_prefix}-{cliente.id}"
        await clientes_db.register_instance(
            session,
            cliente.id,
            instance_id=instance,
            numero=None,
            webhook_secret=secret,
            api_key_encrypted=SecretBox(settings.secrets_key.get_secret_value()).seal("k"),
        )
        await session.commit()
    return ScenarioCliente(cliente.id, instance, secret)
