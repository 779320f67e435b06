"""FastAPI dependencies: the process's context and operator authentication."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine.core.auth import bearer_token, token_matches
from engine.errors import Unauthenticated
from serve_app.context import IngressContext


def get_context(request: Request) -> IngressContext:
    return request.app.state.ctx


Ctx = Annotated[IngressContext, Depends(get_context)]


def require_operator(request: Request) -> None:
    ctx: IngressContext = request.app.state.ctx
    expected = ctx.settings.admin_token.get_secret_value()
    if not token_matches(bearer_token(request.headers.get("authorization")), expected):
        raise Unauthenticated("operator endpoints need `Authorization: Bearer <ADMIN_TOKEN>`")
