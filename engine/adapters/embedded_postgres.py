"""A real local PostgreSQL (16, from the `pgserver` wheel) for when DATABASE_URL is not set.

Its data lives under `<data_dir>/postgres`, never in the system's PostgreSQL. It listens on a Unix
socket inside that directory only, so it cannot clash with another server's port.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded server; returns its URL and a handle whose cleanup stops it."""
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    runtime = (data_dir / "run").resolve()
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    # pgserver keeps its lock file under the user runtime dir; keep it beside our data.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver  # after XDG_RUNTIME_DIR: it reads the runtime dir at import

    _forget_dead_handles(pgdata)
    started = time.monotonic()
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    log.info(
        "embedded PostgreSQL ready",
        extra={"pgdata": str(pgdata), "seconds": round(time.monotonic() - started, 2)},
    )
    return server.get_uri(), server


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last user exits, counting users in a pid file; a
    process that was killed stays counted forever and the server is never stopped. Drop those."""
    import psutil

    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))
