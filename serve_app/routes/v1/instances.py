"""The business's WhatsApp instances: connect a number (QR code), its state, logout, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from serve_app.deps import Ctx, Tenant
from serve_app.schemas import (
    ErrorBody,
    InstanceConnect,
    InstanceOut,
    InstanceReconnect,
    QrOut,
    RowId,
)

router = APIRouter(prefix="/instances", tags=["tenant: instances"])
EVOLUTION: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Evolution refused, or nothing to scan"},
    502: {"model": ErrorBody, "description": "Evolution could not be reached"},
    503: {"model": ErrorBody, "description": "Evolution is not configured"},
}


@router.post(
    "",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
    responses=EVOLUTION,
)
async def connect(tenant: Tenant, ctx: Ctx, body: InstanceConnect | None = None) -> InstanceOut:
    """Connect a WhatsApp number: the instance is created on Evolution with its webhook aimed at
    Conversa (a secret Conversa generated), and its QR code is ready at …/qr.png."""
    body = body or InstanceConnect()
    instancia = await ctx.instances.provision(tenant.cliente_id, name=body.name, number=body.number)
    return InstanceOut.model_validate(instancia)


@router.get("", response_model=list[InstanceOut])
async def list_instances(tenant: Tenant, ctx: Ctx) -> list[InstanceOut]:
    return [InstanceOut.model_validate(i) for i in await ctx.instances.list(tenant.cliente_id)]


@router.get("/{instancia_id}", response_model=InstanceOut)
async def get_instance(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> InstanceOut:
    return InstanceOut.model_validate(await ctx.instances.get(tenant.cliente_id, instancia_id))


@router.get("/{instancia_id}/qr", response_model=QrOut, responses=EVOLUTION)
async def qr(instancia_id: RowId, tenant: Tenant, ctx: Ctx, request: Request) -> QrOut:
    """The QR code to scan (raw) and the pairing code; 409 once connected."""
    view = await ctx.instances.qr(tenant.cliente_id, instancia_id)
    assert view.code is not None
    return QrOut(
        instance=view.instancia_id,
        status=view.status,
        code=view.code,
        pairing_code=view.pairing_code,
        png_url=str(request.url_for("qr_png", instancia_id=instancia_id)),
    )


@router.get(
    "/{instancia_id}/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the QR code, to scan with WhatsApp"},
        **EVOLUTION,
    },
)
async def qr_png(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> Response:
    """The QR code as a PNG image (WhatsApp → Linked devices → Link a device)."""
    png = await ctx.instances.qr_png(tenant.cliente_id, instancia_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/{instancia_id}/reconnect",
    response_model=InstanceOut,
    responses=EVOLUTION,
)
async def reconnect(
    instancia_id: RowId, tenant: Tenant, ctx: Ctx, body: InstanceReconnect | None = None
) -> InstanceOut:
    """Ask Evolution for a new QR code (or learn the phone is already connected)."""
    body = body or InstanceReconnect()
    instancia = await ctx.instances.reconnect(tenant.cliente_id, instancia_id, number=body.number)
    return InstanceOut.model_validate(instancia)


@router.get("/{instancia_id}/state", response_model=InstanceOut, responses=EVOLUTION)
async def state(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> InstanceOut:
    """The connection state, asked of Evolution now (and recorded)."""
    instancia = await ctx.instances.refresh_state(tenant.cliente_id, instancia_id)
    return InstanceOut.model_validate(instancia)


@router.post("/{instancia_id}/logout", response_model=InstanceOut, responses=EVOLUTION)
async def logout(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> InstanceOut:
    """Disconnect the phone; reconnect for a new QR code."""
    return InstanceOut.model_validate(await ctx.instances.logout(tenant.cliente_id, instancia_id))


@router.post(
    "/{instancia_id}/rotate-secret",
    response_model=InstanceOut,
    responses=EVOLUTION,
)
async def rotate_secret(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> InstanceOut:
    """A new webhook secret, set on Evolution and in Conversa together."""
    instancia = await ctx.instances.rotate_secret(tenant.cliente_id, instancia_id)
    return InstanceOut.model_validate(instancia)


@router.delete(
    "/{instancia_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=EVOLUTION,
)
async def delete(instancia_id: RowId, tenant: Tenant, ctx: Ctx) -> Response:
    """Delete the instance on Evolution and in Conversa (its conversations stay)."""
    await ctx.instances.delete(tenant.cliente_id, instancia_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
