"""The FastAPI application shared by the Serve deployment and the plain-uvicorn benchmark twin."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from engine.adapters import metrics
from engine.core.rate_limit import retry_after_header
from engine.errors import (
    Conflict,
    ConversaError,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    InvalidJson,
    InvalidSignature,
    MalformedWebhook,
    NotConfigured,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    UpstreamRefused,
    UpstreamUnavailable,
)
from serve_app import console
from serve_app.routes import admin, stripe_webhook, v1, webhooks
from serve_app.schemas import ReadinessOut

# The one place a domain error becomes an HTTP status (the most specific class wins).
STATUS_BY_ERROR: dict[type[ConversaError], int] = {
    InvalidJson: 400,
    InvalidSignature: 400,
    MalformedWebhook: 422,
    InvalidInput: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    UpstreamRefused: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,
    UpstreamUnavailable: 502,
    NotConfigured: 503,
    DatabaseUnavailable: 503,
}
TENANT_PREFIX = "/v1"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}


RETRY_AFTER_S = 5  # a 503 (PostgreSQL away): worth retrying soon


def status_for(error: ConversaError) -> int:
    return next((STATUS_BY_ERROR[c] for c in type(error).__mro__ if c in STATUS_BY_ERROR), 500)


def code_for(error: ConversaError) -> str:
    """The error's stable code in the tenant API: its class name in snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _tenant(request: Request) -> bool:
    return request.url.path == TENANT_PREFIX or request.url.path.startswith(TENANT_PREFIX + "/")


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict:  # type: ignore[type-arg]
    """The tenant API's one error shape: `{"error": {"code", "message", "fields"?}}`."""
    detail: dict[str, object] = {"code": code, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return {"error": detail}


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ConversaError)
    status = status_for(error)
    if request.url.path.startswith("/webhooks/evolution") and status < 500:
        metrics.webhook_rejected(status)
    # PostgreSQL away: Evolution (and any client) should retry shortly.
    headers = (
        {"Retry-After": str(RETRY_AFTER_S)} if isinstance(error, DatabaseUnavailable) else None
    )
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": retry_after_header(error.retry_after_s)}
    if console.is_console(request):
        page = await console.error_page(request, status, str(error))
        page.headers.update(headers or {})
        return page
    if _tenant(request):
        body = error_body(code_for(error), str(error))
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if console.is_console(request):
        problems = "; ".join(str(e.get("msg", "invalid")) for e in error.errors())
        return await console.error_page(request, 422, problems or "invalid request")
    if not _tenant(request):
        return await request_validation_exception_handler(request, error)
    fields = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())),
            "message": str(e.get("msg", "invalid")),
        }
        for e in jsonable_encoder(error.errors())
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return JSONResponse(error_body("validation_error", message, fields), status_code=422)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if console.is_console(request):
        return await console.error_page(request, error.status_code, str(error.detail))
    if not _tenant(request):
        return await http_exception_handler(request, error)
    code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    return JSONResponse(
        error_body(code, str(error.detail)),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


def build_app(*, cors_origins: Sequence[str] = ()) -> FastAPI:
    """Routes only; whoever runs the app puts an `IngressContext` in `app.state.ctx`.
    `cors_origins`: the browser origins allowed cross-origin (none: no CORS headers at all)."""
    app = FastAPI(title="Conversa", version="0.1.0")
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_exception_handler(ConversaError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.include_router(webhooks.router)
    app.include_router(stripe_webhook.router)
    app.include_router(admin.router)
    app.include_router(v1.router)
    console.install(app)

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
