"""The web console (`/console`): where a business connects WhatsApp, teaches the bot, watches and
takes over chats, sets its behaviour and sees its numbers. Server-rendered (Jinja2) with htmx
(vendored in `static/`, nothing fetched at run time); pt-BR with English.

Every page calls the same services as the tenant API (`/v1`) with the signed-in cliente's id, so
another cliente's ids are 404 exactly as there."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from serve_app.console.pages import conversations, dashboard, knowledge, settings, signin, whatsapp
from serve_app.console.web import PREFIX, SESSION_COOKIE, render

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(prefix=PREFIX, include_in_schema=False)
for module in (signin, whatsapp, knowledge, conversations, settings, dashboard):
    router.include_router(module.router)


@router.get("")
async def home(request: Request) -> Response:
    target = "painel" if SESSION_COOKIE in request.cookies else "entrar"
    return RedirectResponse(f"{PREFIX}/{target}", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")


def is_console(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


async def error_page(request: Request, status: int, message: str) -> Response:
    """A console request that failed: signed out → the sign-in page (htmx follows
    `HX-Redirect`); anything else → a page (or fragment) saying why, with its status."""
    if status == 401:
        target = f"{PREFIX}/entrar"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return await render(
        request,
        template,
        None,
        status_code=status,
        status=status,
        message=message,
    )
