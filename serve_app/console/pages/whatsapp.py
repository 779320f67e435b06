"""Conectar WhatsApp: create or reconnect an instance, its QR code refreshed live until the
phone is CONECTADA (then its number), disconnect. The same `Instances` service as /v1."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from engine.errors import InvalidInput
from serve_app.console.web import PREFIX, CsrfChecked, CurrentViewer, render
from serve_app.schemas import NUMBER, RowId

router = APIRouter(prefix="/whatsapp")
PAGE = f"{PREFIX}/whatsapp"


@router.get("")
async def page(request: Request, viewer: CurrentViewer) -> Response:
    instances = await request.app.state.ctx.instances.list(viewer.cliente_id)
    return await render(request, "whatsapp.html", viewer, page="whatsapp", instances=instances)


@router.get("/instancias")
async def instances_fragment(request: Request, viewer: CurrentViewer) -> Response:
    """Polled every 2 s: the QR code changes as Evolution refreshes it, then the number."""
    instances = await request.app.state.ctx.instances.list(viewer.cliente_id)
    return await render(request, "_instances.html", viewer, instances=instances)


@router.post("", dependencies=[CsrfChecked])
async def connect(
    request: Request, viewer: CurrentViewer, number: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    number = number.strip()
    if number and not _is_number(number):
        raise InvalidInput("the number must be digits only, with the country code")
    await request.app.state.ctx.instances.provision(
        viewer.cliente_id, name=None, number=number or None
    )
    return RedirectResponse(PAGE, status_code=303)


@router.get("/{instancia_id}/qr.png")
async def qr_png(instancia_id: RowId, request: Request, viewer: CurrentViewer) -> Response:
    png = await request.app.state.ctx.instances.qr_png(viewer.cliente_id, instancia_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/{instancia_id}/reconectar", dependencies=[CsrfChecked])
async def reconnect(instancia_id: RowId, request: Request, viewer: CurrentViewer) -> Response:
    await request.app.state.ctx.instances.reconnect(viewer.cliente_id, instancia_id, number=None)
    return RedirectResponse(PAGE, status_code=303)


@router.post("/{instancia_id}/desconectar", dependencies=[CsrfChecked])
async def disconnect(instancia_id: RowId, request: Request, viewer: CurrentViewer) -> Response:
    await request.app.state.ctx.instances.logout(viewer.cliente_id, instancia_id)
    return RedirectResponse(PAGE, status_code=303)


def _is_number(value: str) -> bool:
    return re.fullmatch(NUMBER, value) is not None
