"""The Evolution API client: send texts and typing presence, fetch received media."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from engine.core.replies import send_timeout_s
from engine.core.whatsapp import numero_of
from engine.errors import SendFailed, SendOutcomeUnknown

log = logging.getLogger(__name__)

# Attempts when the request never reached Evolution (connect errors). A timeout or a reset after
# the request was written is not retried here: Evolution may have sent it, and a blind retry would
# send twice (SendOutcomeUnknown: the caller waits for Evolution's echo instead).
CONNECT_ATTEMPTS = 3
# Refusals worth retrying later besides 5xx: request timeout, too early, too many requests.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# Failures that happen before Evolution has the whole request: nothing can have been sent.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError)


@dataclass(frozen=True)
class Sent:
    wa_message_id: str | None


class EvolutionClient:
    def __init__(self, *, base_url: str, api_key: str | None, timeout_s: float):
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def send_text(
        self,
        *,
        instance: str,
        number: str,
        text: str,
        api_key: str | None = None,
        delay_ms: int = 0,
    ) -> Sent:
        """POST /message/sendText/{instance}. Evolution shows "typing…" for `delay_ms` inside the
        request, so the request's timeout is always longer than the delay. Retries once with the
        phone number if Evolution says a `@lid` JID does not exist (evolution-api#2251)."""
        body: dict[str, Any] = {"number": number, "text": text}
        if delay_ms > 0:
            body["delay"] = delay_ms
        timeout_s = send_timeout_s(delay_ms, base_timeout_s=self._timeout_s)
        try:
            response = await self._post(f"/message/sendText/{instance}", body, api_key, timeout_s)
        except SendFailed as e:
            phone = numero_of(number)
            if e.status != 400 or not phone or phone == number:
                raise
            body["number"] = phone
            response = await self._post(f"/message/sendText/{instance}", body, api_key, timeout_s)
        key = response.get("key") if isinstance(response, dict) else None
        key_id = key.get("id") if isinstance(key, dict) else None
        return Sent(key_id if isinstance(key_id, str) else None)

    async def send_presence(
        self, *, instance: str, number: str, delay_ms: int, api_key: str | None = None
    ) -> None:
        """Show "typing…" in the chat for `delay_ms` (Evolution holds the request that long)."""
        body = {"number": number, "presence": "composing", "delay": delay_ms}
        timeout_s = send_timeout_s(delay_ms, base_timeout_s=self._timeout_s)
        await self._post(f"/chat/sendPresence/{instance}", body, api_key, timeout_s)

    async def media_base64(
        self, *, instance: str, key_id: str, api_key: str | None = None
    ) -> tuple[bytes, str]:
        """The bytes and mimetype of a received media message (POST getBase64FromMediaMessage)."""
        body = {"message": {"key": {"id": key_id}}, "convertToMp4": False}
        payload = await self._post(
            f"/chat/getBase64FromMediaMessage/{instance}", body, api_key, self._timeout_s
        )
        if not isinstance(payload, dict) or not isinstance(payload.get("base64"), str):
            raise SendFailed("Evolution returned no media for this message")
        raw = payload["base64"].split(",", 1)[-1]  # tolerate a data: URL
        return base64.b64decode(raw), str(payload.get("mimetype") or "audio/ogg")

    async def _post(
        self, path: str, body: dict[str, Any], api_key: str | None, timeout_s: float
    ) -> Any:
        key = api_key or self._api_key
        headers = {"apikey": key} if key else {}
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                response = await self._http.post(
                    path, json=body, headers=headers, timeout=timeout_s
                )
                break
            except NOT_SENT as e:
                if attempt == CONNECT_ATTEMPTS:
                    raise SendFailed(f"Evolution unreachable: {e!r}", retryable=True) from e
                await asyncio.sleep(0.2 * attempt)
            except httpx.TimeoutException as e:
                raise SendOutcomeUnknown(
                    f"Evolution did not answer within {timeout_s:.0f} s ({type(e).__name__}); "
                    "it may have sent the message"
                ) from e
            except httpx.HTTPError as e:  # reset or closed after the request was written
                raise SendOutcomeUnknown(
                    f"Evolution's answer was lost ({type(e).__name__}: {e}); it may have sent it"
                ) from e
        if response.status_code >= 400:
            raise SendFailed(
                f"Evolution answered {response.status_code}: {response.text[:300]}",
                status=response.status_code,
                retryable=response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES,
            )
        try:
            return response.json() if response.content else {}
        except ValueError:  # a 2xx is an acceptance even when its body is not JSON
            log.warning(
                "Evolution accepted a request with a body that is not JSON",
                extra={"path": path, "status": response.status_code, "body": response.text[:200]},
            )
            return None

    async def close(self) -> None:
        await self._http.aclose()
