"""Conversa beside the baseline it replaces, driven by the same workload in one run (issue 13).

    .venv/bin/python bench/compare.py [--clientes 10] [--chats 60] [--bursts 3] [--ramp-s 30]
        [--concurrency 16] [--flood 1000] [--debounce-s 0.5] [--profile] [--json out.json]
        [--only conversa|baseline] [--nice N] [--time-limit-s 1200]

About 10 minutes on a busy 2-core node (Conversa's ~80 actor start-ups dominate), far less on a
quiet one; `--chats 300 --flood 5000` for a bigger run (raise --time-limit-s).

Each system in turn, on its own fresh PostgreSQL database (postgres@127.0.0.1:5432, or
BENCH_POSTGRES_URL), against the same fakes (bench/fakes.py: Evolution with no typing delay, an
instant OpenAI-compatible model):

* **Conversa** exactly as the other benchmarks start it (`serve_app.runtime.start`: local Ray,
  Serve's HAProxy ingress, 2 replicas, 2 reply workers, `EMBEDDING_MODEL=hash`), with
  `TYPING_MS_PER_CHAR=0`, `TYPING_PRESENCE=false` and `--debounce-s`; clientes, instances and
  knowledge created through its operator API;
* **the baseline** (bench/baseline.py): one uvicorn process at the Serve replicas' nice (or both
  at `--nice`, via RAY_worker_niceness); its
  clientes and instances written straight to the database, knowledge posted to it.

Phases per system (bench/workload.py): a warm-up chat per cliente; **conversations** (every chat's
bursts, each customer waiting for its reply: reply latency, answered once/twice/never, ack
latency, end-to-end server CPU per webhook); then every cliente's debounce is raised to 300 s
and a **flood** of `--flood` webhooks at `--concurrency` measures the ack path alone (webhooks/s,
ack p50/p99, server CPU per webhook, gross and net of the idle rate sampled just before).

Server CPU: Conversa = every process of its Ray cluster (raylet, GCS, HAProxy, Serve replicas
and controller, conversation, retriever, reply-worker and embedder actors) + the PostgreSQL
backends of its database; baseline = its process + its database's backends. The load generator
and the fakes are not counted (their CPU per request is printed).

`--profile` adds one more flood per system with py-spy (`--gil`) on every Serve replica (and on
the baseline), plus per-thread CPU from /proc, and prints where the ack path spends its CPU, by
step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests.support
sys.path.insert(0, str(BENCH))  # the sibling benchmarks

import workload as wl  # noqa: E402

SYSTEM_PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RAISED_DEBOUNCE = {"debounce_s": 300.0, "max_wait_s": 3600.0}  # the API's maxima
PROFILE_RATE_HZ = 200
# Threads that run Python: the main thread, and threads Python started (Linux names them after
# the process title at the time: a Serve replica's user-code thread is still "ray::IDLE").
# Ray's C++ threads (worker.io, client.poll0, timer_manager, ...) name themselves.
PYTHON_THREADS = ("main", "ray::IDLE", "python", "ray::ServeRepli")
INGRESS_ROLES = ("serve_replica", "haproxy", "haproxy_manager", "proxy_actor", "serve_controller")
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    d = wl.Spec()
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clientes", type=int, default=d.clientes)
    p.add_argument("--chats", type=int, default=d.chats)
    p.add_argument("--bursts", type=int, default=d.bursts, help="bursts per chat")
    p.add_argument("--ramp-s", type=float, default=d.ramp_s, help="chats start over this time")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="posts in flight")
    p.add_argument("--flood", type=int, default=d.flood, help="webhooks in the ack-path flood")
    p.add_argument("--debounce-s", type=float, default=d.debounce_s)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--idle-s", type=float, default=3.0, help="idle CPU sample before a phase")
    p.add_argument("--only", choices=("conversa", "baseline"), help="run one system only")
    p.add_argument(
        "--nice",
        type=int,
        help="niceness of Ray's workers (RAY_worker_niceness) and of the baseline; default: "
        "Ray's own (15), matched by the baseline. On a machine shared with nice-0 work, a lone "
        "nice-15 process (the baseline) is starved where 100 of them (Conversa) are not",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the ack path (extra flood)")
    p.add_argument("--json", type=Path, help="also write every number here")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--time-limit-s", type=float, default=1200.0)
    args = p.parse_args()
    if min(args.clientes, args.chats, args.bursts, args.concurrency) < 1:
        p.error("--clientes, --chats, --bursts and --concurrency must be >= 1")
    return args


def spec_of(args: argparse.Namespace) -> wl.Spec:
    return wl.Spec(
        clientes=args.clientes,
        chats=args.chats,
        bursts=args.bursts,
        ramp_s=args.ramp_s,
        debounce_s=args.debounce_s,
        concurrency=args.concurrency,
        flood=args.flood,
        seed=args.seed,
    )


def warmup_chats(workload: wl.Workload) -> tuple[wl.Chat, ...]:
    """One extra chat per cliente, one burst of two messages, tagged apart from the measured
    chats: it warms pools, caches and each cliente's retriever, and is not measured."""
    out = []
    for i in range(workload.spec.clientes):
        burst = wl.Burst(
            (f"Olá [b{10_000 + i}.0]", f"Tem {wl.PRODUCTS[i % 8]}? [b{10_000 + i}.0]"), (0.05,)
        )
        jid = f"55118{i:08d}@s.whatsapp.net"
        out.append(wl.Chat(10_000 + i, i, jid, 0.02 * i, (burst,), ()))
    return tuple(out)


