"""A real HTTP server speaking the parts of Evolution API v2 that Conversa calls.

`POST /message/sendText/{instance}` with header `apikey` answers 201 with the stored message
(same shape as Evolution's), and records every call for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.http_server import ServerThread


@dataclass
class SentText:
    instance: str
    number: str
    text: str
    apikey: str | None
    at: float
    key_id: str
    delay_ms: int = 0


@dataclass
class Presence:
    instance: str
    number: str
    presence: str
    delay_ms: int
    at: float


@dataclass
class FakeEvolution:
    api_key: str = "evolution-global-key"
    sent: list[SentText] = field(default_factory=list)
    presences: list[Presence] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # key.id → (bytes, mimetype)
    fail_status: int | None = None  # answer sendText with this status instead of 201
    reject_jids: bool = False  # answer 400 exists:false to a JID `number` (as some builds do)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/message/sendText/{instance}")
        async def send_text(instance: str, request: Request) -> JSONResponse:
            body: dict[str, Any] = await request.json()
            apikey = request.headers.get("apikey")
            if not apikey:
                return JSONResponse({"status": 401, "error": "Unauthorized"}, status_code=401)
            if self.fail_status is not None:
                return JSONResponse(
                    {"status": self.fail_status, "error": "failing on purpose"},
                    status_code=self.fail_status,
                )
            if not isinstance(body.get("number"), str) or not isinstance(body.get("text"), str):
                return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
            if self.reject_jids and "@" in body["number"]:
                missing = [{"exists": False, "jid": body["number"], "number": body["number"]}]
                return JSONResponse(
                    {"status": 400, "error": "Bad Request", "response": {"message": missing}},
                    status_code=400,
                )
            delay_ms = int(body.get("delay") or 0)
            await asyncio.sleep(delay_ms / 1000)  # Evolution shows "typing…" inside the request
            key_id = "3EB0" + uuid.uuid4().hex[:18].upper()
            at = time.monotonic()
            with self._lock:
                self.sent.append(
                    SentText(instance, body["number"], body["text"], apikey, at, key_id, delay_ms)
                )
            return JSONResponse(
                {
                    "key": {"remoteJid": body["number"], "fromMe": True, "id": key_id},
                    "pushName": "Você",
                    "status": "PENDING",
                    "message": {"conversation": body["text"]},
                    "messageType": "conversation",
                    "messageTimestamp": int(time.time()),
                    "source": "web",
                },
                status_code=201,
            )

        @app.post("/chat/sendPresence/{instance}")
        async def send_presence(instance: str, request: Request) -> JSONResponse:
            body: dict[str, Any] = await request.json()
            if not request.headers.get("apikey"):
                return JSONResponse({"status": 401, "error": "Unauthorized"}, status_code=401)
            if not all(k in body for k in ("number", "presence", "delay")):
                return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
            presence = Presence(
                instance, body["number"], body["presence"], int(body["delay"]), time.monotonic()
            )
            with self._lock:
                self.presences.append(presence)
            await asyncio.sleep(presence.delay_ms / 1000)
            return JSONResponse({"presence": body["presence"]}, status_code=201)

        @app.post("/chat/getBase64FromMediaMessage/{instance}")
        async def media(instance: str, request: Request) -> JSONResponse:
            body: dict[str, Any] = await request.json()
            key_id = body.get("message", {}).get("key", {}).get("id")
            if key_id not in self.media:
                return JSONResponse({"status": 400, "error": "Message not found"}, status_code=400)
            raw, mimetype = self.media[key_id]
            payload = {
                "mediaType": "audioMessage",
                "mimetype": mimetype,
                "base64": base64.b64encode(raw).decode(),
            }
            return JSONResponse(payload, status_code=201)

        return app

    def start(self) -> FakeEvolution:
        self._server = ServerThread(self.app()).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def sent_to(self, number: str) -> list[SentText]:
        with self._lock:
            return [s for s in self.sent if s.number == number]

    def presences_to(self, number: str) -> list[Presence]:
        with self._lock:
            return [p for p in self.presences if p.number == number]
