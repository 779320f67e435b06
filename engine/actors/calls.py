"""Calling a named actor that may be leaving: get-or-create it, call, retry on a new one.

A detached named actor can be reaped, evicted, killed or lost with its node between a lookup and
a call, and `get_if_exists` may hand back one that is already dying (ray#41324). Such a call
fails with `RayActorError`, or `ActorClosing` from an actor that began to leave; the next attempt
asks for a fresh handle, which creates a new incarnation once the old name is freed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ray.exceptions import RayActorError

from engine.errors import ActorClosing

log = logging.getLogger(__name__)

GONE = (RayActorError, ActorClosing)


async def call_with_retry(
    get_handle: Callable[[bool], Any],
    method: str,
    *args: Any,
    attempts: int,
    first_delay_s: float,
    log_context: dict[str, Any],
) -> Any:
    """`get_handle(fresh)` returns a handle (a new lookup when `fresh`); back-off doubles."""
    for attempt in range(1, attempts + 1):
        handle = get_handle(attempt > 1)
        try:
            return await getattr(handle, method).remote(*args)
        except GONE as e:
            if attempt == attempts:
                raise
            retry = {"method": method, "attempt": attempt, "error": type(e).__name__}
            log.info("actor gone; retrying on a new one", extra={**log_context, **retry})
            await asyncio.sleep(first_delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
