"""The FastAPI application shared by the Serve deployment and the plain-uvicorn benchmark twin."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.adapters import metrics
from engine.errors import (
    Conflict,
    ConversaError,
    InvalidInput,
    InvalidJson,
    MalformedWebhook,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnknownInstance,
    UnsupportedMediaType,
)
from serve_app.routes import admin, webhooks
from serve_app.schemas import ReadinessOut

# The one place a domain error becomes an HTTP status (the most specific class wins).
STATUS_BY_ERROR: dict[type[ConversaError], int] = {
    InvalidJson: 400,
    MalformedWebhook: 422,
    InvalidInput: 422,
    Unauthenticated: 401,
    UnknownInstance: 404,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
}


def status_for(error: ConversaError) -> int:
    return next((STATUS_BY_ERROR[c] for c in type(error).__mro__ if c in STATUS_BY_ERROR), 500)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConversaError)
    status = status_for(error)
    if request.url.path.startswith("/webhooks/evolution") and status < 500:
        metrics.webhook_rejected(status)
    return JSONResponse({"detail": str(error)}, status_code=status)


def build_app() -> FastAPI:
    """Routes only; whoever runs the app puts an `IngressContext` in `app.state.ctx`."""
    app = FastAPI(title="Conversa", version="0.1.0")
    app.add_exception_handler(ConversaError, _domain_error)
    app.include_router(webhooks.router)
    app.include_router(admin.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        """The process is up (liveness); says nothing about its dependencies."""
        settings = request.app.state.ctx.settings
        return {"status": "ok", "ingress_mode": settings.ingress_mode.value}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=ReadinessOut,
        responses={503: {"model": ReadinessOut}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """PostgreSQL, Ray, Chroma and Evolution reachable: 200, else 503 naming what failed."""
        checks = await request.app.state.ctx.readiness.run()
        failed = [c.name for c in checks if not c.ok]
        body = ReadinessOut(
            status="not ready" if failed else "ready",
            failed=failed,
            checks={c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        )
        return JSONResponse(body.model_dump(), status_code=503 if failed else 200)

    return app
