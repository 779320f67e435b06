"""`/healthz`: the process is up. `/readyz`: PostgreSQL, Ray, Chroma and Evolution reachable,
503 naming the one that is not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from engine.config import Settings
from serve_app.app import build_app
from serve_app.context import IngressContext
from tests.support.http_server import ServerThread, free_port

pytestmark = pytest.mark.integration


async def test_the_running_stack_is_alive_and_ready_with_every_dependency_named(
    conversa: Any,
) -> None:
    async with httpx.AsyncClient(base_url=conversa.base_url, timeout=30) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200 and alive.json()["status"] == "ok"
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert list(body["checks"]) == ["postgres", "ray", "chroma", "evolution"]
    assert all(check["ok"] for check in body["checks"].values())
    assert "supervisor answered" in body["checks"]["ray"]["detail"]
    assert "on disk" in body["checks"]["chroma"]["detail"]  # the test stack has no CHROMA_URL


@asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app around a context built from `settings`, served in this process (the test
    process is a driver of the session's Ray cluster, so the Ray check is real too)."""
    app = build_app()
    app.state.ctx = IngressContext(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://conversa") as http:
            yield http
    finally:
        await app.state.ctx.close()


def _nothing_listens() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("broken", "change"),
    [
        ("evolution", lambda s: {"evolution_url": _nothing_listens()}),
        ("chroma", lambda s: {"chroma_url": _nothing_listens()}),
        (
            "postgres",
            lambda s: {"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/nope"},
        ),
    ],
)
async def test_an_unreachable_dependency_makes_it_not_ready_and_is_named(
    conversa: Any,
    settings: Settings,
    broken: str,
    change: Callable[[Settings], dict[str, Any]],
) -> None:
    async with app_with(settings.model_copy(update=change(settings))) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200  # still alive: a restart would not help
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "not ready" and body["failed"] == [broken]
    assert body["checks"][broken]["ok"] is False
    assert body["checks"][broken]["detail"]  # says what was seen
    others = {name: c for name, c in body["checks"].items() if name != broken}
    assert all(c["ok"] for c in others.values()), others


async def test_an_evolution_that_answers_5xx_is_not_ready(
    conversa: Any, settings: Settings
) -> None:
    broken = FastAPI()

    @broken.get("/")
    async def root() -> PlainTextResponse:
        return PlainTextResponse("maintenance", status_code=503)

    server = ServerThread(broken).start()
    try:
        async with app_with(settings.model_copy(update={"evolution_url": server.url})) as http:
            ready = await http.get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 503
    assert ready.json()["checks"]["evolution"]["detail"] == "RuntimeError: answered HTTP 503"
