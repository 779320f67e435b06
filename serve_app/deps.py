"""FastAPI dependencies: the process's context, a database session, operator authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from engine.config import IngressMode, Settings
from engine.core.auth import bearer_token, token_matches
from engine.db.api_keys import KeyOwner
from engine.errors import PayloadTooLarge, Unauthenticated
from engine.services.api_keys import authenticate
from serve_app.context import IngressContext


async def get_context(request: Request) -> IngressContext:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop
    # (and now and then a thread start) on every request, the ack included.
    return request.app.state.ctx


Ctx = Annotated[IngressContext, Depends(get_context)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    """One session per request; a route that writes commits before it answers."""
    async with ctx.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def source_of(request: Request, settings: Settings) -> str | None:
    """The client's address for per-source limits; None when it cannot be known (HAProxy mode
    without FORWARDED_IP_HEADER: every request then comes from HAProxy itself)."""
    if settings.forwarded_ip_header:
        forwarded = request.headers.get(settings.forwarded_ip_header, "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last  # what the proxy in front of Conversa appended: not the client's to forge
    if settings.ingress_mode is IngressMode.HAPROXY:
        return None
    return request.client.host if request.client else None


async def require_operator(request: Request) -> None:
    ctx: IngressContext = request.app.state.ctx
    source = source_of(request, ctx.settings)
    ctx.limits.refuse_blocked(source)
    expected = ctx.settings.admin_token.get_secret_value()
    if not token_matches(bearer_token(request.headers.get("authorization")), expected):
        await ctx.limits.failed_authentication(source)
        raise Unauthenticated("operator endpoints need `Authorization: Bearer <ADMIN_TOKEN>`")


API_KEY_HEADER = "x-api-key"


async def require_tenant(request: Request) -> KeyOwner:
    """The cliente whose API key came with the request (`Authorization: Bearer cvk_…` or
    `X-API-Key: cvk_…`). Kept on `request.state.tenant` for whatever runs after (rate limits)."""
    ctx: IngressContext = request.app.state.ctx
    source = source_of(request, ctx.settings)
    ctx.limits.refuse_blocked(source)
    key = request.headers.get(API_KEY_HEADER) or bearer_token(request.headers.get("authorization"))
    try:
        owner = await authenticate(ctx.sessions, key)
    except Unauthenticated:
        await ctx.limits.failed_authentication(source)
        raise
    await ctx.limits.spend_api_key(owner.api_key_id)
    request.state.tenant = owner
    return owner


Tenant = Annotated[KeyOwner, Depends(require_tenant)]


async def upload_body(request: Request, ctx: IngressContext) -> bytes:
    """A document upload's raw body, refused (413) by its declared size before it is read."""
    limit = ctx.knowledge.max_upload_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(
            f"document is over the {limit}-byte limit (MAX_UPLOAD_BYTES); split it"
        )
    return await request.body()
