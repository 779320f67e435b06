"""Readiness: can this process serve a webhook end to end? PostgreSQL, Ray, Chroma, Evolution.

Each check is bounded by `CHECK_TIMEOUT_S` and they run together, so `/readyz` answers within a
few seconds even when a dependency hangs. A dependency that is not configured (Evolution without
`EVOLUTION_URL`, Chroma on disk) is ready by definition and says so.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config import Settings

CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """One dependency: reachable or not, and what was seen (or what to do)."""

    name: str
    ok: bool
    detail: str


class Readiness:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        supervisor: Callable[[], Any],
    ):
        self._settings = settings
        self._sessions = sessions
        self._supervisor = supervisor  # the handle, looked up on first use

    async def run(self) -> list[Check]:
        """Every check, in a fixed order: postgres, ray, chroma, evolution."""
        checks: dict[str, Callable[[], Awaitable[str]]] = {
            "postgres": self._postgres,
            "ray": self._ray,
            "chroma": self._chroma,
            "evolution": self._evolution,
        }
        return list(await asyncio.gather(*(_bounded(n, c) for n, c in checks.items())))

    async def _postgres(self) -> str:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))
        return "SELECT 1 answered"

    async def _ray(self) -> str:
        stats = await self._supervisor().stats.remote()
        return f"supervisor answered: {stats['live']} live conversation(s)"

    async def _chroma(self) -> str:
        if self._settings.chroma_url:
            url = self._settings.chroma_url.rstrip("/") + "/api/v2/heartbeat"
            async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as http:
                response = await http.get(url)
            response.raise_for_status()
            return f"server at {self._settings.chroma_url} answered its heartbeat"
        directory = self._settings.chroma_dir.resolve()
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(f"{directory} is not writable")
        return f"on disk at {directory} (one node only)"

    async def _evolution(self) -> str:
        if not self._settings.evolution_url:
            return "not configured: replies are recorded only"
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as http:
            response = await http.get(self._settings.evolution_url)
        if response.status_code >= 500:
            raise RuntimeError(f"answered HTTP {response.status_code}")
        return f"answered HTTP {response.status_code}"


async def _bounded(name: str, check: Callable[[], Awaitable[str]]) -> Check:
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return Check(name, False, f"no answer in {CHECK_TIMEOUT_S:g} s")
    except Exception as e:  # any failure is the answer: not ready, and why
        return Check(name, False, f"{type(e).__name__}: {e}".strip().rstrip(":"))
    return Check(name, True, detail)