# --------------------------------------------------------------------------- the fakes


def start_fakes(cleanup: contextlib.ExitStack, log_dir: Path) -> dict[str, Any]:
    log_file = (log_dir / "fakes.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fakes.py")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_file,
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        log_file.close()

    cleanup.callback(stop)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"bench/fakes.py did not start; see {log_dir / 'fakes.log'}")
    info = json.loads(line)
    say(
        f"fakes up (pid {process.pid}): Evolution {info['evolution_url']}, "
        f"model {info['openai_base_url']}"
    )
    return info


def host_ticks() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far (/proc/stat; everyone's work)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / hz, sum(fields) / hz


def host_report(before: tuple[float, float], window_s: float, server_s: float) -> dict[str, Any]:
    busy, _ = host_ticks()
    busy_cores = (busy - before[0]) / window_s
    return {
        "loadavg_1m": os.getloadavg()[0],
        "machine_busy_cores": busy_cores,
        "this_system_cores": server_s / window_s,
        "others_cores": busy_cores - server_s / window_s,
    }


def tree(pid: int) -> set[int]:
    try:
        root = psutil.Process(pid)
        return {pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.Error:
        return set()


# --------------------------------------------------------------------------- measuring one system


@dataclasses.dataclass
class System:
    """What the phases need of a started system."""

    name: str
    base_url: str
    database: str
    meter: wl.CpuMeter
    setup: Callable[[httpx.AsyncClient, wl.Workload], Any]  # async → wl.Target
    raise_debounce: Callable[[httpx.AsyncClient, wl.Target], Any]  # async
    ack_pids: Callable[[], list[int]]  # processes to profile on the ack path
    server_roles: Callable[[dict[str, float]], dict[str, float]]  # role CPU → summary sums


async def measure(
    system: System, workload: wl.Workload, fakes_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    spec = workload.spec
    limits = httpx.Limits(
        max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
    )
    report: dict[str, Any] = {"system": system.name}
    async with (
        httpx.AsyncClient(timeout=30, limits=limits) as http,
        httpx.AsyncClient(timeout=30) as side,
    ):
        fakes = wl.FakesClient(side, fakes_url)
        started = time.monotonic()
        target = await system.setup(side, workload)
        report["setup_s"] = time.monotonic() - started
        say(
            f"{system.name}: {len(target.instances)} clientes with instances and knowledge "
            f"in {report['setup_s']:.1f} s"
        )

        warm = await wl.run_conversations(
            http, target, workload, fakes, chats=warmup_chats(workload), say=say
        )
        report["warmup"] = wl.reply_summary(warm)
        say(f"{system.name}: warm-up {report['warmup']['answered']}")

        idle = await sample_idle(system.meter, args.idle_s)
        say(
            f"{system.name}: conversations: {len(workload.chats)} chats, {workload.bursts} "
            f"bursts, {workload.webhooks} webhooks"
        )
        before, t0, host = system.meter.sample(), time.monotonic(), host_ticks()
        conversations = await wl.run_conversations(http, target, workload, fakes, say=say)
        cpu = wl.CpuMeter.delta(before, system.meter.sample())
        window_s = time.monotonic() - t0
        report["conversations"] = {
            **wl.ack_summary(conversations.acks),
            **wl.reply_summary(conversations),
            **cpu_report(system, cpu, idle, window_s, len(conversations.acks.latencies_s)),
            "host": host_report(host, window_s, sum(cpu.values())),
        }
        say(f"{system.name}: conversations done: {report['conversations']['answered']}")

        await system.raise_debounce(side, target)
        await asyncio.sleep(1.0)
        idle = await sample_idle(system.meter, args.idle_s)
        report["flood"] = await flood(system, http, target, workload, idle)
        if args.profile:
            report["profile"] = await profiled_flood(system, http, target, workload)
    return report


async def sample_idle(meter: wl.CpuMeter, seconds: float) -> dict[str, Any]:
    before = meter.sample()
    await asyncio.sleep(seconds)
    return {"seconds": seconds, "roles": wl.CpuMeter.delta(before, meter.sample())}


def cpu_report(
    system: System, cpu: dict[str, float], idle: dict[str, Any], window_s: float, webhooks: int
) -> dict[str, Any]:
    gross = system.server_roles(cpu)
    idle_rate = {k: v / idle["seconds"] for k, v in system.server_roles(idle["roles"]).items()}
    per = 1000 / max(1, webhooks)
    return {
        "cpu_window_s": window_s,
        "cpu_ms_per_webhook": {k: v * per for k, v in gross.items()},
        "cpu_ms_per_webhook_net_of_idle": {
            k: (v - idle_rate.get(k, 0.0) * window_s) * per for k, v in gross.items()
        },
        "idle_cores": idle_rate,
        "cpu_ms_per_webhook_by_role": {k: v * per for k, v in sorted(cpu.items())},
    }


async def flood(
    system: System,
    http: httpx.AsyncClient,
    target: wl.Target,
    workload: wl.Workload,
    idle: dict[str, Any],
) -> dict[str, Any]:
    count = workload.spec.flood
    say(f"{system.name}: flood of {count} webhooks, {workload.spec.concurrency} in flight")
    before, t0, host = system.meter.sample(), time.monotonic(), host_ticks()
    acks = await wl.run_flood(http, target, workload, count=count)
    await asyncio.sleep(1.0)  # Conversa hands messages to their actors after the ack
    cpu = wl.CpuMeter.delta(before, system.meter.sample())
    window_s = time.monotonic() - t0
    out = {
        **wl.ack_summary(acks),
        **cpu_report(system, cpu, idle, window_s, len(acks.latencies_s)),
        "host": host_report(host, window_s, sum(cpu.values())),
    }
    say(
        f"{system.name}: flood {out['outcomes']} at {out['webhooks_per_s']:.0f}/s, ack p99 "
        f"{out['ack_ms']['p99']:.1f} ms"
    )
    return out


# --------------------------------------------------------------------------- profiling


async def profiled_flood(
    system: System, http: httpx.AsyncClient, target: wl.Target, workload: wl.Workload
) -> dict[str, Any]:
    """Another flood with py-spy on every ack-path process, and their per-thread CPU."""
    pids = system.ack_pids()
    out_dir = Path(tempfile.mkdtemp(prefix="cvr-prof-"))
    threads_before = {pid: thread_cpu(pid) for pid in pids}
    spies = []
    for pid in pids:
        output = out_dir / f"{system.name}-{pid}.txt"
        spy = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
            "--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--gil", "--nonblocking",
            "--output", str(output),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        spies.append((output, spy))
    await asyncio.sleep(1.5)  # py-spy attaches
    say(f"{system.name}: profiled flood (py-spy on pids {pids})")
    acks = await wl.run_flood(http, target, workload, count=workload.spec.flood)
    threads: Counter = Counter()
    for pid in pids:
        threads.update(thread_delta(threads_before[pid], thread_cpu(pid)))
    raw, errors = [], []
    for output, spy in spies:
        spy.send_signal(signal.SIGINT)
        try:
            _, err = await asyncio.wait_for(spy.communicate(), 30)
        except TimeoutError:
            spy.kill()
            _, err = await spy.communicate()
        if output.exists():
            raw.append(output.read_text())
        else:
            errors.append(err.decode(errors="replace")[-500:])
    per = 1000 / max(1, len(acks.latencies_s))
    return {
        "flood": wl.ack_summary(acks),
        "pids": pids,
        "thread_cpu_ms_per_webhook": {k: v * per for k, v in threads.most_common()},
        "steps": profile_steps("\n".join(raw)),
        "raw_dir": str(out_dir),
        "errors": errors,
    }


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            name = "main" if int(task.name) == pid else (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            out[int(task.name)] = (name, ticks / os.sysconf("SC_CLK_TCK"))
    return out


def thread_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds by thread name; the first thread (the pid itself) is the Python main thread."""
    out: Counter = Counter()
    for tid, (name, seconds) in after.items():
        out[name] += seconds - before.get(tid, (name, 0.0))[1]
    return {k: v for k, v in out.most_common() if v > 0}


# Steps of the ack path: (label, substrings of a py-spy frame "qualname (file:line)"). A sample
# counts for the first step (in this order) one of its frames matches. SQLAlchemy's async API
# runs its synchronous core in greenlets, whose stacks py-spy shows without the coroutine that
# awaits them: those samples are classified by what they do (`GREENLET`), for all statements.
STEPS = [
    (
        "hand-off to the actor (Ray submit)",
        ("hand_off (serve_app", "deliver (engine/actors/router.py", "call_with_retry"),
    ),
    ("route lookup (SELECT instance+cliente)", ("instance_routes_by_secret", "find_route")),
    ("claim key (INSERT processed_webhooks)", ("claim_webhook_key", "claim_key")),
    ("upsert conversation", ("upsert_conversation",)),
    ("insert message", ("insert_message",)),
    ("set answer deadline (UPDATE)", ("set_answer_deadline",)),
    ("commit", (".commit (sqlalchemy/ext/asyncio", "__aexit__ (sqlalchemy/ext/asyncio/engine")),
    (
        "session/connection open+close, pool",
        (
            "__aexit__ (sqlalchemy",
            ".close (sqlalchemy",
            "_connection_for_bind",
            "begin (sqlalchemy",
            ".connect (sqlalchemy",
            "_ConnectionFairy",
        ),
    ),
    ("classify payload", ("classify_upsert", "parse_envelope")),
    ("buffer the message (asyncio task)", ("MessageBuffer.add",)),
    ("JSON parse of the body", ("loads (json/",)),
    ("response (pydantic, JSONResponse)", ("model_dump", "JSONResponse", "render (starlette")),
    (
        "logging (incl. JSON encoding of the line)",
        ("logging/__init__.py", "engine/logs.py", "dumps (json/"),
    ),
    (
        "handler's own code (inbox / baseline)",
        ("EvolutionInbox.", "Baseline.webhook", "Baseline._message"),
    ),
    (
        "uvicorn HTTP (parse, write the response)",
        ("RequestResponseCycle.send", "HttpToolsProtocol", "uvicorn/", "httptools"),
    ),
    ("FastAPI/Starlette routing, request body", ("starlette/", "fastapi/")),
    ("Serve replica machinery", ("ray/serve/",)),
    ("Ray worker (other)", ("ray/",)),
    ("asyncio event loop", ("asyncio/",)),
]
GREENLET = [
    ("SQLAlchemy core (greenlet): statement compile / cache key",
     ("compile", "_gen_cache_key", "_generate_cache_key", "cache_key")),
    ("SQLAlchemy core (greenlet): ORM session, flush, commit",
     ("orm/session.py", "orm/persistence", "orm/unitofwork", "commit")),
    ("SQLAlchemy core (greenlet): result rows", ("_setup_result_proxy", "result.py", "cursor.py")),
    ("SQLAlchemy core (greenlet): execute", ("sqlalchemy/",)),
]  # fmt: skip
EVENT_LOOP_ROOTS = ("asyncio/", "uvloop", "uvicorn/", "ray/", "threading.py", "concurrent/")
PACKAGES = ("sqlalchemy", "asyncpg", "pydantic", "starlette", "fastapi", "uvicorn", "ray",
            "json", "logging", "asyncio", "engine", "serve_app")  # fmt: skip


def classify_stack(frames: list[str]) -> str:
    if not frames or frames == [""]:
        return "native only (no Python frame: uvloop/C)"
    in_greenlet = "sqlalchemy/" in frames[0] and not any(
        r in f for f in frames[:3] for r in EVENT_LOOP_ROOTS
    )
    for name, keys in GREENLET if in_greenlet else STEPS:
        if any(k in f for f in frames for k in keys):
            return name
    return "other"


def profile_steps(raw: str) -> dict[str, Any]:
    """Shares of py-spy's active samples by ack-path step, and by the package of the leaf."""
    steps: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";") if stack else []
        total += count
        steps[classify_stack(frames)] += count
        where = frames[-1][frames[-1].find("(") + 1 :] if frames else "native"
        package = next((p for p in PACKAGES if where.startswith(p)), "other")
        leaves["native" if not frames else package] += count
    if not total:
        return {"samples": 0, "by_step": {}, "by_leaf_package": {}}
    return {
        "samples": total,
        "by_step": {k: v / total for k, v in steps.most_common()},
        "by_leaf_package": {k: v / total for k, v in leaves.most_common()},
    }


# --------------------------------------------------------------------------- Conversa


def conversa_settings(
    database_url: str, data_dir: Path, fakes: dict[str, Any], spec: wl.Spec, chats: int
) -> Any:
    import webhook_ingress as wi
    from pydantic import SecretStr

    return wi.bench_settings(database_url, data_dir).model_copy(
        update={
            "openai_api_key": SecretStr(fakes["openai_api_key"]),
            "openai_base_url": fakes["openai_base_url"],
            "evolution_url": fakes["evolution_url"],
            "evolution_api_key": SecretStr(fakes["evolution_api_key"]),
            "typing_ms_per_char": 0,
            "typing_presence": False,
            "debounce_s": spec.debounce_s,
            "max_wait_s": spec.max_wait_s,
            # Every chat keeps its actor for the whole run: the cap is not what is measured.
            "max_live_conversations": max(150, chats + 2 * spec.clientes + 8),
            # The baseline has no "I don't know" gate, and the workload's made-up questions
            # would all be handed to a human (untagged replies, counted as never answered).
            "relevance_min_score": -1.0,
        }
    )


def run_conversa(
    workload: wl.Workload, fakes: dict[str, Any], args: argparse.Namespace, log_dir: Path
) -> tuple[dict[str, Any], int]:
    """Returns the report and the nice of the Serve replicas."""
    import webhook_ingress as wi

    from tests.support.postgres import create_database, drop_database

    with contextlib.ExitStack() as stack:
        name, url = create_database(SYSTEM_PG, "conversa_cmp")
        stack.callback(drop_database, SYSTEM_PG, name)
        data_dir = Path(tempfile.mkdtemp(prefix="conversa-cmp-"))
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        ray_tmp = Path(tempfile.mkdtemp(prefix="cvr-c-", dir="/tmp"))
        if not args.keep_logs:
            stack.callback(shutil.rmtree, ray_tmp, ignore_errors=True)
        settings = conversa_settings(url, data_dir, fakes, workload.spec, len(workload.chats))
        say("conversa: starting (PostgreSQL migrations, local Ray, shared actors, Serve HAProxy)")
        running = wi.start_stack(settings, ray_tmp, stack)
        me, fakes_pid = os.getpid(), fakes["pid"]

        def processes() -> dict[int, tuple[str, psutil.Process]]:
            outside = tree(fakes_pid)
            out = {}
            for p in psutil.Process(me).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if p.pid not in outside and p.name() != "py-spy":
                        out[p.pid] = (wi.role_of(p), p)
            return out | wl.postgres_backends(name)

        def replicas() -> list[int]:
            return sorted(pid for pid, (role, _) in processes().items() if role == "serve_replica")

        def roles(cpu: dict[str, float]) -> dict[str, float]:
            return {
                "server_total": sum(cpu.values()),
                "ray_cluster": sum(v for k, v in cpu.items() if k != "postgres_backends"),
                "ingress": sum(cpu.get(k, 0.0) for k in INGRESS_ROLES),
                "conversation_actors": cpu.get("conversation", 0.0),
                "postgres_backends": cpu.get("postgres_backends", 0.0),
            }

        system = System(
            "conversa",
            running.base_url,
            name,
            wl.CpuMeter(processes),
            conversa_setup(running.base_url, settings),
            conversa_raise_debounce(running.base_url, settings),
            replicas,
            roles,
        )
        nice = psutil.Process(replicas()[0]).nice() if replicas() else 15
        report = asyncio.run(measure(system, workload, fakes["evolution_url"], args))
        report["stack_start_s"] = running.timings_s
        report["serve_replica_nice"] = nice
        report["logs"] = str(ray_tmp) if args.keep_logs else "(deleted)"
        return report, nice


def admin_headers(settings: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}


def conversa_setup(base_url: str, settings: Any) -> Callable[..., Any]:
    async def setup(http: httpx.AsyncClient, workload: wl.Workload) -> wl.Target:
        auth, spec = admin_headers(settings), workload.spec
        ids = []
        for c in workload.clientes:
            body = {
                "nome": c.nome,
                "status": "ATIVO",  # served without Stripe
                "debounce_s": spec.debounce_s,
                "max_wait_s": spec.max_wait_s,
            }
            r = await http.post(f"{base_url}/admin/clientes", json=body, headers=auth)
            r.raise_for_status()
            cliente_id = r.json()["id"]
            ids.append(cliente_id)
            r = await http.post(
                f"{base_url}/admin/clientes/{cliente_id}/instances",
                headers=auth,
                json={"instance_id": c.instance, "webhook_secret": c.secret},
            )
            r.raise_for_status()
            for title, content in c.documents:
                r = await http.post(
                    f"{base_url}/admin/clientes/{cliente_id}/documents",
                    params={"title": title, "wait": "true"},
                    content=content.encode(),
                    headers={**auth, "Content-Type": "text/markdown"},
                    timeout=120,
                )
                r.raise_for_status()
        return wl.Target(
            "conversa",
            base_url,
            tuple(c.instance for c in workload.clientes),
            tuple(c.secret for c in workload.clientes),
            tuple(ids),
        )

    return setup


def conversa_raise_debounce(base_url: str, settings: Any) -> Callable[..., Any]:
    async def raise_debounce(http: httpx.AsyncClient, target: wl.Target) -> None:
        for cliente_id in target.cliente_ids:
            r = await http.patch(
                f"{base_url}/admin/clientes/{cliente_id}",
                json=RAISED_DEBOUNCE,
                headers=admin_headers(settings),
            )
            r.raise_for_status()

    return raise_debounce


# --------------------------------------------------------------------------- the baseline


def run_baseline(
    workload: wl.Workload, fakes: dict[str, Any], args: argparse.Namespace, log_dir: Path, nice: int
) -> dict[str, Any]:
    import baseline as bl

    from engine.db import migrate
    from tests.support.http_server import free_port
    from tests.support.postgres import create_database, drop_database

    with contextlib.ExitStack() as stack:
        name, url = create_database(SYSTEM_PG, "baseline_cmp")
        stack.callback(drop_database, SYSTEM_PG, name)
        migrate.upgrade(url)
        chroma_dir = Path(tempfile.mkdtemp(prefix="baseline-chroma-"))
        stack.callback(shutil.rmtree, chroma_dir, ignore_errors=True)
        port = free_port()
        log_path = log_dir / "baseline.log"
        log_file = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "baseline.py"),
                "--database-url",
                url,
                "--port",
                str(port),
                "--evolution-url",
                fakes["evolution_url"],
                "--evolution-api-key",
                fakes["evolution_api_key"],
                "--openai-base-url",
                fakes["openai_base_url"],
                "--openai-api-key",
                fakes["openai_api_key"],
                "--chroma-dir",
                str(chroma_dir),
                "--debounce-s",
                str(workload.spec.debounce_s),
                "--nice",
                str(nice - os.nice(0)),
            ],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        stack.callback(stop_process, process)
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, process)
        nice_now = psutil.Process(process.pid).nice()
        say(f"baseline: up at {base_url} (pid {process.pid}, nice {nice_now})")

        def processes() -> dict[int, tuple[str, psutil.Process]]:
            out = {}
            for pid in tree(process.pid):
                with contextlib.suppress(psutil.Error):
                    out[pid] = ("baseline", psutil.Process(pid))
            return out | wl.postgres_backends(name)

        def roles(cpu: dict[str, float]) -> dict[str, float]:
            return {
                "server_total": sum(cpu.values()),
                "baseline_process": cpu.get("baseline", 0.0),
                "postgres_backends": cpu.get("postgres_backends", 0.0),
            }

        async def setup(http: httpx.AsyncClient, workload: wl.Workload) -> wl.Target:
            spec = workload.spec
            tenants = [(c.nome, c.instance, c.secret) for c in workload.clientes]
            ids = await bl.create_tenants(
                url, tenants, debounce_s=spec.debounce_s, max_wait_s=spec.max_wait_s
            )
            for cliente_id, c in zip(ids, workload.clientes, strict=True):
                for title, content in c.documents:
                    r = await http.post(
                        f"{base_url}/admin/clientes/{cliente_id}/documents",
                        params={"title": title},
                        content=content.encode(),
                    )
                    r.raise_for_status()
            return wl.Target(
                "baseline",
                base_url,
                tuple(c.instance for c in workload.clientes),
                tuple(c.secret for c in workload.clientes),
                tuple(ids),
            )

        async def raise_debounce(http: httpx.AsyncClient, target: wl.Target) -> None:
            await bl.set_debounce(url, **RAISED_DEBOUNCE)

        system = System(
            "baseline",
            base_url,
            name,
            wl.CpuMeter(processes),
            setup,
            raise_debounce,
            lambda: [process.pid],
            roles,
        )
        report = asyncio.run(measure(system, workload, fakes["evolution_url"], args))
        report["nice"] = nice
        return report


