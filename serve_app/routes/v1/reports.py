"""The business's history out: the export (JSONL or CSV, streamed) and analytics per day."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from engine.core.history import DayRange
from engine.services import history
from engine.services.history import ExportFormat
from serve_app.deps import Ctx, Tenant
from serve_app.schemas import AnalyticsOut, DayStatsOut

router = APIRouter(tags=["tenant: reports"])

Since = Query(..., description="First day (YYYY-MM-DD), included.")
Until = Query(..., description="Last day (YYYY-MM-DD), included; at most 366 days in all.")
Tz = Query("UTC", description="IANA timezone the days are in, e.g. America/Sao_Paulo.")


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}, "text/csv": {}},
            "description": "one message per line, oldest first",
        }
    },
)
async def export(
    tenant: Tenant,
    ctx: Ctx,
    since: date = Since,
    until: date = Until,
    tz: str = Tz,
    format: Annotated[ExportFormat, Query()] = ExportFormat.JSONL,
) -> StreamingResponse:
    """Every message in and out of the days given, streamed while it is read."""
    days = DayRange.parse(since, until, tz)
    name = f"conversa-{tenant.cliente_id}-{since}-{until}.{format.value}"
    return StreamingResponse(
        history.export(ctx.sessions, tenant.cliente_id, days, format),
        media_type=format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/analytics", response_model=AnalyticsOut)
async def analytics(
    tenant: Tenant, ctx: Ctx, since: date = Since, until: date = Until, tz: str = Tz
) -> AnalyticsOut:
    """Per day: messages in and out, replies (by kind), median time to reply, LLM tokens,
    active conversations and human takeovers."""
    days = DayRange.parse(since, until, tz)
    stats = await history.analytics(ctx.sessions, tenant.cliente_id, days)
    return AnalyticsOut(tz=tz, days=[DayStatsOut.model_validate(s) for s in stats])
