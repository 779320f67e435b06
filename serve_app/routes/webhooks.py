"""`POST /webhooks/evolution` (and the `byEvents` form `/webhooks/evolution/{event}`).

The order is the defence: a declared `Content-Length` over `WEBHOOK_MAX_BODY_BYTES` is refused
(413) before anything else; a source over its failed-authentication limit is refused (429); the
secret header alone then finds the instance (401 otherwise, before the body is read; counted
against the source); the body is read chunk by chunk and refused (413) as soon as it passes
the limit; only then is it parsed (400 for bad JSON or nesting too deep, 422 for a bad shape).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from engine.adapters import metrics
from engine.core.auth import bearer_token
from engine.errors import InvalidJson, PayloadTooLarge, Unauthenticated
from serve_app.deps import Ctx, source_of
from serve_app.schemas import WebhookAck

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

SECRET_HEADER = "x-conversa-secret"


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"webhook body is over WEBHOOK_MAX_BODY_BYTES ({max_bytes} bytes); Conversa needs no "
        "media in webhooks: turn the instance's webhook `base64` off"
    )


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, refused as soon as more than `max_bytes` have arrived."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except ClientDisconnect as e:  # nobody to answer; a clear line in the log instead of a 500
        raise InvalidJson("the client left before sending the whole body") from e
    return bytes(body)


async def _handle(request: Request, ctx: Ctx, path_event: str | None) -> JSONResponse:
    max_bytes = ctx.settings.webhook_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    source = source_of(request, ctx.settings)
    ctx.limits.refuse_blocked(source)
    secret = request.headers.get(SECRET_HEADER) or bearer_token(
        request.headers.get("authorization")
    )
    try:
        outcome = await ctx.inbox.handle(
            secret=secret,
            read_body=lambda: read_body(request, max_bytes=max_bytes),
            path_event=path_event,
        )
    except Unauthenticated:
        await ctx.limits.failed_authentication(source)
        raise
    metrics.webhook(outcome.status.value, cliente_id=outcome.cliente_id, detail=outcome.detail)
    ctx.hand_off(outcome.delivery, retire=outcome.retired_session_ids)
    log.info(
        "webhook",
        extra={
            "cliente_id": outcome.cliente_id,
            "outcome": outcome.status.value,
            "detail": outcome.detail,
            "chat": outcome.delivery.chat_jid if outcome.delivery else None,
            "message_id": outcome.delivery.message.message_id if outcome.delivery else None,
        },
    )
    # Built by hand: the ack is the hot path, and `WebhookAck` documents its shape.
    return JSONResponse({"status": outcome.status.value, "detail": outcome.detail})


@router.post("/webhooks/evolution", response_model=WebhookAck)
async def evolution_webhook(request: Request, ctx: Ctx) -> JSONResponse:
    return await _handle(request, ctx, None)


@router.post("/webhooks/evolution/{event}", response_model=WebhookAck)
async def evolution_webhook_by_event(event: str, request: Request, ctx: Ctx) -> JSONResponse:
    return await _handle(request, ctx, event)
