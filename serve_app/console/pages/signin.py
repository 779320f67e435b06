"""Sign in with a cliente's API key (or the operator token), sign out, switch cliente."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from engine.core.api_keys import looks_like_api_key
from engine.core.auth import hash_secret, token_matches
from engine.core.console import ConsoleSession
from engine.db import api_keys as api_keys_db
from engine.db import clientes as clientes_db
from serve_app.console.web import (
    PREFIX,
    SIGNIN_CSRF_COOKIE,
    CsrfChecked,
    end_session,
    new_session,
    operator_token_matches,
    render,
    set_cookie,
    signed_in,
    start_session,
    switch_cliente,
)
from serve_app.deps import source_of

log = logging.getLogger(__name__)
router = APIRouter()
SIGNIN_FORM_TTL_S = 3600


@router.get("/entrar")
async def signin_page(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = await render(request, "signin.html", None, csrf=token)
    set_cookie(request, response, SIGNIN_CSRF_COOKIE, token, SIGNIN_FORM_TTL_S)
    return response


@router.post("/entrar")
async def signin(
    request: Request,
    key: Annotated[str, Form(max_length=300)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """One generic refusal for every failure (unknown, revoked, malformed key, wrong token,
    stale form): the page tells nothing about which keys exist."""
    ctx = request.app.state.ctx
    source = source_of(request, ctx.settings)
    ctx.limits.refuse_blocked(source)  # a guesser over its failures: 429 before any check
    key = key.strip()
    form_ok = token_matches(csrf, request.cookies.get(SIGNIN_CSRF_COOKIE) or "")
    session = await _session_for(request, key) if form_ok else None
    if session is None:
        log.info("console sign-in refused", extra={"form_ok": form_ok})  # never the key
        await ctx.limits.failed_authentication(source)
        token = secrets.token_urlsafe(32)
        response = await render(
            request, "signin.html", None, status_code=401, csrf=token, failed=True
        )
        set_cookie(request, response, SIGNIN_CSRF_COOKIE, token, SIGNIN_FORM_TTL_S)
        return response
    log.info(
        "console sign-in", extra={"cliente_id": session.cliente_id, "operator": session.operator}
    )
    response = RedirectResponse(f"{PREFIX}/painel", status_code=303)
    start_session(request, response, session)
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path=PREFIX)
    return response


async def _session_for(request: Request, key: str) -> ConsoleSession | None:
    if operator_token_matches(request, key):
        return new_session(cliente_id=None, key=None, operator=True)
    if not looks_like_api_key(key):
        return None
    async with request.app.state.ctx.sessions() as db:
        owner = await api_keys_db.owner_of(db, hash_secret(key))
        await db.commit()
    if owner is None:
        return None
    return new_session(cliente_id=owner.cliente_id, key=key, operator=False)


@router.post("/sair", dependencies=[CsrfChecked])
async def signout() -> Response:
    response = RedirectResponse(f"{PREFIX}/entrar", status_code=303)
    end_session(response)
    return response


@router.post("/cliente", dependencies=[CsrfChecked])
async def choose_cliente(
    request: Request,
    session: Annotated[ConsoleSession, Depends(signed_in)],
    cliente_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
) -> Response:
    """The operator's switcher: look at another cliente."""
    async with request.app.state.ctx.sessions() as db:
        await clientes_db.get_cliente(db, cliente_id)
    response = RedirectResponse(f"{PREFIX}/painel", status_code=303)
    switch_cliente(request, response, session, cliente_id)
    return response
