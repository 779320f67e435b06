"""Queries about tenant API keys (only hashes are stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.statuses import ClienteStatus
from engine.db.models import ApiKey, Cliente
from engine.errors import NotFound

# `last_used_at` is written at most this often per key (not one UPDATE per request).
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyOwner:
    """Who a presented key belongs to."""

    api_key_id: int
    cliente_id: int
    cliente_status: ClienteStatus
    prefix: str


async def add_key(
    session: AsyncSession,
    cliente_id: int,
    *,
    name: str,
    prefix: str,
    key_sha256: str,
    created_by: str,
) -> ApiKey:
    row = ApiKey(
        cliente_id=cliente_id,
        name=name,
        prefix=prefix,
        key_sha256=key_sha256,
        created_by=created_by,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def list_keys(session: AsyncSession, cliente_id: int) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.cliente_id == cliente_id).order_by(ApiKey.id)
    )
    return list(rows)


async def revoke_key(session: AsyncSession, cliente_id: int, key_id: int) -> ApiKey:
    """Revoke one of the cliente's keys (idempotent); NotFound for another cliente's key."""
    row = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.cliente_id == cliente_id)
    )
    if row is None:
        raise NotFound(f"API key {key_id} does not exist for cliente {cliente_id}")
    if row.revoked_at is None:
        row.revoked_at = func.now()  # type: ignore[assignment]
        await session.flush()
        await session.refresh(row)
    return row


async def owner_of(session: AsyncSession, key_sha256: str) -> KeyOwner | None:
    """The cliente of a live (not revoked) key with this hash; its last use is recorded."""
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.cliente_id, Cliente.status, ApiKey.prefix)
            .join(Cliente, Cliente.id == ApiKey.cliente_id)
            .where(ApiKey.key_sha256 == key_sha256, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == row.id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < func.now() - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=func.now())
    )
    return KeyOwner(row.id, row.cliente_id, row.status, row.prefix)
