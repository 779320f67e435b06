"""A tiny real HTTP server that records every POST it gets: a stand-in webhook endpoint for tests
of the fakes' own webhook emission (Evolution's events, Stripe's signed events)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.http_server import ServerThread


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    status: int = 200  # what to answer
    statuses: list[int] = field(default_factory=list)  # answered first, one per request
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> JSONResponse:
            body = await request.body()
            with self._lock:
                self.received.append(
                    Received("/" + path, dict(request.headers), body, time.monotonic())
                )
                status = self.statuses.pop(0) if self.statuses else self.status
            return JSONResponse({"received": True}, status_code=status)

        return app

    def start(self) -> Receiver:
        self._server = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def posts(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    async def wait_for(self, count: int, *, timeout_s: float = 20.0) -> list[Received]:
        """Wait until at least `count` posts arrived; return them all."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.posts()
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.posts())} posts arrived, expected {count}")
