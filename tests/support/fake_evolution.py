"""A real HTTP server speaking the parts of Evolution API v2 that Conversa calls
(reference: ../shared/reference/evolution-api.md).

Messages: `POST /message/sendText/{instance}` answers 201 with the stored message (Evolution's
shape) and records each delivered message in `sent` exactly once, with its `key.id` (count
"answered once / twice / never" there); every request, delivered or not, is in `attempts`.
`POST /chat/sendPresence/{instance}` and `POST /chat/getBase64FromMediaMessage/{instance}` answer
as Evolution does.

Instances (§4.1–4.2): `POST /instance/create` (global key only), `GET /instance/connect/{i}`,
`GET /instance/connectionState/{i}`, `DELETE /instance/logout/{i}`, `DELETE /instance/delete/{i}`,
`POST /webhook/set/{i}` (the nested `webhook` object), `GET /webhook/find/{i}`. Instance routes
take the instance token (`hash`) or the global key in the `apikey` header.

Webhooks (§1, §3, §5): the test drives the phone's side with `emit_connection`, `emit_qrcode` or
`emit`; after each sendText the fake posts `send.message` (fire and forget, as Evolution) when
the instance's events include SEND_MESSAGE. `configure_webhook` gives an instance registered by
hand in Conversa a webhook without the API. Every post attempt is kept in `webhook_posts`.

Faults (`evolution_faults`): `fail`, `slow`, `echo_before_reply`, `reset_connection`,
`answer_not_json`, per endpoint, for N calls or N seconds; `clear_faults`.

Instances the fake did not create (registered by hand in Conversa by older tests) still get any
non-empty `apikey` accepted on the message routes, unless `strict_instances` is set.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.evolution_faults import RESET_SCOPE_KEY, Fault, FaultPlan, ResettableApp
from tests.support.evolution_webhooks import WebhookConfig, WebhookPost, envelope, post_event
from tests.support.http_server import ServerThread

INTEGRATIONS = ("WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", "EVOLUTION")
SETTINGS_FIELDS = (
    *("rejectCall", "msgCall", "groupsIgnore", "alwaysOnline", "readMessages", "readStatus"),
    "syncFullHistory",
)
# A valid 1×1 PNG: Evolution's `base64` is a data URL of the QR image (Conversa renders its own
# from `code`).
PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "=="
)


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
class SendAttempt:
    """Every sendText request, delivered or not; `outcome` is `sent`, `failed`, `refused`, or
    the fault that shaped the answer (`slow`, `echo_first`, `reset`, `not_json`)."""

    instance: str
    number: str | None
    text: str | None
    outcome: str
    at: float
    key_id: str | None = None


@dataclass
class Presence:
    instance: str
    number: str
    presence: str
    delay_ms: int
    at: float


@dataclass
class Instance:
    name: str
    token: str | None  # None: made by a test with configure_webhook; any apikey is accepted
    integration: str = "WHATSAPP-BAILEYS"
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    number: str | None = None
    state: str = "close"  # close | connecting | open
    wuid: str | None = None
    profile_name: str | None = None
    webhook: WebhookConfig | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    qrcode: dict[str, Any] | None = None  # {"pairingCode", "code", "base64", "count"}
    qr_count: int = 0


def _error(status: int, message: Any) -> JSONResponse:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    body = {
        "status": status,
        "error": names.get(status, "Internal Server Error"),
        "response": {"message": message},
    }
    return JSONResponse(body, status_code=status)


def _missing(instance: str) -> JSONResponse:
    return _error(404, [f'The "{instance}" instance does not exist'])


@dataclass
class FakeEvolution:
    api_key: str = "evolution-global-key"
    sent: list[SentText] = field(default_factory=list)
    attempts: list[SendAttempt] = field(default_factory=list)
    presences: list[Presence] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # key.id → (bytes, mimetype)
    fail_status: int | None = None  # answer sendText with this status instead of 201
    reject_jids: bool = False  # answer 400 exists:false to a JID `number` (as some builds do)
    instances: dict[str, Instance] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)  # instance names, in deletion order
    webhook_posts: list[WebhookPost] = field(default_factory=list)
    strict_instances: bool = False  # unknown instances on message routes → 404
    expose_apikey: bool = False  # AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES (token in envelopes)
    webhook_max_attempts: int = 1  # Evolution: 10
    webhook_retry_delay_s: float = 0.2  # Evolution: 5 s, doubling
    webhook_timeout_s: float = 30.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/message/sendText/{instance}")
        async def send_text(instance: str, request: Request) -> Response:
            body: Any = await _json_or_none(request)
            denied = self._authorize(request, instance, management=False)
            if denied is not None:
                return denied
            body = body if isinstance(body, dict) else {}
            number, text = body.get("number"), body.get("text")
            number = number if isinstance(number, str) else None
            text = text if isinstance(text, str) else None
            fault = self.faults.take("sendText", number)
            if fault is not None and fault.mode == "fail":
                self._attempt(instance, number, text, "failed")
                return _error(fault.status, "failing on purpose")
            if self.fail_status is not None:
                self._attempt(instance, number, text, "failed")
                return JSONResponse(
                    {"status": self.fail_status, "error": "failing on purpose"},
                    status_code=self.fail_status,
                )
            if number is None or text is None:
                self._attempt(instance, number, text, "refused")
                return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
            if self.reject_jids and "@" in number:
                self._attempt(instance, number, text, "refused")
                missing = [{"exists": False, "jid": number, "number": number}]
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
                    SentText(
                        instance, number, text, request.headers.get("apikey"), at, key_id, delay_ms
                    )
                )
            self._attempt(instance, number, text, fault.mode if fault else "sent", key_id)
            message = self._stored_message(instance, number, text, key_id)
            if fault is not None and fault.mode == "echo_first":
                await self._echo(instance, message, fault)
            self._emit_soon(instance, "send.message", message)
            return await self._answer(request, fault, JSONResponse(message, status_code=201))

        @app.post("/chat/sendPresence/{instance}")
        async def send_presence(instance: str, request: Request) -> Response:
            body: Any = await _json_or_none(request)
            denied = self._authorize(request, instance, management=False)
            if denied is not None:
                return denied
            fault = self.faults.take("sendPresence")
            if fault is not None and fault.mode == "fail":
                return _error(fault.status, "failing on purpose")
            if not isinstance(body, dict) or not all(
                k in body for k in ("number", "presence", "delay")
            ):
                return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
            presence = Presence(
                instance, body["number"], body["presence"], int(body["delay"]), time.monotonic()
            )
            with self._lock:
                self.presences.append(presence)
            await asyncio.sleep(presence.delay_ms / 1000)
            answer = JSONResponse({"presence": body["presence"]}, status_code=201)
            return await self._answer(request, fault, answer)

        @app.post("/chat/getBase64FromMediaMessage/{instance}")
        async def media(instance: str, request: Request) -> Response:
            body: Any = await _json_or_none(request)
            denied = self._authorize(request, instance, management=False)
            if denied is not None:
                return denied
            fault = self.faults.take("getBase64FromMediaMessage")
            if fault is not None and fault.mode == "fail":
                return _error(fault.status, "failing on purpose")
            body = body if isinstance(body, dict) else {}
            key_id = (body.get("message") or {}).get("key", {}).get("id")
            if key_id not in self.media:
                return JSONResponse({"status": 400, "error": "Message not found"}, status_code=400)
            raw, mimetype = self.media[key_id]
            payload = {
                "mediaType": "audioMessage",
                "mimetype": mimetype,
                "base64": base64.b64encode(raw).decode(),
            }
            return await self._answer(request, fault, JSONResponse(payload, status_code=201))

        @app.post("/instance/create")
        async def create(request: Request) -> Response:
            body: Any = await _json_or_none(request)
            if request.headers.get("apikey") != self.api_key:
                return _error(401, "Unauthorized")
            fault = self.faults.take("create")
            if fault is not None and fault.mode == "fail":
                return _error(fault.status, "failing on purpose")
            if not isinstance(body, dict):
                return _error(400, ["the body must be a JSON object"])
            name = body.get("instanceName")
            if not isinstance(name, str) or not name.strip():
                return _error(400, ['instance requires property "instanceName"'])
            if body.get("integration") not in INTEGRATIONS:
                return _error(400, ["Invalid integration"])
            if name in self.instances:
                return _error(403, [f'This name "{name}" is already in use.'])
            webhook = None
            if body.get("webhook") is not None:
                try:
                    webhook = WebhookConfig.parse(body["webhook"], require_enabled=False)
                except ValueError as e:
                    return _error(400, [str(e)])
            token = body.get("token")
            made = Instance(
                name=name,
                token=token if isinstance(token, str) and token else str(uuid.uuid4()).upper(),
                integration=body["integration"],
                number=body.get("number") if isinstance(body.get("number"), str) else None,
                webhook=webhook,
                settings={k: body.get(k, "" if k == "msgCall" else False) for k in SETTINGS_FIELDS},
            )
            answer: dict[str, Any] = {
                "instance": {
                    "instanceName": name,
                    "instanceId": made.instance_id,
                    "integration": made.integration,
                    "webhookWaBusiness": None,
                    "accessTokenWaBusiness": "",
                    "status": "connecting" if body.get("qrcode") is True else "close",
                },
                "hash": made.token,
                "webhook": {}
                if webhook is None
                else {
                    "webhookUrl": webhook.url,
                    "webhookHeaders": dict(webhook.headers),
                    "webhookByEvents": webhook.by_events,
                    "webhookBase64": webhook.base64,
                },
                "websocket": {},
                "rabbitmq": {},
                "nats": {},
                "sqs": {},
                "settings": {**made.settings, "wavoipToken": ""},
            }
            with self._lock:
                self.instances[name] = made
                if body.get("qrcode") is True:
                    made.state = "connecting"
                    answer["qrcode"] = self._new_qr(made)
            return await self._answer(request, fault, JSONResponse(answer, status_code=201))

        @app.get("/instance/connect/{instance}")
        async def connect(instance: str, request: Request) -> Response:
            found, early, fault = self._instance_route(request, instance, "connect")
            if found is None:
                return early
            number = request.query_params.get("number")
            with self._lock:
                if found.state == "open":
                    answer: dict[str, Any] = {
                        "instance": {"instanceName": instance, "state": "open"}
                    }
                else:
                    if number:
                        found.number = number
                    found.state = "connecting"
                    answer = self._new_qr(found)
            return await self._answer(request, fault, JSONResponse(answer))

        @app.get("/instance/connectionState/{instance}")
        async def connection_state(instance: str, request: Request) -> Response:
            found, early, fault = self._instance_route(request, instance, "connectionState")
            if found is None:
                return early
            answer = {"instance": {"instanceName": instance, "state": found.state}}
            return await self._answer(request, fault, JSONResponse(answer))

        @app.delete("/instance/logout/{instance}")
        async def logout(instance: str, request: Request) -> Response:
            found, early, fault = self._instance_route(request, instance, "logout")
            if found is None:
                return early
            with self._lock:
                if found.state == "close":
                    return _error(400, [f'The "{instance}" instance is not connected'])
                found.state, found.wuid, found.qrcode = "close", None, None
            answer = {
                "status": "SUCCESS",
                "error": False,
                "response": {"message": "Instance logged out"},
            }
            return await self._answer(request, fault, JSONResponse(answer))

        @app.delete("/instance/delete/{instance}")
        async def delete(instance: str, request: Request) -> Response:
            found, early, fault = self._instance_route(request, instance, "delete")
            if found is None:
                return early
            with self._lock:
                del self.instances[instance]
                self.deleted.append(instance)
            answer = {
                "status": "SUCCESS",
                "error": False,
                "response": {"message": "Instance deleted"},
            }
            return await self._answer(request, fault, JSONResponse(answer))

        @app.post("/webhook/set/{instance}")
        async def webhook_set(instance: str, request: Request) -> Response:
            body: Any = await _json_or_none(request)
            found, early, fault = self._instance_route(request, instance, "webhook/set")
            if found is None:
                return early
            nested = body.get("webhook") if isinstance(body, dict) else None
            try:
                config = WebhookConfig.parse(nested, require_enabled=True)
            except ValueError as e:
                return _error(400, [str(e)])
            with self._lock:
                if found.webhook is not None:
                    config.id, config.created_at = found.webhook.id, found.webhook.created_at
                found.webhook = config
            answer = JSONResponse(config.row(found.instance_id), status_code=201)
            return await self._answer(request, fault, answer)

        @app.get("/webhook/find/{instance}")
        async def webhook_find(instance: str, request: Request) -> Response:
            found, early, fault = self._instance_route(request, instance, "webhook/find")
            if found is None:
                return early
            row = None if found.webhook is None else found.webhook.row(found.instance_id)
            return await self._answer(request, fault, JSONResponse(row))

        return app

    # -- the HTTP side's helpers --------------------------------------------------------------

    def _authorize(self, request: Request, instance: str, *, management: bool) -> Response | None:
        key = request.headers.get("apikey")
        if not key:
            return _error(401, "Unauthorized")
        if key == self.api_key:
            return None
        found = self.instances.get(instance)
        if found is None:
            if management or self.strict_instances:
                return _error(401, "Unauthorized")
            return None  # an instance registered by hand in Conversa: any key, as before
        if found.token is None or key == found.token:
            return None
        return _error(401, "Unauthorized")

    def _instance_route(
        self, request: Request, instance: str, endpoint: str
    ) -> tuple[Instance | None, Response, Fault | None]:
        """Auth, the `fail` fault and existence for an instance route; the instance, or the
        answer to give instead, and the fault that shapes a successful answer."""
        denied = self._authorize(request, instance, management=True)
        if denied is not None:
            return None, denied, None
        fault = self.faults.take(endpoint)
        if fault is not None and fault.mode == "fail":
            return None, _error(fault.status, "failing on purpose"), None
        found = self.instances.get(instance)
        if found is None:
            return None, _missing(instance), None
        return found, Response(), fault

    async def _answer(self, request: Request, fault: Fault | None, answer: Response) -> Response:
        """The work is done; shape the answer by the fault: late, lost (reset) or not JSON."""
        if fault is None:
            return answer
        if fault.mode == "slow":
            await asyncio.sleep(fault.delay_s)
        elif fault.mode == "reset":
            request.scope[RESET_SCOPE_KEY] = True
        elif fault.mode == "not_json":
            return Response(fault.body, status_code=fault.status, media_type="text/html")
        return answer

    def _attempt(
        self,
        instance: str,
        number: str | None,
        text: str | None,
        outcome: str,
        key_id: str | None = None,
    ) -> None:
        with self._lock:
            self.attempts.append(
                SendAttempt(instance, number, text, outcome, time.monotonic(), key_id)
            )

    def _stored_message(self, instance: str, number: str, text: str, key_id: str) -> dict[str, Any]:
        """The message as Evolution stores it: the sendText answer and the `send.message` data."""
        remote_jid = number if "@" in number else f"{number}@s.whatsapp.net"
        found = self.instances.get(instance)
        message: dict[str, Any] = {
            "key": {"remoteJid": remote_jid, "fromMe": True, "id": key_id},
            "pushName": "Você",
            "status": "PENDING",
            "message": {"conversation": text},
            "contextInfo": {"mentionedJid": [], "groupMentions": []},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
            "source": "web",
        }
        if found is not None:
            message["instanceId"] = found.instance_id
        return message

    async def _echo(self, instance: str, message: dict[str, Any], fault: Fault) -> None:
        """Post our own message's echo and wait for the receiver's answer (echo_first)."""
        data = (
            dict(message, status="SERVER_ACK") if fault.echo_event == "messages.upsert" else message
        )
        found = self.instances.get(instance)
        config = found.webhook if found is not None else None
        if fault.echo_url is not None:
            config = WebhookConfig(url=fault.echo_url, headers=fault.echo_headers or {})
        elif config is not None and fault.echo_headers is not None:
            config = WebhookConfig(
                url=config.url,
                by_events=config.by_events,
                headers=fault.echo_headers,
                events=config.events,
            )
        if config is None:
            post = WebhookPost(
                instance,
                fault.echo_event,
                "",
                {},
                data,
                None,
                "no webhook configured for the echo",
                time.time(),
            )
            with self._lock:
                self.webhook_posts.append(post)
            return
        await self._post(instance, fault.echo_event, data, config)

    def _emit_soon(self, instance: str, event: str, data: dict[str, Any]) -> None:
        """Fire and forget, as Evolution's sendDataWebhook (not awaited by the request)."""
        found = self.instances.get(instance)
        if found is None or found.webhook is None or not found.webhook.wants(event):
            return
        task = asyncio.get_running_loop().create_task(self.emit(instance, event, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(
        self, instance: str, event: str, data: dict[str, Any], config: WebhookConfig
    ) -> list[WebhookPost]:
        found = self.instances.get(instance)
        body = envelope(
            event=event,
            instance=instance,
            data=data,
            destination=config.url,
            sender=found.wuid if found is not None else None,
            server_url=self.url,
            apikey=found.token if found is not None and self.expose_apikey else None,
        )
        posts = await post_event(
            instance=instance,
            event=event,
            url=config.target(event),
            headers=config.headers,
            body=body,
            max_attempts=self.webhook_max_attempts,
            retry_delay_s=self.webhook_retry_delay_s,
            timeout_s=self.webhook_timeout_s,
        )
        with self._lock:
            self.webhook_posts.extend(posts)
        return posts

    def _new_qr(self, found: Instance) -> dict[str, Any]:
        found.qr_count += 1
        alphabet = string.ascii_letters + string.digits + "+/"
        ref = "".join(secrets.choice(alphabet) for _ in range(86))
        keys = ",".join(base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(3))
        pairing = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        found.qrcode = {
            "pairingCode": pairing if found.number else None,
            "code": f"2@{ref},{keys},1",
            "base64": f"data:image/png;base64,{PNG_1X1}",
            "count": found.qr_count,
        }
        return dict(found.qrcode)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeEvolution:
        self._server = ServerThread(ResettableApp(self.app())).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # -- the phone's side: events Evolution posts ---------------------------------------------

    def configure_webhook(
        self,
        instance: str,
        *,
        url: str,
        headers: dict[str, str] | None = None,
        events: list[str] | None = None,
        by_events: bool = False,
    ) -> None:
        """Give an instance a webhook without going through the API (for instances registered
        by hand in Conversa, which the fake did not create; their apikey stays unchecked)."""
        config = WebhookConfig.parse(
            {"url": url, "headers": headers or {}, "events": events or [], "byEvents": by_events},
            require_enabled=False,
        )
        with self._lock:
            found = self.instances.setdefault(instance, Instance(name=instance, token=None))
            found.webhook = config

    async def emit(self, instance: str, event: str, data: dict[str, Any]) -> list[WebhookPost]:
        """Post `event` with `data` to the instance's webhook as Evolution does; nothing is posted
        (returns []) when the instance has no enabled webhook or its events exclude it."""
        found = self.instances[instance]
        if found.webhook is None or not found.webhook.wants(event):
            return []
        return await self._post(instance, event, data, found.webhook)

    async def emit_connection(
        self,
        instance: str,
        *,
        state: str,
        wuid: str | None = None,
        profile_name: str | None = "Loja",
        status_reason: int | None = None,
    ) -> list[WebhookPost]:
        """The phone connected (`open`, with its `wuid`), is (re)connecting, or was closed
        (`close`, statusReason 401 = logged out) or `refused` (QR limit, 428). The fake's state
        follows, so `connectionState` and `connect` answer accordingly."""
        if state not in ("open", "connecting", "close", "refused"):
            raise ValueError(f"not a connection state: {state!r}")
        found = self.instances[instance]
        reason = status_reason or {"close": 401, "refused": 428}.get(state, 200)
        data: dict[str, Any] = {"instance": instance}
        with self._lock:
            if state == "open":
                found.wuid = wuid or found.wuid
                if found.wuid is None:
                    raise ValueError("an open connection needs the number's wuid")
                found.profile_name, found.qrcode = profile_name, None
                data.update(wuid=found.wuid, profileName=profile_name, profilePictureUrl=None)
            elif state == "refused":
                data.update(wuid=found.wuid, profileName=found.profile_name, profilePictureUrl=None)
            found.state = "close" if state == "refused" else state
        data.update(state=state, statusReason=reason)
        return await self.emit(instance, "connection.update", data)

    async def emit_qrcode(self, instance: str) -> list[WebhookPost]:
        """A new QR code (Baileys makes one about every 20 s while nobody scans): `connect`
        answers the same one."""
        found = self.instances[instance]
        with self._lock:
            found.state = "connecting"
            qr = self._new_qr(found)
        data = {
            "qrcode": {
                "instance": instance,
                "pairingCode": qr["pairingCode"],
                "code": qr["code"],
                "base64": qr["base64"],
            }
        }
        return await self.emit(instance, "qrcode.updated", data)

    # -- faults -------------------------------------------------------------------------------

    def fail(
        self,
        endpoint: str = "sendText",
        *,
        status: int = 500,
        calls: int | None = None,
        for_s: float | None = None,
        number: str | None = None,
    ) -> None:
        """Answer `status` without doing anything (nothing sent, nothing changed); with
        `number`, only sends to that chat fail."""
        fault = Fault("fail", status=status, number=number)
        self.faults.set(endpoint, fault, calls=calls, for_s=for_s)

    def slow(
        self,
        endpoint: str = "sendText",
        *,
        delay_s: float,
        calls: int | None = None,
        for_s: float | None = None,
        number: str | None = None,
    ) -> None:
        """Do the work (the message is sent and recorded), then answer `delay_s` later."""
        fault = Fault("slow", delay_s=delay_s, number=number)
        self.faults.set(endpoint, fault, calls=calls, for_s=for_s)

    def echo_before_reply(
        self,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        event: str = "messages.upsert",
        calls: int | None = None,
        for_s: float | None = None,
        number: str | None = None,
    ) -> None:
        """sendText posts the echo of the message it just sent (`fromMe: true`, the same
        `key.id` the answer carries; `messages.upsert` or `send.message`) to `url` (default: the
        instance's webhook) and waits for that post to be answered before answering itself."""
        if event not in ("messages.upsert", "send.message"):
            raise ValueError("the echo is a messages.upsert or a send.message")
        fault = Fault(
            "echo_first", echo_url=url, echo_headers=headers, echo_event=event, number=number
        )
        self.faults.set("sendText", fault, calls=calls, for_s=for_s)

    def reset_connection(
        self,
        endpoint: str = "sendText",
        *,
        calls: int | None = None,
        for_s: float | None = None,
        number: str | None = None,
    ) -> None:
        """Do the work (the message is sent and recorded), then reset the connection unanswered."""
        self.faults.set(endpoint, Fault("reset", number=number), calls=calls, for_s=for_s)

    def answer_not_json(
        self,
        endpoint: str = "sendText",
        *,
        status: int = 201,
        body: str = "<html>OK</html>",
        calls: int | None = None,
        for_s: float | None = None,
        number: str | None = None,
    ) -> None:
        """Do the work (the message is sent and recorded), then answer a 2xx that is not JSON."""
        fault = Fault("not_json", status=status, body=body, number=number)
        self.faults.set(endpoint, fault, calls=calls, for_s=for_s)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.faults.clear(endpoint)

    # -- inspection ---------------------------------------------------------------------------

    def sent_to(self, number: str) -> list[SentText]:
        with self._lock:
            return [s for s in self.sent if s.number == number]

    def sent_with_key(self, key_id: str) -> list[SentText]:
        with self._lock:
            return [s for s in self.sent if s.key_id == key_id]

    def attempts_to(self, number: str) -> list[SendAttempt]:
        with self._lock:
            return [a for a in self.attempts if a.number == number]

    def presences_to(self, number: str) -> list[Presence]:
        with self._lock:
            return [p for p in self.presences if p.number == number]

    def posts_of(self, instance: str, event: str | None = None) -> list[WebhookPost]:
        with self._lock:
            return [
                p
                for p in self.webhook_posts
                if p.instance == instance and (event is None or p.event == event)
            ]


async def _json_or_none(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None
