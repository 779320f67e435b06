"""Queries about clientes and their WhatsApp instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.auth import SECRET_ROTATION_OVERLAP, hash_secret
from engine.core.behaviour import ClienteOverrides
from engine.core.statuses import ClienteStatus, InstanciaStatus
from engine.db.models import Cliente, InstanciaWhatsApp
from engine.errors import Conflict, NotFound


@dataclass(frozen=True)
class InstanceRoute:
    """What the webhook path needs to know about the instance a post claims to come from."""

    instancia_id: int
    instance_id: str
    cliente_id: int
    cliente_status: ClienteStatus
    numero: str | None
    overrides: ClienteOverrides


def route_named(
    routes: list[InstanceRoute], *, instance: str | None, numero: str | None
) -> InstanceRoute | None:
    """The route a post is for: by the instance name it gives, else by its owner's number."""
    by_name = next((r for r in routes if instance and r.instance_id == instance), None)
    return by_name or next((r for r in routes if numero and r.numero == numero), None)


# The cliente columns that hold its behaviour overrides (named like ClienteOverrides' fields).
OVERRIDE_COLUMNS = tuple(getattr(Cliente, name) for name in ClienteOverrides.field_names())


def overrides_of(row: Any) -> ClienteOverrides:
    """A cliente's overrides from a result row that selected `OVERRIDE_COLUMNS`."""
    return ClienteOverrides(**{name: getattr(row, name) for name in ClienteOverrides.field_names()})


async def create_cliente(session: AsyncSession, **fields: Any) -> Cliente:
    cliente = Cliente(**fields)
    session.add(cliente)
    await session.flush()
    await session.refresh(cliente)
    return cliente


async def get_cliente(session: AsyncSession, cliente_id: int) -> Cliente:
    cliente = await session.get(Cliente, cliente_id)
    if cliente is None:
        raise NotFound(f"cliente {cliente_id} does not exist")
    return cliente


async def update_cliente(session: AsyncSession, cliente_id: int, **fields: Any) -> Cliente:
    cliente = await get_cliente(session, cliente_id)
    for name, value in fields.items():
        setattr(cliente, name, value)
    cliente.updated_at = func.now()
    await session.flush()
    await session.refresh(cliente)
    return cliente


async def register_instance(
    session: AsyncSession,
    cliente_id: int,
    *,
    instance_id: str,
    numero: str | None,
    webhook_secret: str,
    api_key_encrypted: str | None,
    provisioned: bool = False,
) -> InstanciaWhatsApp:
    await get_cliente(session, cliente_id)
    instancia = InstanciaWhatsApp(
        cliente_id=cliente_id,
        instance_id=instance_id,
        numero=numero,
        status=InstanciaStatus.PENDENTE,
        webhook_secret_sha256=hash_secret(webhook_secret),
        api_key_encrypted=api_key_encrypted,
        provisioned=provisioned,
    )
    session.add(instancia)
    try:
        await session.flush()
    except IntegrityError as e:
        raise Conflict(f"instance {instance_id!r} is already registered") from e
    await session.refresh(instancia)
    return instancia


async def list_instances(session: AsyncSession, cliente_id: int) -> list[InstanciaWhatsApp]:
    rows = await session.scalars(
        select(InstanciaWhatsApp)
        .where(InstanciaWhatsApp.cliente_id == cliente_id)
        .order_by(InstanciaWhatsApp.id)
    )
    return list(rows)


async def instance_routes_by_secret(
    session: AsyncSession, *, secret_sha256: str
) -> list[InstanceRoute]:
    """The instances whose webhook secret has this SHA-256 (usually one; none for a wrong or
    unknown secret). One indexed lookup, the same for every post whatever instance it names.
    The secret a rotation replaced still matches while its overlap lasts (Evolution may still
    retry a post with it)."""
    rows = await session.execute(
        select(
            InstanciaWhatsApp.id,
            InstanciaWhatsApp.instance_id,
            InstanciaWhatsApp.cliente_id,
            Cliente.status,
            InstanciaWhatsApp.numero,
            *OVERRIDE_COLUMNS,
        )
        .join(Cliente, Cliente.id == InstanciaWhatsApp.cliente_id)
        .where(
            or_(
                InstanciaWhatsApp.webhook_secret_sha256 == secret_sha256,
                and_(
                    InstanciaWhatsApp.previous_secret_sha256 == secret_sha256,
                    InstanciaWhatsApp.secret_rotated_at > func.now() - SECRET_ROTATION_OVERLAP,
                ),
            )
        )
        .order_by(InstanciaWhatsApp.id)
    )
    return [
        InstanceRoute(
            instancia_id=row.id,
            instance_id=row.instance_id,
            cliente_id=row.cliente_id,
            cliente_status=row.status,
            numero=row.numero,
            overrides=overrides_of(row),
        )
        for row in rows
    ]


async def set_instance_state(
    session: AsyncSession,
    instancia_id: int,
    *,
    status: InstanciaStatus | None = None,
    qr_code: str | None = None,
    pairing_code: str | None = None,
    numero: str | None = None,
    clear_qr: bool = False,
) -> None:
    """Change what is given; `clear_qr` forgets the QR code (scanned, or logged out)."""
    values: dict[str, Any] = {"updated_at": func.now()}
    if status is not None:
        values["status"] = status
    if qr_code is not None:
        values["qr_code"] = qr_code
        values["pairing_code"] = pairing_code
    if clear_qr:
        values["qr_code"] = values["pairing_code"] = None
    if numero is not None:
        values["numero"] = numero
    await session.execute(
        update(InstanciaWhatsApp).where(InstanciaWhatsApp.id == instancia_id).values(**values)
    )


async def list_clientes(session: AsyncSession) -> list[Cliente]:
    """Every cliente, by id (the operator's switcher in the console)."""
    return list(await session.scalars(select(Cliente).order_by(Cliente.id)))
