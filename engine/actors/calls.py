"""Calling actors: never without a time limit, and a named actor that may be leaving is retried
on a new incarnation.

A detached named actor can be reaped, evicted, killed or lost with its node between a lookup and
a call, and `get_if_exists` may hand back one that is already dying (ray#41324). Such a call
fails with `RayActorError`, or `ActorClosing` from an actor that began to leave; the next attempt
asks for a fresh handle, which creates a new incarnation once the old name is freed.

An actor that hangs (a stuck query, a frozen process) must not hold its caller forever: a call
that outlives its timeout raises `TimeoutError` and is cancelled in the callee (`ray.cancel`
cancels an async actor's task; a task not started yet is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError

from engine.errors import ActorClosing

log = logging.getLogger(__name__)

GONE = (RayActorError, ActorClosing)


async def call_with_timeout(method: Any, *args: Any, timeout_s: float, **kwargs: Any) -> Any:
    """`await method.remote(*args, **kwargs)` for at most `timeout_s` (TimeoutError after)."""
    ref = method.remote(*args, **kwargs)
    try:
        return await asyncio.wait_for(_result(ref), timeout_s)
    except TimeoutError:
        with contextlib.suppress(Exception):  # best effort: the callee may be gone or frozen
            ray.cancel(ref)
        raise


async def _result(ref: Any) -> Any:
    return await ref


async def call_with_retry(
    get_handle: Callable[[bool], Any],
    method: str,
    *args: Any,
    attempts: int,
    first_delay_s: float,
    log_context: dict[str, Any],
    timeout_s: float | None = None,
) -> Any:
    """`get_handle(fresh)` returns a handle (a new lookup when `fresh`); back-off doubles. Each
    attempt waits at most `timeout_s` (None: no limit); a timeout is not retried."""
    for attempt in range(1, attempts + 1):
        handle = get_handle(attempt > 1)
        try:
            if timeout_s is None:
                return await getattr(handle, method).remote(*args)
            return await call_with_timeout(getattr(handle, method), *args, timeout_s=timeout_s)
        except GONE as e:
            if attempt == attempts:
                raise
            retry = {"method": method, "attempt": attempt, "error": type(e).__name__}
            log.info("actor gone; retrying on a new one", extra={**log_context, **retry})
            await asyncio.sleep(first_delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
