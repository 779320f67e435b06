"""Webhook ack path: Ray Serve (HAProxy mode) beside the same handler on plain uvicorn.

What it measures, in one run on loopback:

* ack latency p50/p99/max (client side) and webhooks/s for a bounded burst of Evolution
  `messages.upsert` webhooks posted to `/webhooks/evolution`, each with a fresh `data.key.id`,
  - through the real stack (`serve_app.runtime.start`: HAProxy -> Ingress replicas), and
  - through a plain-uvicorn twin (bench/uvicorn_twin.py) running the same `build_app()` with the
    same `IngressContext`, joined to the same Ray cluster, handing off to the same actors;
* server CPU per webhook from /proc utime+stime (+ reaped children) deltas (psutil), by process
  role: the ingress side (Serve replicas, haproxy, HAProxyManager, ProxyActor, ServeController)
  or the uvicorn process, the conversation actors, every Ray-cluster process, the PostgreSQL
  server (all its databases), and the load generator (this script's main thread); plus the
  PostgreSQL connections opened (pg_stat_database.sessions). "net" subtracts the idle rate
  sampled before the bursts. A burst's CPU window runs from its first post until every accepted
  message is in its conversation actor (the hand-off runs after the ack);
* memory (USS, RSS) of one live conversation actor and the average over all K, against a bare
  async Ray actor (and which packages the conversation actor loads beyond it), plus one
  ReplyWorker, the Embedder, one Ingress replica and the uvicorn twin for context.

The cliente gets the longest debounce the API allows, so no reply is produced while measuring:
only the ack path and the hand-off are exercised. No OpenAI key, no Evolution URL.

Run from the repository root (a default run takes about a minute on 2 cores):

    .venv/bin/python bench/webhook_ingress.py [--webhooks 2000] [--concurrency 16] [--chats 10]
        [--warmup 200] [--idle-s 5] [--json out.json] [--keep-logs] [--time-limit-s 600]

Database: DATABASE_URL if set; else a throwaway database on postgresql://postgres@127.0.0.1:5432
(dropped at the end) if reachable; else the embedded PostgreSQL. Everything started is torn down,
also on error or when the time limit is hit. Closed-loop load: at saturation the latency is
mostly queueing (concurrency / throughput); `--concurrency 1` shows the unloaded ack latency.
Targets for later tuning: ack p99 < 50 ms and <= 60 MB per live conversation actor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import ray

from engine.config import Settings
from engine.core.naming import session_id
from engine.db.session import asyncpg_dsn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (webhook bodies, free ports)

from tests.support import evolution_payloads as wa  # noqa: E402
from tests.support.http_server import free_port  # noqa: E402

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_TOKEN = f"bench-admin-{uuid.uuid4().hex}"
WEBHOOK_PATH = "/webhooks/evolution"
TARGET_P99_MS = 50.0
TARGET_USS_MB = 60.0
MB = 1024 * 1024

INGRESS_ROLES = ("serve_replica", "haproxy", "haproxy_manager", "proxy_actor", "serve_controller")
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------- arguments


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--webhooks", type=int, default=2000, help="measured webhooks per target")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--chats", type=int, default=10, help="live conversations (actors)")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured webhooks per target")
    p.add_argument("--idle-s", type=float, default=5.0, help="idle CPU sample before the bursts")
    p.add_argument("--request-timeout-s", type=float, default=10.0)
    p.add_argument("--time-limit-s", type=float, default=600.0, help="whole run, start-up incl.")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    p.add_argument("--keep-logs", action="store_true", help="keep the Ray temp dir and logs")
    args = p.parse_args()
    if min(args.webhooks, args.concurrency, args.chats) < 1 or args.warmup < 0:
        p.error("--webhooks, --concurrency and --chats must be >= 1, --warmup >= 0")
    return args


# --------------------------------------------------------------------------- time limit


class TimeLimitExceeded(Exception):
    pass


def install_time_limit(seconds: float) -> None:
    """SIGALRM raises in the main thread wherever it is; teardown still runs (ExitStack)."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"time limit of {seconds:.0f} s exceeded")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, math.ceil(seconds)))


def remaining_s(args: argparse.Namespace) -> float:
    return max(1.0, args.time_limit_s - (time.monotonic() - _STARTED))


# --------------------------------------------------------------------------- database


