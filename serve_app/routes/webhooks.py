"""`POST /webhooks/evolution` (and the `byEvents` form `/webhooks/evolution/{event}`)."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.adapters import metrics
from engine.core.auth import bearer_token
from engine.errors import InvalidJson
from serve_app.deps import Ctx
from serve_app.schemas import WebhookAck

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

SECRET_HEADER = "x-conversa-secret"


async def _handle(request: Request, ctx: Ctx, path_event: str | None) -> JSONResponse:
    try:
        payload = json.loads(await request.body())
    except ValueError as e:
        raise InvalidJson("body is not valid JSON") from e
    secret = request.headers.get(SECRET_HEADER) or bearer_token(
        request.headers.get("authorization")
    )
    outcome = await ctx.inbox.handle(payload, secret=secret, path_event=path_event)
    metrics.webhook(outcome.status.value, cliente_id=outcome.cliente_id, detail=outcome.detail)
    if outcome.delivery is not None:
        ctx.hand_off(outcome.delivery)
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