def wait_healthy(base_url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{base_url} exited with code {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{base_url}/healthz did not answer in {timeout_s} s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --------------------------------------------------------------------------- the table


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return ""
    if math.isnan(a) or math.isnan(b) or a < 0 or b < 0:
        return ""
    return f"{a / b:.2f}x"


def rows(report: dict[str, Any]) -> list[tuple[str, Any, Any, int]]:
    c, b = report.get("conversa", {}), report.get("baseline", {})

    def get(r: dict[str, Any], *path: str) -> Any:
        for key in path:
            if not isinstance(r, dict) or key not in r:
                return None
            r = r[key]
        return r

    def both(label: str, *path: str, digits: int = 1) -> tuple[str, Any, Any, int]:
        return (label, get(c, *path), get(b, *path), digits)

    def answered(r: dict[str, Any], kind: str) -> Any:
        n = get(r, "conversations", "answered", kind)
        return None if n is None else f"{n}/{get(r, 'conversations', 'bursts')}"

    return [
        both("flood: webhooks/s", "flood", "webhooks_per_s", digits=0),
        both("flood: ack p50 ms", "flood", "ack_ms", "p50"),
        both("flood: ack p99 ms", "flood", "ack_ms", "p99"),
        both(
            "flood: server CPU ms/webhook", "flood", "cpu_ms_per_webhook", "server_total", digits=2
        ),
        both("  net of idle", "flood", "cpu_ms_per_webhook_net_of_idle", "server_total", digits=2),
        (
            "  of which PostgreSQL backends",
            get(c, "flood", "cpu_ms_per_webhook", "postgres_backends"),
            get(b, "flood", "cpu_ms_per_webhook", "postgres_backends"),
            2,
        ),
        (
            "  Conversa ingress (replicas+HAProxy) / baseline process",
            get(c, "flood", "cpu_ms_per_webhook", "ingress"),
            get(b, "flood", "cpu_ms_per_webhook", "baseline_process"),
            2,
        ),
        both(
            "conversations: webhooks/s (paced by customers)",
            "conversations",
            "webhooks_per_s",
            digits=0,
        ),
        both("conversations: ack p50 ms", "conversations", "ack_ms", "p50"),
        both("conversations: ack p99 ms", "conversations", "ack_ms", "p99"),
        both(
            "conversations: server CPU ms/webhook (ack+reply)",
            "conversations",
            "cpu_ms_per_webhook",
            "server_total",
            digits=2,
        ),
        both(
            "  net of idle",
            "conversations",
            "cpu_ms_per_webhook_net_of_idle",
            "server_total",
            digits=2,
        ),
        (
            "bursts split by slow acks (acked > debounce apart)",
            answered(c, "split_by_slow_acks"),
            answered(b, "split_by_slow_acks"),
            0,
        ),
        both("intact first bursts measured", "conversations", "reply_ms_first", "n", digits=0),
        both("reply − deadline, first burst p50 ms", "conversations", "reply_ms_first", "p50"),
        both("reply − deadline, first burst p99 ms", "conversations", "reply_ms_first", "p99"),
        both("reply − deadline, warm p50 ms", "conversations", "reply_ms_warm", "p50"),
        both("reply − deadline, warm p99 ms", "conversations", "reply_ms_warm", "p99"),
        both("intact warm bursts measured", "conversations", "reply_ms_warm", "n", digits=0),
        ("bursts answered once", answered(c, "once"), answered(b, "once"), 0),
        (
            "bursts answered twice or more",
            answered(c, "twice_or_more"),
            answered(b, "twice_or_more"),
            0,
        ),
        (
            "  of which its webhooks were acked > debounce apart",
            answered(c, "twice_acks_apart"),
            answered(b, "twice_acks_apart"),
            0,
        ),
        ("bursts never answered", answered(c, "never"), answered(b, "never"), 0),
        both("conversations phase wall s", "conversations", "phase_wall_s"),
        both(
            "machine busy cores, conversations (everyone)",
            "conversations",
            "host",
            "machine_busy_cores",
            digits=2,
        ),
        both("  of which other people's work", "conversations", "host", "others_cores", digits=2),
        both(
            "machine busy cores, flood (everyone)", "flood", "host", "machine_busy_cores", digits=2
        ),
        both("  of which other people's work", "flood", "host", "others_cores", digits=2),
        both("load average (1 min) after the flood", "flood", "host", "loadavg_1m"),
        both(
            "load generator CPU ms/webhook (flood)", "flood", "driver_cpu_ms_per_webhook", digits=2
        ),
    ]


def print_table(report: dict[str, Any]) -> None:
    table = [("", "Conversa", "baseline", "Conversa/baseline")]
    for label, c, b, digits in rows(report):
        table.append((label, fmt(c, digits), fmt(b, digits), ratio(c, b)))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    print()
    for i, row in enumerate(table):
        print(
            "  "
            + row[0].ljust(widths[0])
            + "".join("  " + cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        )
        if i == 0:
            print("  " + "-" * (sum(widths) + 6))
    for name in ("conversa", "baseline"):
        r = report.get(name, {})
        for phase in ("conversations", "flood"):
            outcomes = r.get(phase, {}).get("outcomes")
            if outcomes and set(outcomes) != {"accepted"}:
                print(f"  NOTE {name} {phase}: webhook outcomes {outcomes}")
        untagged = r.get("conversations", {}).get("untagged_replies")
        if untagged:
            print(f"  NOTE {name}: {untagged} replies named no burst")
    for name in ("conversa", "baseline"):
        roles = report.get(name, {}).get("flood", {}).get("cpu_ms_per_webhook_by_role", {})
        top = sorted(roles.items(), key=lambda kv: -kv[1])[:10]
        if top:
            print(f"  {name} flood CPU ms/webhook by process role: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in top))  # fmt: skip
    for name in ("conversa", "baseline"):
        profile = report.get(name, {}).get("profile")
        if profile:
            print_profile(name, profile)


def print_profile(name: str, profile: dict[str, Any]) -> None:
    flood = profile["flood"]
    print(
        f"\n{name}: profiled flood {flood['webhooks_per_s']:.0f} webhooks/s, ack p99 "
        f"{flood['ack_ms']['p99']:.1f} ms (py-spy attached, so slower than the measured one); "
        f"processes {profile['pids']}"
    )
    for error in profile["errors"]:
        print(f"  py-spy failed: {error}")
    threads = profile["thread_cpu_ms_per_webhook"]
    print(
        f"  {sum(threads.values()):.2f} ms CPU per webhook in these processes, by thread: "
        + ", ".join(f"{k} {v:.2f}" for k, v in list(threads.items())[:8])
    )
    steps = profile["steps"]
    python_ms = sum(v for k, v in threads.items() if k in PYTHON_THREADS)
    print(
        f"  py-spy --gil at {PROFILE_RATE_HZ} Hz: {steps['samples']} samples of the thread "
        "holding the GIL, by step (ms = share x the CPU of the threads that run Python, "
        f"{python_ms:.2f} ms/webhook):"
    )
    for label, share in steps["by_step"].items():
        print(f"    {100 * share:5.1f} %  {share * python_ms:5.2f} ms  {label}")
    print(
        "  by the package of the innermost frame: "
        + ", ".join(f"{k} {100 * v:.0f} %" for k, v in steps["by_leaf_package"].items())
    )


# --------------------------------------------------------------------------- main


def main() -> int:
    import webhook_ingress as wi

    args = parse_args()
    spec = spec_of(args)
    wi.install_time_limit(args.time_limit_s)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    report: dict[str, Any] = {"spec": dataclasses.asdict(spec), "cpus": os.cpu_count()}
    log_dir = Path(tempfile.mkdtemp(prefix="cvr-cmp-logs-"))
    with contextlib.ExitStack() as cleanup:
        try:
            fakes = start_fakes(cleanup, log_dir)
            nice = 15 if args.nice is None else args.nice
            if args.nice is not None:
                os.environ["RAY_worker_niceness"] = str(args.nice)  # read by the raylet
            if args.only != "baseline":
                report["conversa"], nice = run_conversa(
                    wl.build(spec, label="conversa"), fakes, args, log_dir
                )
            if args.only != "conversa":
                report["baseline"] = run_baseline(
                    wl.build(spec, label="baseline"), fakes, args, log_dir, nice
                )
        finally:
            signal.alarm(0)
            say("tearing down")
    workload = wl.build(spec, label="x")
    print(
        f"\n=== Conversa vs baseline, same workload: {spec.clientes} clientes, "
        f"{spec.chats} chats, {workload.bursts} bursts, {workload.webhooks} webhooks + "
        f"{spec.flood} in the flood; debounce {spec.debounce_s} s, {spec.concurrency} in "
        f"flight, {os.cpu_count()} cores ==="
    )
    print_table(report)
    if args.json:
        wl.write_json(args.json, report)
        print(f"\nwrote {args.json}")
    if args.keep_logs:
        print(f"logs: {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
