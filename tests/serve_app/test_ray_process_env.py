"""The environment every Ray process starts with: the warm pool's soft limit, lean Serve."""

from __future__ import annotations

from pathlib import Path

from engine.config import IngressMode, Settings
from serve_app.runtime import LEAN_SERVE, ray_process_env


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **fields)  # type: ignore[call-arg, arg-type]


def test_the_raylet_keeps_the_warm_pool_and_nothing_is_kept_when_it_is_off(tmp_path: Path) -> None:
    kept = ray_process_env(_settings(tmp_path, warm_workers=8))
    assert kept["RAY_num_workers_soft_limit"] == "8"
    assert "RAY_num_workers_soft_limit" not in ray_process_env(_settings(tmp_path, warm_workers=0))


def test_serve_runs_lean_where_replicas_serve_http_themselves(tmp_path: Path) -> None:
    haproxy = ray_process_env(_settings(tmp_path, ingress_mode=IngressMode.HAPROXY))
    assert LEAN_SERVE.items() <= haproxy.items()
    assert haproxy["RAY_SERVE_HAPROXY_METRICS_ENABLED"] == "0"
    # Measured only where replicas serve HTTP themselves: proxy mode keeps Serve's defaults.
    proxy = ray_process_env(_settings(tmp_path, ingress_mode=IngressMode.PROXY))
    assert not LEAN_SERVE.keys() & proxy.keys()
