"""The real FastAPI app around a real `IngressContext`, served in this process over ASGI: each
call builds a replica (its own PostgreSQL pool), so a test may run several against one database
as several ingress replicas would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from engine.config import Settings
from serve_app.app import build_app
from serve_app.context import IngressContext


@asynccontextmanager
async def replica(
    settings: Settings, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of one in-process replica; `client`: the peer address it sees."""
    app = build_app(cors_origins=settings.cors_origins)
    app.state.ctx = IngressContext(settings)
    try:
        # A failing route answers 500 as a server would (the fuzz counts them), not raises.
        transport = httpx.ASGITransport(app=app, client=client, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://conversa") as http:
            yield http
    finally:
        await app.state.ctx.close()
