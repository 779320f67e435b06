"""The FastAPI application shared by the Serve deployment and the plain-uvicorn benchmark twin."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.errors import (
    Conflict,
    ConversaError,
    DatabaseUnavailable,
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
    DatabaseUnavailable: 503,
}


RETRY_AFTER_S = 5  # a 503 (PostgreSQL away): worth retrying soon


def status_for(error: ConversaError) -> int:
    return next((STATUS_BY_ERROR[c] for c in type(error).__mro__ if c in STATUS_BY_ERROR), 500)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConversaError)
    status = status_for(error)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


def build_app() -> FastAPI:
    """Routes only; whoever runs the app puts an `IngressContext` in `app.state.ctx`."""
    app = FastAPI(title="Conversa", version="0.1.0")
    app.add_exception_handler(ConversaError, _domain_error)
    app.include_router(webhooks.router)
    app.include_router(admin.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        settings = request.app.state.ctx.settings
        return {"status": "ok", "ingress_mode": settings.ingress_mode.value}

    return app
