"""FastAPI dependencies: the process's context, a database session, operator authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.auth import bearer_token, token_matches
from engine.errors import Unauthenticated
from serve_app.context import IngressContext


def get_context(request: Request) -> IngressContext:
    return request.app.state.ctx


Ctx = Annotated[IngressContext, Depends(get_context)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    """One session per request; a route that writes commits before it answers."""
    async with ctx.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def require_operator(request: Request) -> None:
    ctx: IngressContext = request.app.state.ctx
    expected = ctx.settings.admin_token.get_secret_value()
    if not token_matches(bearer_token(request.headers.get("authorization")), expected):
        raise Unauthenticated("operator endpoints need `Authorization: Bearer <ADMIN_TOKEN>`")
