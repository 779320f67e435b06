"""A business as the tenant API sees it: its cliente, an API key and an HTTP client using it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Account:
    """A cliente's tenant API key (made by the operator) and a client that sends it."""

    cliente_id: int
    key: str
    key_id: int
    client: httpx.AsyncClient  # base_url = Conversa, Authorization: Bearer <key>

    async def me(self) -> dict[str, Any]:
        response = await self.client.get("/v1/me")
        response.raise_for_status()
        return response.json()

    async def status(self) -> str:
        return str((await self.me())["status"])


async def account_for(api: httpx.AsyncClient, cliente_id: int) -> Account:
    response = await api.post(f"/admin/clientes/{cliente_id}/api-keys", json={"name": "tests"})
    assert response.status_code == 201, response.text
    made = response.json()
    client = httpx.AsyncClient(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {made['key']}"}, timeout=60
    )
    return Account(cliente_id, made["key"], made["id"], client)


MakeAccount = Callable[[int], Awaitable[Account]]
