"""Queries about one cliente's WhatsApp instances (provisioning, tokens, secret rotation).

Every query is keyed by cliente: another cliente's instance is NotFound, never found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.auth import hash_secret
from engine.db.models import InstanciaWhatsApp
from engine.errors import NotFound


async def get_instance(
    session: AsyncSession, cliente_id: int, instancia_id: int, *, lock: bool = False
) -> InstanciaWhatsApp:
    query = select(InstanciaWhatsApp).where(
        InstanciaWhatsApp.id == instancia_id, InstanciaWhatsApp.cliente_id == cliente_id
    )
    if lock:
        query = query.with_for_update()
    instancia = await session.scalar(query)
    if instancia is None:
        raise NotFound(f"instance {instancia_id} does not exist for cliente {cliente_id}")
    return instancia


async def set_token(
    session: AsyncSession,
    instancia_id: int,
    *,
    api_key_encrypted: str,
    qr_code: str | None,
    pairing_code: str | None,
) -> None:
    await _update(
        session,
        instancia_id,
        api_key_encrypted=api_key_encrypted,
        qr_code=qr_code,
        pairing_code=pairing_code,
    )


async def rotate_secret(session: AsyncSession, instancia_id: int, new_secret: str) -> str:
    """Make `new_secret` the instance's secret; the old one stays valid for the overlap.
    Returns the old one's hash (to put back if Evolution cannot be told)."""
    old = await session.scalar(
        select(InstanciaWhatsApp.webhook_secret_sha256).where(InstanciaWhatsApp.id == instancia_id)
    )
    await _update(
        session,
        instancia_id,
        webhook_secret_sha256=hash_secret(new_secret),
        previous_secret_sha256=old,
        secret_rotated_at=func.now(),
    )
    return str(old)


async def restore_secret(session: AsyncSession, instancia_id: int, old_sha256: str) -> None:
    await _update(
        session,
        instancia_id,
        webhook_secret_sha256=old_sha256,
        previous_secret_sha256=None,
        secret_rotated_at=None,
    )


async def delete_instance(session: AsyncSession, instancia_id: int) -> None:
    await session.execute(delete(InstanciaWhatsApp).where(InstanciaWhatsApp.id == instancia_id))


async def _update(session: AsyncSession, instancia_id: int, **values: Any) -> None:
    await session.execute(
        update(InstanciaWhatsApp)
        .where(InstanciaWhatsApp.id == instancia_id)
        .values(**values, updated_at=func.now())
    )
