"""Tenant API keys: made by an operator or by the cliente itself, shown once, revocable."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core.api_keys import looks_like_api_key, new_api_key
from engine.core.auth import hash_secret
from engine.db import api_keys as api_keys_db
from engine.db import clientes as clientes_db
from engine.db.models import ApiKey
from engine.errors import Unauthenticated


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    key: str  # the only time the key itself exists outside its holder's hands


async def create_key(
    session: AsyncSession, cliente_id: int, *, name: str, created_by: str
) -> CreatedKey:
    """A new key for the cliente (NotFound if it does not exist). Not committed."""
    await clientes_db.get_cliente(session, cliente_id)
    made = new_api_key()
    row = await api_keys_db.add_key(
        session,
        cliente_id,
        name=name,
        prefix=made.prefix,
        key_sha256=made.sha256,
        created_by=created_by,
    )
    return CreatedKey(row, made.key)


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], key: str | None
) -> api_keys_db.KeyOwner:
    """The owner of a presented key; Unauthenticated for a missing, unknown or revoked one."""
    if not looks_like_api_key(key):
        raise Unauthenticated(
            "the tenant API needs `Authorization: Bearer <API key>` (keys start with cvk_)"
        )
    assert key is not None
    async with sessions() as session:
        owner = await api_keys_db.owner_of(session, hash_secret(key))
        await session.commit()
    if owner is None:
        raise Unauthenticated("this API key is unknown or was revoked")
    return owner