async def _reachable(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True


async def _admin_sql(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def choose_database(cleanup: contextlib.ExitStack) -> tuple[str | None, str]:
    """(DATABASE_URL or None for the embedded server, a description)."""
    from sqlalchemy.engine import make_url

    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured, "DATABASE_URL from the environment"
    if not asyncio.run(_reachable(SYSTEM_PG)):
        return None, "embedded PostgreSQL (no server on 127.0.0.1:5432)"
    name = f"conversa_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(SYSTEM_PG, f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        asyncio.run(_admin_sql(SYSTEM_PG, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        say(f"dropped database {name}")

    cleanup.callback(drop)
    url = make_url(SYSTEM_PG).set(database=name).render_as_string(hide_password=False)
    return url, f"throwaway database {name} on 127.0.0.1:5432"


# --------------------------------------------------------------------------- the stack


def bench_settings(database_url: str | None, data_dir: Path) -> Settings:
    base_port = free_port()
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="bench",
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        database_url=database_url,
        ray_address=None,
        ray_num_cpus=2,
        dashboard_port=free_port(),  # unused (dashboard off), but Ray checks it is free
        http_port=base_port,
        haproxy_stats_port=free_port(),
        haproxy_metrics_port=free_port(),
        fallback_proxy_port=free_port(),
        # Away from the tests' 32000-34999 range in case both run at once.
        direct_ingress_min_port=36000 + (base_port % 20) * 100,
        embedding_model="hash",
        chroma_url=None,
        openai_api_key=None,
        evolution_url=None,
        evolution_api_key=None,
    )


def start_stack(settings: Settings, ray_tmp: Path, cleanup: contextlib.ExitStack) -> Any:
    from serve_app import runtime

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no ~/.ray/auth_token side effect
    # Only shortens teardown: a stopping direct-ingress replica otherwise stays up 30 s so that
    # load balancers can deregister it. No replica stops during the measurements.
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    hap_dir = runtime.haproxy_runtime_dir(settings)
    # Registered before the stop below, so they run after it (ExitStack is LIFO).
    cleanup.callback(shutil.rmtree, hap_dir, ignore_errors=True)
    cleanup.callback(reap_leftovers, [str(ray_tmp), str(hap_dir)])
    try:
        running = runtime.start(settings, dashboard=False, temp_dir=str(ray_tmp))
    except BaseException:
        if ray.is_initialized():
            ray.shutdown()
        raise
    cleanup.callback(stop_stack, running)
    say(f"stack up at {running.base_url}: {running.timings_s}")
    return running


def stop_stack(running: Any) -> None:
    started = time.monotonic()
    say("stopping the stack (Running.stop(): Ray, Serve, every actor, embedded PostgreSQL if any)")
    running.stop()
    say(f"stack stopped in {time.monotonic() - started:.1f} s")


def reap_leftovers(markers: list[str]) -> None:
    """Wait for processes of this run's stack that outlive ray.shutdown() (haproxy is reparented
    to init when its manager actor dies) and terminate, by pid, any still there after 15 s."""
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        cmd = " ".join(process.info["cmdline"] or [])
        if process.pid != os.getpid() and any(marker in cmd for marker in markers):
            leftovers.append(process)
    _, alive = psutil.wait_procs(leftovers, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    if alive:
        say(f"terminated {len(alive)} leftover process(es) of the stack")


def start_twin(settings: Settings, data_dir: Path, nice: int) -> tuple[subprocess.Popen, str, Path]:
    """The plain-uvicorn twin on its own port, connected to this Ray cluster."""
    gcs = ray.get_runtime_context().gcs_address
    settings_file = data_dir / "twin-settings.pickle"
    settings_file.write_bytes(pickle.dumps(settings))
    port = free_port()
    log_path = data_dir / "uvicorn-twin.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "uvicorn_twin.py"), "--settings",
             str(settings_file), "--gcs", gcs, "--port", str(port), "--nice", str(nice)],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}", log_path


