"""Run an ASGI app on a real loopback port in a background thread (uvicorn)."""

from __future__ import annotations

import random
import socket
import threading
import time

import uvicorn

# Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands out with
# bind(0) can be taken as the source port of some outgoing connection before the server that
# was given it binds it ("Failed to bind"); ports from here are never handed out that way.
# Above Ray's worker ports (10002-19999), under the tests' Serve direct-ingress ports (32000+).
_PORTS_FROM, _PORTS_TO = 20000, 31000
_given: set[int] = set()


def free_port() -> int:
    """A loopback port free now, outside the ephemeral range, not given before in this run."""
    for _ in range(200):
        port = random.randrange(_PORTS_FROM, _PORTS_TO)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS_FROM}-{_PORTS_TO}")


class ServerThread:
    def __init__(self, app, *, port: int | None = None):  # type: ignore[no-untyped-def]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"test server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
