"""The Evolution API client: send a text to a chat through one instance."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import SendFailed
from engine.whatsapp import numero_of

log = logging.getLogger(__name__)

# Attempts when the request never reached Evolution (connect errors). A timeout after the request
# was sent is not retried here: Evolution may have sent it, and a blind retry would send twice.
CONNECT_ATTEMPTS = 3


@dataclass(frozen=True)
class Sent:
    wa_message_id: str | None


class EvolutionClient:
    def __init__(self, *, base_url: str, api_key: str | None, timeout_s: float):
        self._api_key = api_key
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def send_text(
        self, *, instance: str, number: str, text: str, api_key: str | None = None
    ) -> Sent:
        """POST /message/sendText/{instance}. Retries once with the phone number if Evolution
        says a `@lid` JID does not exist (a known Evolution bug, evolution-api#2251)."""
        try:
            return await self._post_text(instance, number, text, api_key)
        except SendFailed as e:
            phone = numero_of(number)
            if e.status == 400 and phone and phone != number:
                return await self._post_text(instance, phone, text, api_key)
            raise

    async def _post_text(self, instance: str, number: str, text: str, api_key: str | None) -> Sent:
        key = api_key or self._api_key
        headers = {"apikey": key} if key else {}
        body = {"number": number, "text": text}
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                response = await self._http.post(
                    f"/message/sendText/{instance}", json=body, headers=headers
                )
                break
            except httpx.ConnectError as e:
                if attempt == CONNECT_ATTEMPTS:
                    raise SendFailed(f"Evolution unreachable: {e}", retryable=True) from e
                await asyncio.sleep(0.2 * attempt)
            except httpx.HTTPError as e:
                raise SendFailed(f"Evolution request failed: {type(e).__name__}: {e}") from e
        if response.status_code >= 400:
            raise SendFailed(
                f"Evolution answered {response.status_code}: {response.text[:300]}",
                status=response.status_code,
                retryable=response.status_code >= 500,
            )
        payload: Any = response.json() if response.content else {}
        key_id = payload.get("key", {}).get("id") if isinstance(payload, dict) else None
        return Sent(key_id if isinstance(key_id, str) else None)

    async def close(self) -> None:
        await self._http.aclose()
