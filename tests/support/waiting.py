"""Waiting for something the system does in the background (actors, timers, recovery)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout_s: float = 20.0, interval_s: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met in {timeout_s} s; last value: {last!r}")
