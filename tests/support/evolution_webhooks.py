"""Evolution API's per-instance webhook: its stored config and how it posts events (reference
evolution-api.md §1, §4.2, §5).

- Envelope `{event, instance, data, destination, date_time, sender, server_url, apikey}`:
  `destination` is the configured URL (without the byEvents suffix), `date_time` is São Paulo
  local time with a misleading `Z`, `sender` (the instance's own JID) is absent before the first
  `open`, `apikey` is the instance token only with AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES.
- `byEvents` posts to `<url>/<event-kebab>` (`connection.update` → `/connection-update`).
- `events` holds UPPER_SNAKE names; an empty list means every event.
- The custom `headers` are sent verbatim; a `jwt_key` header is removed and replaced by
  `Authorization: Bearer <HS256 JWT>` (`{"iat", "exp": iat+600, "app": "evolution",
  "action": "webhook"}`).
- Retries on non-2xx except 400/401/403/404/422 (Evolution does 10, from 5 s; the fake's count and
  delay are settings so tests stay short).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

EVENTS = frozenset(
    {
        *("APPLICATION_STARTUP", "QRCODE_UPDATED", "MESSAGES_SET", "MESSAGES_UPSERT"),
        *("MESSAGES_EDITED", "MESSAGES_UPDATE", "MESSAGES_DELETE", "SEND_MESSAGE"),
        *("SEND_MESSAGE_UPDATE", "CONTACTS_SET", "CONTACTS_UPSERT", "CONTACTS_UPDATE"),
        *("PRESENCE_UPDATE", "CHATS_SET", "CHATS_UPSERT", "CHATS_UPDATE", "CHATS_DELETE"),
        *("GROUPS_UPSERT", "GROUP_UPDATE", "GROUP_PARTICIPANTS_UPDATE", "CONNECTION_UPDATE"),
        *("LABELS_EDIT", "LABELS_ASSOCIATION", "CALL", "TYPEBOT_START", "TYPEBOT_CHANGE_STATUS"),
        *("REMOVE_INSTANCE", "LOGOUT_INSTANCE", "INSTANCE_CREATE", "INSTANCE_DELETE"),
        "STATUS_INSTANCE",
    }
)
NON_RETRYABLE_STATUSES = frozenset({400, 401, 403, 404, 422})
USER_AGENT = "axios/1.7.9"
SAO_PAULO_OFFSET = timedelta(hours=-3)


def event_setting(event: str) -> str:
    """The name in an instance's `events` list: `connection.update` → `CONNECTION_UPDATE`."""
    return event.replace(".", "_").replace("-", "_").upper()


def path_suffix(event: str) -> str:
    """The byEvents path segment: `messages.upsert` → `messages-upsert`."""
    return event_setting(event).replace("_", "-").lower()


def evolution_date_time(now: datetime | None = None) -> str:
    """`date_time` as Evolution writes it: local time (America/Sao_Paulo) suffixed with `Z`."""
    local = (now or datetime.now(UTC)) + SAO_PAULO_OFFSET
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class WebhookConfig:
    url: str
    enabled: bool = True
    by_events: bool = False
    base64: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:25])
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @classmethod
    def parse(cls, body: Any, *, require_enabled: bool) -> WebhookConfig:
        """Read the nested `webhook` object; raises ValueError with Evolution's kind of reason."""
        if not isinstance(body, dict):
            raise ValueError('instance requires property "webhook"')
        if require_enabled and not isinstance(body.get("enabled"), bool):
            raise ValueError('webhook requires property "enabled"')
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError('Invalid "url" property')
        headers = body.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError('"headers" must be an object of strings')
        events = body.get("events") or []
        if not isinstance(events, list) or not all(e in EVENTS for e in events):
            raise ValueError(f'"events" must be a list of {sorted(EVENTS)}')
        for flag in ("byEvents", "base64"):
            if flag in body and not isinstance(body[flag], bool):
                raise ValueError(f'"{flag}" must be a boolean')
        return cls(
            url=url,
            enabled=body.get("enabled", True),
            by_events=body.get("byEvents", False),
            base64=body.get("base64", False),
            headers=dict(headers),
            events=list(events),
        )

    def wants(self, event: str) -> bool:
        return self.enabled and (not self.events or event_setting(event) in self.events)

    def target(self, event: str) -> str:
        return f"{self.url}/{path_suffix(event)}" if self.by_events else self.url

    def row(self, instance_id: str) -> dict[str, Any]:
        """What `/webhook/set` and `/webhook/find` answer (the stored `Webhook` row)."""
        return {
            "id": self.id,
            "url": self.url,
            "headers": dict(self.headers),
            "enabled": self.enabled,
            "events": list(self.events),
            "webhookByEvents": self.by_events,
            "webhookBase64": self.base64,
            "createdAt": self.created_at,
            "updatedAt": datetime.now(UTC).isoformat(),
            "instanceId": instance_id,
        }


@dataclass(frozen=True)
class WebhookPost:
    """One POST attempt the fake made (status None: no answer, see `error`)."""

    instance: str
    event: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int | None
    error: str | None
    at: float


def envelope(
    *,
    event: str,
    instance: str,
    data: dict[str, Any],
    destination: str,
    sender: str | None,
    server_url: str,
    apikey: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": destination,
        "date_time": evolution_date_time(),
    }
    if sender is not None:
        body["sender"] = sender
    body["server_url"] = server_url
    body["apikey"] = apikey
    return body


def jwt_hs256(secret: str, *, now: int | None = None) -> str:
    """The token Evolution's `jwt_key` header turns into (generateJwtToken)."""
    iat = int(time.time()) if now is None else now
    claims = {"iat": iat, "exp": iat + 600, "app": "evolution", "action": "webhook"}
    parts = [_b64url(json.dumps(p).encode()) for p in ({"alg": "HS256", "typ": "JWT"}, claims)]
    signing_input = ".".join(parts).encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return ".".join([*parts, _b64url(signature)])


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def outgoing_headers(custom: dict[str, str]) -> dict[str, str]:
    headers = {
        "Accept": "application/json, text/plain, */*",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    custom = dict(custom)
    jwt_key = custom.pop("jwt_key", None)
    headers.update(custom)
    if jwt_key:
        headers["Authorization"] = f"Bearer {jwt_hs256(jwt_key)}"
    return headers


async def post_event(
    *,
    instance: str,
    event: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    max_attempts: int,
    retry_delay_s: float,
    timeout_s: float,
) -> list[WebhookPost]:
    """POST one event like Evolution: retried with exponential back-off on errors and non-2xx
    answers, except the statuses Evolution treats as final."""
    sent_headers = outgoing_headers(headers)
    posts: list[WebhookPost] = []
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for attempt in range(max_attempts):
            status: int | None = None
            error: str | None = None
            try:
                response = await client.post(url, json=body, headers=sent_headers)
                status = response.status_code
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            posts.append(
                WebhookPost(instance, event, url, sent_headers, body, status, error, time.time())
            )
            if status is not None and (status < 300 or status in NON_RETRYABLE_STATUSES):
                break
            if attempt + 1 < max_attempts:
                await asyncio.sleep(retry_delay_s * 2**attempt)
    return posts
