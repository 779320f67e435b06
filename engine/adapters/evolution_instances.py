"""Evolution API instance management: create (with its webhook), connect (QR code), connection
state, logout, delete, and the per-instance webhook (reference: evolution-api.md §4.1, §4.2).

`/instance/create` needs the global key; the other routes take the instance's own token
(`hash`), which Conversa keeps sealed. Errors: Evolution unreachable or failing (5xx) is
`UpstreamUnavailable`; a refusal (4xx, or `{"error": true}` from `connect`) is `UpstreamRefused`
with Evolution's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import UpstreamRefused, UpstreamUnavailable

INTEGRATION = "WHATSAPP-BAILEYS"
# What Conversa reads: customers' messages, the phone's connection and QR codes, and the echo of
# its own sends (`send.message`, recognised as Conversa's own and never answered).
WEBHOOK_EVENTS = ("MESSAGES_UPSERT", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE")
SECRET_HEADER = "x-conversa-secret"


@dataclass(frozen=True)
class QrCode:
    code: str | None  # the raw QR string, drawn as a PNG by Conversa
    pairing_code: str | None  # typed on the phone instead of scanning (needs the number)


@dataclass(frozen=True)
class Created:
    token: str  # the instance's own API key (`hash`)
    qr: QrCode | None


@dataclass(frozen=True)
class Connect:
    """`/instance/connect`: a QR code to scan, or `state` "open" when already connected."""

    state: str
    qr: QrCode | None


def webhook_config(url: str, secret: str) -> dict[str, Any]:
    """The `webhook` object of `/instance/create` (§4.1): posts to Conversa with its secret."""
    return {
        "url": url,
        "byEvents": False,
        "base64": False,
        "headers": {SECRET_HEADER: secret},
        "events": list(WEBHOOK_EVENTS),
    }


class EvolutionInstances:
    def __init__(self, *, base_url: str, global_key: str | None, timeout_s: float):
        self._global_key = global_key
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def create(
        self, name: str, *, webhook_url: str, secret: str, number: str | None
    ) -> Created:
        """`POST /instance/create` with the QR code asked for and the webhook set."""
        body: dict[str, Any] = {
            "instanceName": name,
            "integration": INTEGRATION,
            "qrcode": True,
            "webhook": webhook_config(webhook_url, secret),
        }
        if number:
            body["number"] = number
        answer = await self._request("POST", "/instance/create", self._global_key, json=body)
        token = answer.get("hash") if isinstance(answer, dict) else None
        if isinstance(token, dict):  # some builds answer {"hash": {"apikey": …}}
            token = token.get("apikey")
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable("Evolution created the instance but returned no token")
        return Created(token, _qr(answer.get("qrcode")))

    async def connect(self, name: str, *, token: str | None, number: str | None) -> Connect:
        """`GET /instance/connect/{name}`: a (new) QR code, or the instance is already open."""
        params = {"number": number} if number else None
        answer = await self._request("GET", f"/instance/connect/{name}", token, params=params)
        if isinstance(answer, dict) and answer.get("error") is True:  # Evolution answers 200
            raise UpstreamRefused(f"Evolution: {answer.get('message') or 'cannot connect'}")
        instance = answer.get("instance") if isinstance(answer, dict) else None
        if isinstance(instance, dict) and instance.get("state") == "open":
            return Connect("open", None)
        return Connect("connecting", _qr(answer))

    async def connection_state(self, name: str, *, token: str | None) -> str:
        """`GET /instance/connectionState/{name}`: open, connecting or close."""
        answer = await self._request("GET", f"/instance/connectionState/{name}", token)
        instance = answer.get("instance") if isinstance(answer, dict) else None
        state = instance.get("state") if isinstance(instance, dict) else None
        return state if isinstance(state, str) else "close"

    async def logout(self, name: str, *, token: str | None) -> None:
        await self._request("DELETE", f"/instance/logout/{name}", token)

    async def delete(self, name: str, *, token: str | None) -> None:
        await self._request("DELETE", f"/instance/delete/{name}", token)

    async def set_webhook(self, name: str, *, token: str | None, url: str, secret: str) -> None:
        """`POST /webhook/set/{name}` with the nested `webhook` object (§4.2)."""
        body = {"webhook": {"enabled": True, **webhook_config(url, secret)}}
        await self._request("POST", f"/webhook/set/{name}", token, json=body)

    async def _request(self, method: str, path: str, key: str | None, **kwargs: Any) -> Any:
        key = key or self._global_key
        headers = {"apikey": key} if key else {}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as e:
            raise UpstreamUnavailable(f"Evolution unreachable: {type(e).__name__}: {e}") from e
        if response.status_code >= 500:
            raise UpstreamUnavailable(
                f"Evolution answered {response.status_code}: {response.text[:300]}"
            )
        if response.status_code >= 400:
            raise UpstreamRefused(
                f"Evolution refused ({response.status_code}): {_reason(response)}"
            )
        try:
            return response.json() if response.content else {}
        except ValueError as e:
            raise UpstreamUnavailable("Evolution answered something that is not JSON") from e

    async def close(self) -> None:
        await self._http.aclose()


def _qr(value: Any) -> QrCode | None:
    if not isinstance(value, dict):
        return None
    code = value.get("code")
    pairing = value.get("pairingCode")
    if not isinstance(code, str) or not code:
        return None
    return QrCode(code, pairing if isinstance(pairing, str) and len(pairing) <= 16 else None)


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    message = (body.get("response") or {}).get("message") if isinstance(body, dict) else None
    if isinstance(message, list):
        return "; ".join(str(m) for m in message)
    return str(message or body)[:300]