def stop_twin(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    say(f"uvicorn twin stopped (exit code {process.returncode})")


async def wait_healthy(session: aiohttp.ClientSession, base_url: str, process: Any = None,
                       timeout_s: float = 60.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{base_url} exited with code {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{base_url}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{base_url}/healthz did not answer in {timeout_s} s")


# --------------------------------------------------------------------------- tenant and bodies


@dataclass
class Tenant:
    cliente_id: int
    instance: str
    secret: str
    chats: list[str]

    def session_ids(self) -> list[str]:
        return [session_id(self.cliente_id, chat) for chat in self.chats]


async def create_tenant(session: aiohttp.ClientSession, base_url: str, chats: int) -> Tenant:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    # Long waits: no turn may fire while measuring (300 and 3600 are the API's maxima).
    body = {"nome": "Bench Loja", "status": "ATIVO", "debounce_s": 300, "max_wait_s": 3600}
    async with session.post(f"{base_url}/admin/clientes", json=body, headers=admin) as r:
        assert r.status == 201, await r.text()
        cliente_id = (await r.json())["id"]
    instance = f"bench-{cliente_id}-{uuid.uuid4().hex[:6]}"
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    body = {"instance_id": instance, "webhook_secret": secret}
    async with session.post(f"{base_url}/admin/clientes/{cliente_id}/instances", json=body,
                            headers=admin) as r:  # fmt: skip
        assert r.status == 201, await r.text()
    return Tenant(cliente_id, instance, secret, [wa.new_chat() for _ in range(chats)])


def make_bodies(tenant: Tenant, count: int, label: str) -> list[tuple[str, bytes]]:
    """(chat, JSON body) round-robin over the chats, each with a fresh `data.key.id`."""
    out = []
    for i in range(count):
        chat = tenant.chats[i % len(tenant.chats)]
        payload = wa.text(tenant.instance, chat, f"{label} mensagem {i}: qual o horário?")
        out.append((chat, json.dumps(payload).encode()))
    return out


# --------------------------------------------------------------------------- load generator


@dataclass
class Burst:
    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    accepted_per_chat: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    loadgen_cpu_s: float = 0.0


async def post_burst(
    session: aiohttp.ClientSession,
    url: str,
    tenant: Tenant,
    bodies: list[tuple[str, bytes]],
    concurrency: int,
    label: str,
) -> Burst:
    """Posts every body with `concurrency` in flight; prints progress every 2 s."""
    result = Burst()
    headers = {"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"}
    queue: Iterator[tuple[str, bytes]] = iter(bodies)

    async def worker() -> None:
        for chat, body in queue:  # one shared iterator: each body is posted once
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    text = await response.read()
                result.latencies_s.append(time.perf_counter() - started)
                outcome = json.loads(text).get("status") if response.status == 200 else None
                result.outcomes[outcome or f"http_{response.status}"] += 1
                if outcome == "accepted":
                    result.accepted_per_chat[chat] += 1
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                result.outcomes[type(e).__name__] += 1

    async def progress() -> None:
        while True:
            await asyncio.sleep(2.0)
            done = sum(result.outcomes.values())
            rate = done / max(1e-9, time.perf_counter() - started)
            say(f"  {label}: {done}/{len(bodies)} answered ({rate:.0f}/s)")

    cpu_before, started = time.thread_time(), time.perf_counter()
    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    result.wall_s = time.perf_counter() - started
    result.loadgen_cpu_s = time.thread_time() - cpu_before
    return result


# --------------------------------------------------------------------------- conversation actors


async def actor_handles(tenant: Tenant, ns: str, timeout_s: float) -> list[Any]:
    """Wait until every chat's conversation actor exists and has restored its state."""
    deadline = time.monotonic() + timeout_s
    handles: dict[str, Any] = {}
    while len(handles) < len(tenant.chats):
        for name in tenant.session_ids():
            if name not in handles:
                with contextlib.suppress(ValueError):
                    handles[name] = await asyncio.to_thread(ray.get_actor, name, namespace=ns)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(handles)}/{len(tenant.chats)} actors in {timeout_s} s")
        await asyncio.sleep(0.2)
    await asyncio.gather(*(h.status.remote() for h in handles.values()))
    return [handles[name] for name in tenant.session_ids()]


async def pending_per_actor(handles: list[Any]) -> list[int]:
    return [s["pending"] for s in await asyncio.gather(*(h.status.remote() for h in handles))]


async def wait_delivered(handles: list[Any], expected: int, timeout_s: float = 60.0) -> float:
    """Seconds until the actors hold `expected` pending messages in total (hand-off done)."""
    started = time.monotonic()
    while True:
        held = sum(await pending_per_actor(handles))
        if held >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            say(f"  WARNING: only {held}/{expected} messages reached the actors in {timeout_s} s")
            return float("nan")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- processes and CPU


def role_of(process: psutil.Process) -> str:
    try:
        cmd = " ".join(process.cmdline())
        name = process.name()
    except psutil.Error:
        return "gone"
    prefixes = {
        "ray::ServeReplica": "serve_replica",
        "ray::HAProxyManager": "haproxy_manager",
        "ray::ProxyActor": "proxy_actor",
        "ray::ServeController": "serve_controller",
        "ray::ConversationActor": "conversation",
        "ray::ReplyWorker": "reply_worker",
        "ray::Embedder": "embedder",
        "ray::TenantRetriever": "retriever",
    }
    for prefix, role in prefixes.items():
        if cmd.startswith(prefix):
            return role
    if cmd.startswith("ray::"):  # other actors and workers: Supervisor, IDLE, DashboardAgent...
        return cmd.removeprefix("ray::").split(".")[0].split(" ")[0]
    if name == "haproxy" or cmd.split(" ")[0].endswith("/haproxy"):
        return "haproxy"
    if name in ("raylet", "gcs_server"):
        return name
    return "ray_other"  # Ray's Python daemons: log_monitor.py, monitor.py


def find_postmaster(database_url: str | None, data_dir: Path) -> psutil.Process | None:
    """The PostgreSQL server holding this run's database, if it runs on this machine: the
    embedded one under data_dir, or the parent of a backend whose title names the database."""
    from sqlalchemy.engine import make_url

    if not database_url:
        return None
    db_name = make_url(asyncpg_dsn(database_url)).database
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        argv = process.info["cmdline"] or []
        if process.info["name"] != "postgres":
            continue
        if "-D" in argv and str(data_dir.resolve()) in " ".join(argv):
            return process
        if f" {db_name} " in " ".join(argv):
            with contextlib.suppress(psutil.Error):
                return psutil.Process(process.info["ppid"])
    return None


@dataclass
class Sampler:
    """CPU by process role. Each sample rediscovers the processes and reads utime+stime plus the
    CPU of children already reaped (cutime+cstime), so that processes starting or exiting between
    two samples (e.g. PostgreSQL backends) are accounted for exactly in the totals."""

    twin_pid: int | None = None
    postmaster: psutil.Process | None = None

    def processes(self) -> dict[int, tuple[str, psutil.Process]]:
        twin = {}
        if self.twin_pid is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.twin_pid)
                twin = {p.pid: p for p in [root, *root.children(recursive=True)]}
        out = {}
        # Ray: this driver's descendants (gcs_server, raylet, Ray's daemons, every worker and
        # haproxy under the raylet) minus the twin and an embedded PostgreSQL.
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if process.pid not in twin and process.name() not in ("postgres", "pg_ctl"):
                    out[process.pid] = (role_of(process), process)
        out |= {pid: ("uvicorn_twin", p) for pid, p in twin.items()}
        if self.postmaster is not None:
            with contextlib.suppress(psutil.Error):
                for p in [self.postmaster, *self.postmaster.children(recursive=True)]:
                    out[p.pid] = ("postgres_server", p)
        return out

    def sample(self) -> dict[int, tuple[str, float]]:
        out = {}
        for pid, (role, process) in self.processes().items():
            with contextlib.suppress(psutil.Error):
                t = process.cpu_times()
                out[pid] = (role, t.user + t.system + t.children_user + t.children_system)
        return out

    def inventory(self) -> dict[str, str]:
        """role -> 'count (nice n)'."""
        counts: Counter = Counter()
        nices: dict[str, set[int]] = {}
        for role, process in self.processes().values():
            counts[role] += 1
            with contextlib.suppress(psutil.Error):
                nices.setdefault(role, set()).add(process.nice())
        return {r: f"{n} (nice {','.join(map(str, sorted(nices.get(r, ()))))})"
                for r, n in sorted(counts.items())}  # fmt: skip

    def first_pid(self, role: str) -> int | None:
        return next((pid for pid, (r, _) in sorted(self.processes().items()) if r == role), None)


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict:
    """CPU seconds per role between two samples, plus the sums that are compared."""
    roles: Counter = Counter()
    for role, seconds in after.values():
        roles[role] += seconds
    for role, seconds in before.values():
        roles[role] -= seconds
    not_ray = ("uvicorn_twin", "postgres_server")
    return {
        "roles": dict(roles),
        "serve_ingress": sum(roles[r] for r in INGRESS_ROLES),
        "uvicorn_twin": roles["uvicorn_twin"],
        "conversation_actors": roles["conversation"],
        "ray_cluster_total": sum(v for r, v in roles.items() if r not in not_ray),
        "postgres_server": roles["postgres_server"],
    }


def net_of_idle(cpu: dict, idle: dict, idle_s: float, window_s: float) -> dict:
    """The same sums minus the idle background rate times the window."""
    return {k: v - idle[k] / idle_s * window_s for k, v in cpu.items() if k != "roles"}


class PgStats:
    """pg_stat_database counters of this run's database, over one connection kept open."""

    def __init__(self, database_url: str):
        self._url = asyncpg_dsn(database_url)
        self._connection: Any = None

    async def sessions(self) -> int:
        """Connections ever opened to the database (a closed one is counted when it exits)."""
        if self._connection is None:
            self._connection = await asyncpg.connect(self._url, timeout=10)
        return await self._connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


# --------------------------------------------------------------------------- memory


@ray.remote(num_cpus=0)
class BareActor:
    """An async Ray actor with none of our code: the floor a conversation actor stands on."""

    async def pid(self) -> int:
        return os.getpid()


def _loaded_packages(actor: Any) -> list[str]:
    """Runs inside an actor (`__ray_call__`): the top-level packages it has imported."""
    return sorted({name.split(".")[0] for name in sys.modules if not name.startswith("_")})


def memory_of(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"pid": pid, "uss_mb": info.uss / MB, "pss_mb": info.pss / MB, "rss_mb": info.rss / MB}


async def memory_report(handles: list[Any], sampler: Sampler) -> dict[str, Any]:
    statuses = await asyncio.gather(*(h.status.remote() for h in handles))
    actors = [memory_of(s["pid"]) for s in statuses]
    out: dict[str, Any] = {
        "conversation_actor": actors[0],
        "conversation_actor_avg": {
            "count": len(actors),
            **{k: sum(a[k] for a in actors) / len(actors) for k in ("uss_mb", "pss_mb", "rss_mb")},
            "pending_messages_avg": sum(s["pending"] for s in statuses) / len(statuses),
        },
    }
    for role in ("reply_worker", "embedder", "serve_replica", "uvicorn_twin"):
        pid = sampler.first_pid(role)
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                out[role] = memory_of(pid)
    return out


async def actor_floor(conversation: Any) -> dict[str, Any]:
    """USS of a bare async actor, and the packages a conversation actor loads beyond it."""
    if __name__ != "__main__":  # imported: ship this module's functions by value to the actors
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    bare = BareActor.remote()
    try:
        floor = memory_of(await bare.pid.remote())
        mine = await conversation.__ray_call__.remote(_loaded_packages)
        base = await bare.__ray_call__.remote(_loaded_packages)
    finally:
        ray.kill(bare)
    return {"bare_actor": floor, "packages_beyond_bare_actor": sorted(set(mine) - set(base))}


# --------------------------------------------------------------------------- one target


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class Bench:
    """What every phase needs."""

    args: argparse.Namespace
    session: aiohttp.ClientSession
    tenant: Tenant
    handles: list[Any]
    sampler: Sampler
    pg: PgStats


async def measure_target(bench: Bench, name: str, base_url: str, idle: dict) -> dict[str, Any]:
    args = bench.args
    url = base_url + WEBHOOK_PATH
    bodies = make_bodies(bench.tenant, args.webhooks, name)
    held_before = sum(await pending_per_actor(bench.handles))
    sessions_before = await bench.pg.sessions()
    say(f"{name}: burst of {args.webhooks} webhooks, concurrency {args.concurrency} -> {url}")
    cpu_before = bench.sampler.sample()
    started = time.monotonic()
    async with asyncio.timeout(remaining_s(args)):
        burst = await post_burst(bench.session, url, bench.tenant, bodies, args.concurrency, name)
    accepted = sum(burst.accepted_per_chat.values())
    settle_s = await wait_delivered(bench.handles, held_before + accepted)
    window_s = time.monotonic() - started
    cpu = cpu_by_role(cpu_before, bench.sampler.sample())
    net = net_of_idle(cpu, idle["cpu"], idle["seconds"], window_s)
    await asyncio.sleep(1.0)  # closed backends report their session when they exit
    sessions = await bench.pg.sessions() - sessions_before
    lat_ms = [x * 1000 for x in burst.latencies_s]
    say(
        f"{name}: {dict(burst.outcomes)} in {burst.wall_s:.2f} s, p99 "
        f"{percentile(lat_ms, 99):.1f} ms, all delivered {settle_s:.2f} s after the last ack"
    )
    per = 1000 / args.webhooks
    return {
        "target": name,
        "posted": args.webhooks,
        "outcomes": dict(burst.outcomes),
        "accepted": accepted,
        "ack_ms": {"p50": percentile(lat_ms, 50), "p90": percentile(lat_ms, 90),
                   "p99": percentile(lat_ms, 99), "max": max(lat_ms, default=float("nan"))},
        "webhooks_per_s": len(lat_ms) / burst.wall_s,
        "burst_s": burst.wall_s,
        "settle_s": settle_s,
        "cpu_window_s": window_s,
        "cpu_ms_per_webhook": {k: v * per for k, v in cpu.items() if k != "roles"},
        "cpu_ms_per_webhook_net": {k: v * per for k, v in net.items()},
        "cpu_ms_per_webhook_by_role": {k: v * per for k, v in sorted(cpu["roles"].items())},
        "loadgen_cpu_ms_per_request": burst.loadgen_cpu_s * per,
        "pg_connections_opened": sessions,
    }  # fmt: skip


async def warm_up(bench: Bench, name: str, base_url: str) -> None:
    args = bench.args
    if not args.warmup:
        return
    held = sum(await pending_per_actor(bench.handles))
    say(f"{name}: warm-up, {args.warmup} webhooks")
    bodies = make_bodies(bench.tenant, args.warmup, f"{name}-warmup")
    async with asyncio.timeout(remaining_s(args)):
        burst = await post_burst(bench.session, base_url + WEBHOOK_PATH, bench.tenant, bodies,
                                 args.concurrency, f"{name} warm-up")  # fmt: skip
    await wait_delivered(bench.handles, held + sum(burst.accepted_per_chat.values()))
    if set(burst.outcomes) != {"accepted"}:
        say(f"  WARNING: warm-up outcomes {dict(burst.outcomes)}")


async def sample_idle(sampler: Sampler, seconds: float) -> dict[str, Any]:
    say(f"sampling idle background CPU for {seconds:.0f} s")
    before = sampler.sample()
    await asyncio.sleep(seconds)
    return {"seconds": seconds, "cpu": cpu_by_role(before, sampler.sample())}


# --------------------------------------------------------------------------- the run


async def prewarm(session: aiohttp.ClientSession, base_url: str, args: argparse.Namespace,
                  namespace: str) -> tuple[Tenant, list[Any]]:  # fmt: skip
    """A cliente with an instance, and one live conversation actor per chat."""
    tenant = await create_tenant(session, base_url, args.chats)
    say(f"cliente {tenant.cliente_id}, instance {tenant.instance}: pre-warming {args.chats} "
        "conversation actors (one webhook each)")  # fmt: skip
    bodies = make_bodies(tenant, args.chats, "pre-warm")
    burst = await post_burst(session, base_url + WEBHOOK_PATH, tenant, bodies, 4, "pre-warm")
    if set(burst.outcomes) != {"accepted"}:
        raise RuntimeError(f"pre-warm webhooks were not all accepted: {dict(burst.outcomes)}")
    handles = await actor_handles(tenant, namespace, timeout_s=min(120, remaining_s(args)))
    say(f"{len(handles)} conversation actors live")
    await warm_pool_settled(namespace)
    return tenant, handles


async def warm_pool_settled(namespace: str, quiet_s: float = 6.0) -> None:
    """Wait until the warm pool has refilled what the new actors took (WARM_WORKERS): those
    workers' boots are the new chats' cost, not the ack path's, and must not land in a burst."""
    supervisor = ray.get_actor("supervisor", namespace=namespace)
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        asked = (await supervisor.stats.remote())["workers_prestarted"]
        if asked != last:
            last, quiet_since = asked, time.monotonic()
        await asyncio.sleep(0.5)
    say(f"warm pool settled ({last} workers asked for so far)")


async def run(args: argparse.Namespace, running: Any, data_dir: Path,
              cleanup: contextlib.ExitStack) -> dict[str, Any]:  # fmt: skip
    settings = running.settings
    timeout = aiohttp.ClientTimeout(total=args.request_timeout_s)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    pg = PgStats(settings.database_url)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tenant, handles = await prewarm(session, running.base_url, args, settings.ray_namespace)
        sampler = Sampler(postmaster=find_postmaster(settings.database_url, data_dir))
        memory_fresh = await memory_report(handles, sampler)
        floor = await actor_floor(handles[0])

        replica_nice = psutil.Process(sampler.first_pid("serve_replica") or os.getpid()).nice()
        twin, twin_url, twin_log = start_twin(settings, data_dir, replica_nice - os.nice(0))
        cleanup.callback(stop_twin, twin)
        say(f"uvicorn twin pid {twin.pid} at {twin_url} (nice {replica_nice}, like the replicas)")
        await wait_healthy(session, twin_url, twin)
        sampler.twin_pid = twin.pid

        bench = Bench(args, session, tenant, handles, sampler, pg)
        try:
            await warm_up(bench, "serve", running.base_url)
            await warm_up(bench, "uvicorn", twin_url)
            say(f"processes sampled: {sampler.inventory()}")
            idle = await sample_idle(sampler, args.idle_s)
            results = {
                "serve": await measure_target(bench, "serve", running.base_url, idle),
                "uvicorn": await measure_target(bench, "uvicorn", twin_url, idle),
            }
            memory = await memory_report(handles, sampler)
        finally:
            await pg.close()
    return {
        "config": {**{k: str(v) for k, v in vars(args).items()},
                   "cpus": os.cpu_count(), "ingress_replicas": settings.ingress_replicas,
                   "db_pool_size": settings.db_pool_size,
                   "ingress_mode": settings.ingress_mode.value,
                   "process_inventory": sampler.inventory(), "twin_log": str(twin_log)},
        "idle_cores": {k: v / idle["seconds"] for k, v in idle["cpu"].items() if k != "roles"},
        "results": results,
        "memory_after_prewarm": memory_fresh,
        "memory_after_bursts": memory,
        "actor_floor": floor,
    }  # fmt: skip


# --------------------------------------------------------------------------- logs


def scan_logs(paths: list[Path], limit: int = 3) -> dict[str, Any]:
    """Lines that look like errors, per file (first `limit` distinct ones kept); a traceback is
    shown as its exception line."""
    markers = ('"level": "ERROR"', " ERROR ", "Traceback (most recent call last)")
    found: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            continue
        lines = path.read_text(errors="replace").splitlines()
        hits = [_error_summary(lines, i) for i, line in enumerate(lines)
                if any(m in line for m in markers)]  # fmt: skip
        if hits:
            found[str(path)] = {"count": len(hits), "first": list(dict.fromkeys(hits))[:limit]}
    return found


def _error_summary(lines: list[str], i: int) -> str:
    if "Traceback (most recent call last)" not in lines[i]:
        return lines[i].strip()
    for line in lines[i + 1 : i + 400]:
        if line and not line.startswith((" ", "Traceback", "During handling", "The above")):
            return f"Traceback: {line.strip()}"
    return lines[i].strip()


def log_files(ray_tmp: Path, twin_log: Path | None) -> list[Path]:
    logs = ray_tmp / "session_latest" / "logs"
    files = sorted((logs / "serve").glob("*.log")) + sorted(logs.glob("worker-*.err"))
    return files + ([twin_log] if twin_log else [])


# --------------------------------------------------------------------------- report


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def ratio(a: float, b: float) -> str:
    return "n/a" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.1f}x"


