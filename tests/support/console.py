"""A browser's view of the console over plain HTTP (httpx with a cookie jar): sign in, read the
CSRF token a page carries, post forms with it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

CSRF_IN_FORM = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_IN_FORM.search(html)
    assert found, "the page carries no CSRF token"
    return found[1]


@dataclass
class ConsoleBrowser:
    client: httpx.AsyncClient  # no Authorization header; cookies kept
    csrf: str = ""

    async def sign_in(self, key: str) -> httpx.Response:
        form = await self.client.get("/console/entrar")
        response = await self.client.post(
            "/console/entrar", data={"key": key, "csrf": csrf_of(form.text)}
        )
        if response.status_code == 303:
            self.csrf = csrf_of((await self.client.get("/console/painel")).text)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, data={**(data or {}), "csrf": self.csrf})


def console_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=60, follow_redirects=False)
