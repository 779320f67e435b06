"""What every console page shares: the signed session cookie, who is looking (and at which
cliente), the CSRF check of every POST, the language, and rendering a template."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.templating import Jinja2Templates

from engine.core.auth import hash_secret, token_matches
from engine.core.console import (
    ConsoleSession,
    open_session,
    seal_session,
    served_over_https,
    session_secret,
)
from engine.db import api_keys as api_keys_db
from engine.db import clientes as clientes_db
from engine.errors import Forbidden, NotFound, Unauthenticated
from serve_app.console.i18n import pick_lang, translate
from serve_app.context import IngressContext

PREFIX = "/console"
SESSION_COOKIE = "conversa_session"
LANG_COOKIE = "conversa_lang"
SIGNIN_CSRF_COOKIE = "conversa_signin"  # double-submit token of the sign-in form
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"

# Pages hold a session's data and its CSRF token: never cached, never framed by another site.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _ctx(request: Request) -> IngressContext:
    return request.app.state.ctx


def _secret(ctx: IngressContext) -> bytes:
    settings = ctx.settings
    return session_secret(
        settings.secrets_key.get_secret_value(), settings.admin_token.get_secret_value()
    )


def is_https(request: Request) -> bool:
    return served_over_https(
        request.url.scheme,
        request.headers.get("x-forwarded-proto"),
        trust_forwarded=_ctx(request).settings.console_trust_forwarded_proto,
    )


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def lang_of(request: Request) -> str:
    return pick_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


@dataclass(frozen=True)
class Viewer:
    """Who is signed in and the cliente they are looking at."""

    session: ConsoleSession
    cliente_id: int
    cliente_nome: str
    operator: bool
    lang: str


async def signed_in(request: Request) -> ConsoleSession:
    """The session of a signed-in browser; Unauthenticated (→ the sign-in page) otherwise,
    including when its API key was revoked since."""
    ctx = _ctx(request)
    session = open_session(
        request.cookies.get(SESSION_COOKIE),
        secret=_secret(ctx),
        now=time.time(),
        ttl_s=ctx.settings.console_session_ttl_s,
    )
    if session is None:
        raise Unauthenticated("sign in to the console")
    if not session.operator:
        assert session.key_sha256 is not None
        async with ctx.sessions() as db:
            owner = await api_keys_db.owner_of(db, session.key_sha256)
            await db.commit()
        if owner is None or owner.cliente_id != session.cliente_id:
            raise Unauthenticated("this API key was revoked: sign in again")
    return session


async def viewer(
    request: Request, session: Annotated[ConsoleSession, Depends(signed_in)]
) -> Viewer:
    ctx = _ctx(request)
    async with ctx.sessions() as db:
        if session.cliente_id is None:  # an operator who has not picked one: the first
            clientes = await clientes_db.list_clientes(db)
            if not clientes:
                raise NotFound("there is no cliente yet: create one with the operator API")
            cliente = clientes[0]
        else:
            cliente = await clientes_db.get_cliente(db, session.cliente_id)
    return Viewer(session, cliente.id, cliente.nome, session.operator, lang_of(request))


CurrentViewer = Annotated[Viewer, Depends(viewer)]


async def csrf_checked(
    request: Request, session: Annotated[ConsoleSession, Depends(signed_in)]
) -> None:
    """Every POST carries the session's CSRF token: in the `X-CSRF-Token` header (htmx and the
    upload script send it) or the form's `csrf` field; 403 otherwise, changing nothing."""
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not token_matches(given, session.csrf):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page")


CsrfChecked = Depends(csrf_checked)


def new_session(*, cliente_id: int | None, key: str | None, operator: bool) -> ConsoleSession:
    return ConsoleSession(
        cliente_id=cliente_id,
        key_sha256=hash_secret(key) if key is not None else None,
        operator=operator,
        csrf=secrets.token_urlsafe(32),
        issued_at=time.time(),
    )


def start_session(request: Request, response: Response, session: ConsoleSession) -> None:
    ctx = _ctx(request)
    token = seal_session(session, secret=_secret(ctx))
    set_cookie(request, response, SESSION_COOKIE, token, int(ctx.settings.console_session_ttl_s))


def switch_cliente(
    request: Request, response: Response, session: ConsoleSession, cliente_id: int
) -> None:
    """An operator looks at another cliente (same session otherwise)."""
    if not session.operator:
        raise Forbidden("only an operator can switch clientes")
    start_session(request, response, replace(session, cliente_id=cliente_id))


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)


def operator_token_matches(request: Request, given: str) -> bool:
    expected = _ctx(request).settings.admin_token.get_secret_value()
    return token_matches(given, expected)


async def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    lang = viewer.lang if viewer else lang_of(request)
    clientes: list[Any] = []
    if viewer is not None and viewer.operator:
        async with _ctx(request).sessions() as db:
            clientes = await clientes_db.list_clientes(db)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": lambda key: translate(lang, key),
            "lang": lang,
            "viewer": viewer,
            "csrf": viewer.session.csrf if viewer else context.pop("csrf", ""),
            "clientes": clientes,
            "prefix": PREFIX,
            **context,
        },
        status_code=status_code,
    )
    if "lang" in request.query_params:  # the toggle: remembered for the next pages
        set_cookie(request, response, LANG_COOKIE, lang, 365 * 86400)
    response.headers.update(PAGE_HEADERS)
    return response
