"""Painel: today's and the last 30 days' numbers from the analytics service (replies, time to
reply, takeovers, tokens) as small bar charts drawn on the server, and the billing status with a
link to Stripe's Checkout (not paying yet) or Portal (paying)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from engine.core.history import DayRange, DayStats
from engine.db import clientes as clientes_db
from engine.services import history
from serve_app.console.web import PREFIX, CsrfChecked, CurrentViewer, render

router = APIRouter(prefix="/painel")
DAYS_SHOWN = 30
SERIES = (  # (catalogue key, what is drawn per day)
    ("dash.replies", lambda d: d.replies),
    ("dash.reply_time", lambda d: d.median_reply_s or 0.0),
    ("dash.takeovers", lambda d: d.takeovers),
    ("dash.tokens", lambda d: d.llm_tokens),
)


@router.get("")
async def page(request: Request, viewer: CurrentViewer) -> Response:
    ctx = request.app.state.ctx
    async with ctx.sessions() as db:
        cliente = await clientes_db.get_cliente(db, viewer.cliente_id)
    tz = (cliente.business_hours or {}).get("timezone", "UTC")
    today = datetime.now(ZoneInfo(tz)).date()
    days = DayRange.parse(today - timedelta(days=DAYS_SHOWN - 1), today, tz)
    stats: list[DayStats] = await history.analytics(ctx.sessions, viewer.cliente_id, days)
    billing = await ctx.billing.status(viewer.cliente_id)
    return await render(
        request,
        "dashboard.html",
        viewer,
        page="dashboard",
        tz=tz,
        today=stats[-1],
        charts=[_chart(key, [pick(d) for d in stats], stats) for key, pick in SERIES],
        messages_in=sum(d.messages_in for d in stats),
        billing=billing,
    )


def _chart(key: str, values: list[float], stats: list[DayStats]) -> dict[str, Any]:
    """Bars scaled to the highest day; the total (or the median of the days with replies)."""
    top = max(values) or 1
    nonzero = sorted(v for v in values if v)
    summary = nonzero[len(nonzero) // 2] if key == "dash.reply_time" and nonzero else sum(values)
    return {
        "key": key,
        "today": round(values[-1], 1),
        "summary": round(summary, 1),
        "bars": [
            {"day": s.day.isoformat(), "value": v, "height": round(40 * v / top, 1)}
            for s, v in zip(stats, values, strict=True)
        ],
    }


@router.post("/assinar", dependencies=[CsrfChecked])
async def checkout(request: Request, viewer: CurrentViewer) -> Response:
    url = await request.app.state.ctx.billing.checkout_url(
        viewer.cliente_id, success_url=_back(request), cancel_url=_back(request)
    )
    return RedirectResponse(url, status_code=303)


@router.post("/portal", dependencies=[CsrfChecked])
async def portal(request: Request, viewer: CurrentViewer) -> Response:
    url = await request.app.state.ctx.billing.portal_url(
        viewer.cliente_id, return_url=_back(request)
    )
    return RedirectResponse(url, status_code=303)


def _back(request: Request) -> str:
    return f"{request.app.state.ctx.settings.base_url}{PREFIX}/painel"
