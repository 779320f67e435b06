"""What tests that run Conversa outside the session's stack (node loss, multi-node, the
in-process pipeline) set up in their own database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

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
    status: str = "ATIVO",
    **cliente_fields: Any,
) -> ScenarioCliente:
    """A cliente (ATIVO unless told) with one registered instance `{instance_prefix}-{id}` and a
    fresh webhook secret (its token sealed as Conversa keeps it). The benchmarks that drive the
    ingress in-process use it too."""
    secret = uuid.uuid4().hex * 2
    async with sessions() as session:
        cliente = await clientes_db.create_cliente(
            session, nome=nome, status=status, **cliente_fields
        )
        instance = f"{instance_prefix}-{cliente.id}"
        await clientes_db.register_instance(
            session,
            cliente.id,
            instance_id=instance,
            numero=None,
            webhook_secret=secret,
            api_key_encrypted=SecretBox(settings.secrets_key.get_secret_value()).seal(
                f"instance-key-{cliente.id}"
            ),
        )
        await session.commit()
    return ScenarioCliente(cliente.id, instance, secret)
