"""The operator API as the CLI calls it: one client, errors turned into one line for people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from serve_app.cli.output import CliError

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 120.0  # an upload with ?wait=true embeds the whole document before it answers


@dataclass(frozen=True)
class Target:
    """Where the running Conversa is and the operator token (the global --url / --token)."""

    url: str = DEFAULT_URL
    token: str | None = None


class OperatorApi:
    """`with OperatorApi(target) as api: api.call("GET", "/admin/live")`."""

    def __init__(self, target: Target, *, timeout_s: float = TIMEOUT_S):
        token = target.token
        if token is None:
            from engine.config import Settings

            token = Settings().admin_token.get_secret_value()
        self.url = target.url.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def __enter__(self) -> OperatorApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    @property
    def http(self) -> httpx.Client:
        """The underlying client (for the webhook posts `conversa chat` makes)."""
        return self._http

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer; a refusal or an unreachable server raises `CliError`."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise CliError(
                f"cannot reach Conversa at {self.url} ({type(e).__name__}). Is `conversa run` "
                "up? Point elsewhere with --url or CONVERSA_URL."
            ) from e
        if response.status_code == 401:
            raise CliError(
                f"{method} {path} → 401: the operator token was refused. Pass --token or set "
                "ADMIN_TOKEN to the server's."
            )
        if response.status_code >= 400:
            raise CliError(f"{method} {path} → {response.status_code}: {_detail(response)}")
        return response.json() if response.content else None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:300]
    if isinstance(detail, list):  # FastAPI's validation errors: "field: message; …"
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
        )
    return str(detail)
