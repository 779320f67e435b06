"""A cliente made for one test, with its WhatsApp instance and the API calls tests make on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class TenantHandle:
    """A cliente made for one test, with its WhatsApp instance."""

    id: int
    instance: str
    secret: str
    api: httpx.AsyncClient

    async def post(
        self,
        payload: dict[str, Any],
        *,
        secret: str | None = None,
        path: str = "/webhooks/evolution",
    ) -> httpx.Response:
        headers = {"X-Conversa-Secret": self.secret if secret is None else secret}
        return await self.api.post(path, json=payload, headers=headers)

    async def conversations(self) -> list[dict[str, Any]]:
        response = await self.api.get(f"/admin/clientes/{self.id}/conversations")
        response.raise_for_status()
        return response.json()

    async def conversation_for(self, chat_jid: str) -> dict[str, Any]:
        matches = [c for c in await self.conversations() if c["chat_jid"] == chat_jid]
        assert matches, f"no conversation for {chat_jid}"
        return matches[0]

    async def turns(self, chat_jid: str) -> list[dict[str, Any]]:
        conversation = await self.conversation_for(chat_jid)
        response = await self.api.get(
            f"/admin/clientes/{self.id}/conversations/{conversation['id']}/turns"
        )
        response.raise_for_status()
        return response.json()

    async def messages(self, chat_jid: str) -> list[dict[str, Any]]:
        conversation = await self.conversation_for(chat_jid)
        response = await self.api.get(
            f"/admin/clientes/{self.id}/conversations/{conversation['id']}/messages"
        )
        response.raise_for_status()
        return response.json()


MakeTenant = Callable[..., Awaitable[TenantHandle]]