def _row(label: str, serve: float, uvicorn: float, digits: int = 2, compare: bool = True):
    versus = ratio(serve, uvicorn) if compare else ""
    return (label, fmt(serve, digits), fmt(uvicorn, digits), versus)


def print_report(report: dict[str, Any]) -> None:
    s, u = report["results"]["serve"], report["results"]["uvicorn"]
    sc, uc = s["cpu_ms_per_webhook"], u["cpu_ms_per_webhook"]
    sn, un = s["cpu_ms_per_webhook_net"], u["cpu_ms_per_webhook_net"]
    sa, ua = s["ack_ms"], u["ack_ms"]
    rows = [
        ("accepted/posted", f"{s['accepted']}/{s['posted']}", f"{u['accepted']}/{u['posted']}", ""),
        _row("ack p50 ms", sa["p50"], ua["p50"]),
        _row(f"ack p99 ms (target < {TARGET_P99_MS:.0f})", sa["p99"], ua["p99"]),
        _row("ack max ms", sa["max"], ua["max"], compare=False),
        _row("webhooks/s", s["webhooks_per_s"], u["webhooks_per_s"], 0),
        _row("ingress CPU ms/webhook", sc["serve_ingress"], uc["uvicorn_twin"]),
        _row("  net of idle", sn["serve_ingress"], un["uvicorn_twin"]),
        _row("conversation actors ms/webhook", sc["conversation_actors"],
             uc["conversation_actors"], compare=False),
        _row("all Ray processes ms/webhook", sc["ray_cluster_total"], uc["ray_cluster_total"],
             compare=False),
        _row("server total ms/webhook (Ray [+twin])", sc["ray_cluster_total"],
             uc["ray_cluster_total"] + uc["uvicorn_twin"]),
        _row("  net of idle", sn["ray_cluster_total"],
             un["ray_cluster_total"] + un["uvicorn_twin"]),
        _row("PostgreSQL server ms/webhook (all DBs)", sc["postgres_server"],
             uc["postgres_server"], compare=False),
        _row("PostgreSQL connections opened", s["pg_connections_opened"],
             u["pg_connections_opened"], 0, compare=False),
        _row("load generator ms/request", s["loadgen_cpu_ms_per_request"],
             u["loadgen_cpu_ms_per_request"], compare=False),
        _row("last ack -> all delivered, s", s["settle_s"], u["settle_s"], compare=False),
    ]  # fmt: skip
    print("\n=== webhook ack path: Serve (HAProxy) vs plain uvicorn, same run ===")
    _table(("", "serve", "uvicorn", "serve/uvicorn"), rows)

    print("\nCPU ms/webhook by process role (gross, first post until all delivered):")
    sr, ur = s["cpu_ms_per_webhook_by_role"], u["cpu_ms_per_webhook_by_role"]
    roles = sorted(set(sr) | set(ur))
    _table(
        ("role", "serve burst", "uvicorn burst"),
        [(r, fmt(sr.get(r, 0.0), 3), fmt(ur.get(r, 0.0), 3)) for r in roles],
    )
    idle = report["idle_cores"]
    print(
        f"idle background (cores): Serve ingress {idle['serve_ingress']:.3f}, all Ray "
        f"{idle['ray_cluster_total']:.3f}, uvicorn twin {idle['uvicorn_twin']:.3f}, "
        f"PostgreSQL {max(0.0, idle['postgres_server']):.3f}"
    )
    print("\nMemory (MB):")
    _table(("process", "USS", "RSS", ""), _memory_rows(report))
    extra = report["actor_floor"]["packages_beyond_bare_actor"]
    print(f"packages a conversation actor loads beyond a bare actor: {', '.join(extra)}")
    uss = report["memory_after_bursts"]["conversation_actor_avg"]["uss_mb"]
    p99_met = "met" if sa["p99"] < TARGET_P99_MS else "NOT met"
    uss_met = "met" if uss <= TARGET_USS_MB else "NOT met"
    print(
        f"\nTargets: Serve ack p99 < {TARGET_P99_MS:.0f} ms: {fmt(sa['p99'], 1)} ms ({p99_met}); "
        f"<= {TARGET_USS_MB:.0f} MB per live conversation: {uss:.1f} MB USS ({uss_met})"
    )


