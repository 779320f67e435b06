"""Faults the fake Evolution server can inject per endpoint, switched by the test at run time.

Modes (each for the next `calls` requests, for `for_s` seconds, or until cleared; whichever ends
first; with `number`, only requests for that chat count):
- `fail`: answer `status` (500) before doing anything: nothing is sent or changed.
- `slow`: do the work (the message is sent: the customer has it), then wait `delay_s` more before
  answering, so a client with a shorter timeout gives up on a request that succeeded.
- `echo_first` (sendText only): send, then post the `fromMe` echo of the message (same `key.id`
  the answer will carry) to a webhook and wait for it to be acknowledged, then answer.
- `reset`: do the work, then reset the TCP connection instead of answering (the client sees a
  connection reset after its request was written; the message was sent).
- `not_json`: do the work, then answer `status` (201) with a body that is not JSON.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

FaultMode = Literal["fail", "slow", "echo_first", "reset", "not_json"]

ENDPOINTS = (
    "sendText",
    "sendPresence",
    "getBase64FromMediaMessage",
    "create",
    "connect",
    "connectionState",
    "logout",
    "delete",
    "webhook/set",
    "webhook/find",
)

RESET_SCOPE_KEY = "fake.reset_connection"  # set on the ASGI scope by a handler to reset


@dataclass
class Fault:
    mode: FaultMode
    status: int = 500
    delay_s: float = 0.0
    body: str = "OK"
    echo_url: str | None = None  # echo_first: None = the instance's webhook
    echo_headers: dict[str, str] | None = None  # echo_first: None = the instance's headers
    echo_event: str = "messages.upsert"  # or "send.message"
    calls_left: int | None = None
    until: float | None = None  # time.monotonic() deadline
    number: str | None = None  # only requests whose body's `number` is this (None: all)


class FaultPlan:
    """One fault per endpoint; thread-safe (set by the test, taken by the server's thread)."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def set(self, endpoint: str, fault: Fault, *, calls: int | None, for_s: float | None) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {ENDPOINTS}")
        if fault.mode == "echo_first" and endpoint != "sendText":
            raise ValueError("echo_first is a sendText fault")
        fault.calls_left = calls
        fault.until = None if for_s is None else time.monotonic() + for_s
        with self._lock:
            self._faults[endpoint] = fault

    def clear(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def take(self, endpoint: str, number: str | None = None) -> Fault | None:
        """The fault that applies to this request, if any (counting it against `calls`)."""
        with self._lock:
            fault = self._faults.get(endpoint)
            if fault is None or (fault.number is not None and fault.number != number):
                return None
            if fault.until is not None and time.monotonic() >= fault.until:
                del self._faults[endpoint]
                return None
            if fault.calls_left is not None:
                fault.calls_left -= 1
                if fault.calls_left <= 0:
                    del self._faults[endpoint]
            return fault


class ResettableApp:
    """ASGI wrapper: when a handler sets `scope[RESET_SCOPE_KEY]`, the response is dropped and the
    TCP connection reset (RST, via SO_LINGER 0) instead. Uses uvicorn's protocol object behind
    `send` to reach the transport; the request body has been read by then."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: dict[str, Any]) -> None:
            if not scope.get(RESET_SCOPE_KEY):
                await send(message)
            elif message["type"] == "http.response.start":
                _reset(send)

        await self.app(scope, receive, guarded_send)
        if scope.get(RESET_SCOPE_KEY):
            cycle = getattr(send, "__self__", None)
            for _ in range(100):  # let uvicorn see the disconnect, so it sends no 500 of its own
                if getattr(cycle, "disconnected", True):
                    break
                await asyncio.sleep(0.001)


def _reset(send: Any) -> None:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot reach the connection to reset it (not uvicorn?)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
