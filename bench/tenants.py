"""A cliente with one WhatsApp instance, written straight to the database, for the benchmarks
that drive the ingress in-process (no operator API to go through)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BenchTenant:
    cliente_id: int
    instance: str
    secret: str


async def create_bench_tenant(context: Any, *, status: str) -> BenchTenant:
    """A cliente `bench` in `status` with instance `bench-{id}` and a fresh webhook secret,
    through `context.sessions` (an `IngressContext`)."""
    from engine.db import clientes as clientes_db

    secret = uuid.uuid4().hex * 2
    async with context.sessions() as session:
        cliente = await clientes_db.create_cliente(session, nome="bench", status=status)
        instance = f"bench-{cliente.id}"
        await clientes_db.register_instance(
            session,
            cliente.id,
            instance_id=instance,
            numero=None,
            webhook_secret=secret,
            api_key_encrypted=None,
        )
        await session.commit()
    return BenchTenant(cliente.id, instance, secret)