def _memory_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for when in ("memory_after_prewarm", "memory_after_bursts"):
        one, avg = report[when]["conversation_actor"], report[when]["conversation_actor_avg"]
        label = when.removeprefix("memory_").replace("_", " ")
        pending = f"{avg['pending_messages_avg']:.0f} pending msgs each"
        rows += [
            (f"1 conversation actor, {label}", fmt(one["uss_mb"], 1), fmt(one["rss_mb"], 1),
             f"pid {one['pid']}"),
            (f"avg of {avg['count']} conversation actors, {label}", fmt(avg["uss_mb"], 1),
             fmt(avg["rss_mb"], 1), pending),
        ]  # fmt: skip
    floor = report["actor_floor"]["bare_actor"]
    rows.append(("bare async Ray actor (floor)", fmt(floor["uss_mb"], 1), fmt(floor["rss_mb"], 1),
                 "no Conversa code"))  # fmt: skip
    after = report["memory_after_bursts"]
    for role in ("reply_worker", "embedder", "serve_replica", "uvicorn_twin"):
        if role in after:
            m = after[role]
            rows.append((role, fmt(m["uss_mb"], 1), fmt(m["rss_mb"], 1), f"pid {m['pid']}"))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        first, *rest = (str(c) for c in row)
        print("  " + first.ljust(widths[0]) + "".join(
            "  " + c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)))  # fmt: skip


