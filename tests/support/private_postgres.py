"""A PostgreSQL server of one's own, to stop and start on purpose (never the machine's server,
which other people's tests use): pgserver's PostgreSQL 16 in a temporary data directory,
listening on a Unix socket only. Used by the restart tests and by bench/faults.py."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

PG_CTL_TIMEOUT_S = 60


class PrivatePostgres:
    def __init__(self, root: Path | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="conversa-pg-", dir=root or "/tmp"))
        self.pgdata = self.root / "pgdata"
        self._server = None
        self._socket_dir: Path | None = None
        self._user: str | None = None

    def start(self) -> PrivatePostgres:
        """Create and start it (first call), or start it again after `stop`."""
        import pgserver

        if self._server is None:
            self.pgdata.mkdir()
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            socket = self._server.get_postmaster_info().socket_path
            assert socket is not None
            self._socket_dir = socket.parent if socket.name.startswith(".s.PGSQL") else socket
            self._user = self._server.system_user
            return self
        self._pg_ctl(
            "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.pgdata / "log"), "start"
        )
        return self

    def stop(self, *, mode: str = "fast") -> None:
        """`fast`: connections are terminated (a restart); `immediate`: as if it crashed."""
        self._pg_ctl("-m", mode, "stop")

    def restart(self, *, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def url(self) -> str:
        assert self._socket_dir is not None, "start it first"
        return f"postgresql://postgres@/postgres?host={self._socket_dir}"

    def url_for(self, database: str) -> str:
        assert self._socket_dir is not None, "start it first"
        return f"postgresql://postgres@/{database}?host={self._socket_dir}"

    def cleanup(self) -> None:
        if self._server is not None:
            try:
                self.stop(mode="immediate")
            except Exception:
                pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        import pgserver

        pgserver.pg_ctl(
            ["-w", *args], pgdata=self.pgdata, user=self._user, timeout=PG_CTL_TIMEOUT_S
        )