# --------------------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    install_time_limit(args.time_limit_s)
    with contextlib.ExitStack() as cleanup:  # every start registers its own teardown
        try:
            report = measure(args, cleanup)
        finally:
            signal.alarm(0)  # the teardown that follows is never cut short
            say("tearing down")
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


def measure(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> dict[str, Any]:
    database_url, db_note = choose_database(cleanup)
    say(f"database: {db_note}")
    data_dir = Path(tempfile.mkdtemp(prefix="conversa-bench-"))
    cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
    ray_tmp = Path(tempfile.mkdtemp(prefix="cvr-b-", dir="/tmp"))  # short: socket path limits
    if not args.keep_logs:
        cleanup.callback(shutil.rmtree, ray_tmp, ignore_errors=True)
    report: dict[str, Any] = {}
    try:
        say("starting the stack: PostgreSQL, migrations, Ray, shared actors, Serve (HAProxy)")
        running = start_stack(bench_settings(database_url, data_dir), ray_tmp, cleanup)
        report = asyncio.run(run(args, running, data_dir, cleanup))
    finally:  # also on error: what went wrong is often in these logs
        twin_log = data_dir / "uvicorn-twin.log"
        report["log_errors"] = scan_logs(log_files(ray_tmp, twin_log))
        report["ray_temp_dir"] = str(ray_tmp) + ("" if args.keep_logs else " (deleted)")
        _print_log_errors(report["log_errors"])
        if args.keep_logs and twin_log.is_file():
            shutil.copy(twin_log, ray_tmp / "uvicorn-twin.log")
    return report


def _print_log_errors(found: dict[str, Any]) -> None:
    if not found:
        say("logs: no ERROR/Traceback lines in the Serve, worker and uvicorn-twin logs")
        return
    say(f"logs: error-looking lines in {len(found)} file(s):")
    for path, hits in found.items():
        print(f"    {path}: {hits['count']} line(s)")
        for line in hits["first"]:
            print(f"      {line[:300]}")


if __name__ == "__main__":
    sys.exit(main())
