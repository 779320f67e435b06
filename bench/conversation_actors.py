"""Conversation actors: start time, memory and idle CPU per live conversation, and the cap.

What it measures, on the real stack (`serve_app.runtime.start`, local Ray, PostgreSQL):

* actor start time: for N new chats, the time of the hand-off that creates the chat's actor
  (`ConversationRouter.deliver`: create, restore from PostgreSQL, deliver), p50/p90/max;
* memory: USS and RSS of each live conversation actor once idle, against a bare async actor;
* idle CPU: the N idle actors' summed utime+stime over `--idle-s`, as % of one core per actor,
  with `LEAN_RAY_WORKERS` on (default) or off (`--not-lean`), and wake-ups per second per actor
  (voluntary context switches of all its threads);
* actor start by step: scheduling and spawning the worker process (0 when Ray handed over a
  worker it had started ahead), the worker's boot and imports up to the constructor, and the
  constructor with the restore from PostgreSQL; plus the imports alone in a fresh interpreter;
* the cap: 3 x `--cap` (or `--flood`) new chats at once against
  `MAX_LIVE_CONVERSATIONS=--cap`; the most live conversation actor processes seen at any time
  (psutil, sampled every 0.5 s), evictions and idle reaps by the supervisor, how long until
  every chat was answered, and the admission rate (new chats answered per second); the CPU
  each new chat's actor process used (its boot included) and the machine's CPU per chat.

Messages go through `EvolutionInbox` (what the webhook route calls) and the router, not HTTP:
`bench/webhook_ingress.py` measures the HTTP path. No OpenAI key, no Evolution URL (offline
responder, replies recorded only), hash embeddings.

    [WARM_WORKERS=4] .venv/bin/python bench/conversation_actors.py [--actors 20] [--cap 24]
        [--idle-s 20] [--start-gap-s 1] [--flood 72] [--not-lean] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (webhook bodies, free ports, databases)

from tests.support.scenario import make_cliente  # noqa: E402

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
WARM_BOOT_S = 5.0  # for the pool's workers, asked for, to finish booting


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


STARTED = time.monotonic()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set-up and teardown are synchronous (Alembic runs its own event loop); measuring is not."""
    from engine.config import Settings
    from serve_app import runtime
    from tests.support.http_server import free_port
    from tests.support.postgres import create_database, drop_database

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    name, database_url = create_database(os.environ.get("BENCH_POSTGRES_URL", SYSTEM_PG), "bench")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=Path(tempfile.mkdtemp(prefix="conversa-bench-")),
        database_url=database_url,
        http_port=free_port(),
        haproxy_stats_port=free_port(),
        haproxy_metrics_port=free_port(),
        fallback_proxy_port=free_port(),
        direct_ingress_min_port=33000,
        dashboard_port=free_port(),
        embedding_model="hash",
        debounce_s=0.2,
        max_wait_s=0.5,
        max_live_conversations=args.cap,
        idle_ttl_s=600,  # nothing leaves by itself while measuring: only eviction makes room
        lean_ray_workers=not args.not_lean,
    )
    say(f"starting the stack (cap {args.cap} per node, lean Ray workers: {not args.not_lean})")
    running = runtime.start(settings, dashboard=False, temp_dir=tempfile.mkdtemp(prefix="cvb-"))
    try:
        return asyncio.run(measure(args, running.settings))
    finally:
        say("stopping the stack")
        running.stop()
        drop_database(os.environ.get("BENCH_POSTGRES_URL", SYSTEM_PG), name)


async def measure(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    import ray

    from engine.actors.router import ConversationRouter
    from engine.services.inbox import EvolutionInbox
    from engine.wiring import conversation_config
    from serve_app.context import IngressContext
    from tests.support import evolution_payloads as wa
    from tests.support.postgres import asyncpg_dsn

    database_url = settings.database_url
    results: dict[str, Any] = {"cap": args.cap, "lean_ray_workers": not args.not_lean}
    context = IngressContext(settings)
    inbox: EvolutionInbox = context.inbox
    router = ConversationRouter(conversation_config(settings))
    tenant = await make_cliente(
        context.sessions, context.settings, nome="bench", instance_prefix="bench", status="ATIVO"
    )
    instance, secret = tenant.instance, tenant.secret

    handed_at_s: dict[str, float] = {}

    async def hand_off(chat: str, text: str) -> float:
        outcome = await inbox.handle(
            secret=secret, read_body=wa.body_reader(wa.text(instance, chat, text))
        )
        assert outcome.delivery is not None
        started = time.perf_counter()
        handed_at_s[chat] = time.time()
        await router.deliver(outcome.delivery)
        return time.perf_counter() - started

    # 1. start time, one new chat after another (`--start-gap-s` apart), and its steps
    supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)
    if settings.warm_workers:  # measure what a running node does, not its first seconds
        warmed = settings.warm_workers
        while (await supervisor.stats.remote())["workers_prestarted"] < warmed:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await asyncio.sleep(WARM_BOOT_S)
        say(f"warm pool of {settings.warm_workers} idle workers per node booted")
    chats = [wa.new_chat() for _ in range(args.actors)]
    starts = []
    for chat in chats:
        starts.append(await hand_off(chat, "oi"))
        await asyncio.sleep(args.start_gap_s)
    results["actor_start_s"] = _summary(starts)
    say(f"{args.actors} actors started: {results['actor_start_s']}")
    steps: dict[str, list[float]] = {}
    for chat in chats:
        actor = ray.get_actor(f"cliente_{tenant.id}_{chat}", namespace=settings.ray_namespace)
        status = await actor.status.remote()
        at = status.get("started_s")
        if at is None:  # an older actor that does not report its steps
            continue
        process_at = psutil.Process(status["pid"]).create_time()
        # A worker Ray had started ahead (its pool) was spawned before the hand-off: its
        # boot overlaps the wait, and only what is left of it counts.
        spawned_at = max(process_at, handed_at_s[chat])
        for step, seconds in {
            "schedule_and_spawn_process": spawned_at - handed_at_s[chat],
            "worker_boot_imports_to_constructor": at["constructed"] - spawned_at,
            "constructor_and_restore": at["restored"] - at["constructed"],
        }.items():
            steps.setdefault(step, []).append(seconds)
    results["actor_start_steps_s"] = {step: _summary(v) for step, v in steps.items()}
    results["pooled_workers_used"] = sum(
        1 for s in steps.get("schedule_and_spawn_process", []) if s == 0
    )
    results["imports_s"] = _import_costs()
    say(
        f"actor start, by step: {results['actor_start_steps_s']}; "
        f"{results['pooled_workers_used']}/{len(chats)} in a process spawned before their hand-off"
    )
    say(f"of which imports in a fresh interpreter: {results['imports_s']}")

    # 2. memory and idle CPU, once every turn is done
    async def answered(count: int) -> None:
        """Wait until `count` of the cliente's inbound messages are answered."""
        query = (
            "SELECT count(*) FROM messages WHERE cliente_id = $1"
            " AND direction = 'inbound' AND status = 'RESPONDIDA'"
        )
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            while await connection.fetchval(query, tenant.id) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        finally:
            await connection.close()

    await answered(args.actors)
    await asyncio.sleep(2)
    pids = []
    for chat in chats:
        actor = ray.get_actor(f"cliente_{tenant.id}_{chat}", namespace=settings.ray_namespace)
        pids.append((await actor.status.remote())["pid"])
    processes = [psutil.Process(pid) for pid in pids]
    uss = [p.memory_full_info().uss / 1e6 for p in processes]
    rss = [p.memory_info().rss / 1e6 for p in processes]
    cpu_before = [sum(p.cpu_times()[:2]) for p in processes]
    switches_before = [_voluntary_switches(p.pid) for p in processes]
    say(f"measuring idle CPU of {len(processes)} idle conversation actors for {args.idle_s} s")
    await asyncio.sleep(args.idle_s)
    cpu = [sum(p.cpu_times()[:2]) - b for p, b in zip(processes, cpu_before, strict=True)]
    switches = [
        _voluntary_switches(p.pid) - b for p, b in zip(processes, switches_before, strict=True)
    ]
    results["uss_mb"] = _summary(uss)
    results["rss_mb"] = _summary(rss)
    results["idle_cpu_pct_of_core_per_actor"] = round(100 * sum(cpu) / args.idle_s / len(cpu), 3)
    results["wakeups_per_s_per_actor"] = round(sum(switches) / args.idle_s / len(switches), 1)
    say(
        f"USS {results['uss_mb']} MB; idle CPU {results['idle_cpu_pct_of_core_per_actor']} %"
        f" of a core per actor; {results['wakeups_per_s_per_actor']} wake-ups/s per actor"
    )

    # 3. three times the cap at once
    flood = [wa.new_chat() for _ in range(args.flood or 3 * args.cap)]
    before = await supervisor.stats.remote()
    peak = 0
    sampling = True
    existing = {
        p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("ray::")
    }
    actor_cpu_s: dict[int, float] = {}  # new conversation actor processes: CPU last seen

    async def sample() -> None:
        # Every 0.5 s: at 50 ms this loop alone took ~11 % of the two cores during the flood.
        nonlocal peak
        while sampling:
            live = 0
            for p in psutil.process_iter(["name", "cpu_times"]):
                if not (p.info["name"] or "").startswith("ray::Conversati"):
                    continue
                live += 1
                if p.pid not in existing and p.info["cpu_times"] is not None:
                    actor_cpu_s[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
            peak = max(peak, live)
            await asyncio.sleep(0.5)

    async def progress() -> None:
        query = (
            "SELECT count(*) FROM messages WHERE cliente_id = $1"
            " AND direction = 'inbound' AND status = 'RESPONDIDA'"
        )
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            while sampling:
                await asyncio.sleep(2.0)
                done = await connection.fetchval(query, tenant.id) - args.actors
                stats = await supervisor.stats.remote()
                say(
                    f"  flood: {done}/{len(flood)} answered, {stats['live']} live, "
                    f"{stats['evicted'] - before['evicted']} evicted, "
                    f"{stats['workers_prestarted']} workers prestarted so far"
                )
        finally:
            await connection.close()

    sampler = asyncio.get_running_loop().create_task(sample())
    reporter = asyncio.get_running_loop().create_task(progress())
    say(f"flood: {len(flood)} new chats at once against a cap of {args.cap}")
    busy_before = _machine_busy_s()
    started = time.perf_counter()
    handed = await asyncio.gather(
        *(hand_off(chat, "oi, tudo bem?") for chat in flood), return_exceptions=True
    )
    # A hand-off that waited longer than ACTOR_CALL_TIMEOUT_S for a slot is given up; the
    # message is durable and recovery re-delivers it (as in production).
    given_up = sum(1 for h in handed if isinstance(h, BaseException))
    await answered(args.actors + len(flood))
    elapsed = time.perf_counter() - started
    busy_s = _machine_busy_s() - busy_before
    sampling = False
    await sampler
    reporter.cancel()
    after = await supervisor.stats.remote()
    results["flood"] = {
        "chats": len(flood),
        "peak_live_actor_processes": peak,
        "evicted": after["evicted"] - before["evicted"],
        "reaped_idle": after["reaped_idle"] - before["reaped_idle"],
        "all_answered_s": round(elapsed, 1),
        "new_chats_per_s": round(len(flood) / elapsed, 1),
        "hand_offs_given_up_to_recovery": given_up,
        # Every process's CPU (boot included) up to its last sample before it left.
        "cpu_s_per_new_actor_process": round(sum(actor_cpu_s.values()) / len(actor_cpu_s), 2)
        if actor_cpu_s
        else None,
        "new_actor_processes_seen": len(actor_cpu_s),
        "machine_cpu_s_per_chat": round(busy_s / len(flood), 2),
        "machine_busy_cores": round(busy_s / elapsed, 2),
    }
    say(f"flood: {results['flood']}")
    await context.close()
    return results


def _import_costs() -> dict[str, float]:
    """Wall seconds to import what a conversation actor's worker loads, in a fresh interpreter:
    Ray itself, then the actor's module on top."""
    code = (
        "import time; t0 = time.perf_counter(); import ray; t1 = time.perf_counter(); "
        "import engine.actors.conversation; t2 = time.perf_counter(); "
        "print(round(t1 - t0, 3), round(t2 - t1, 3))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    return {"ray": float(out[0]), "engine.actors.conversation": float(out[1])}


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores; /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def _voluntary_switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actors", type=int, default=20)
    parser.add_argument("--cap", type=int, default=24)
    parser.add_argument("--idle-s", type=float, default=20)
    parser.add_argument("--flood", type=int, default=0, help="new chats at once (3 x --cap)")
    parser.add_argument(
        "--start-gap-s", type=float, default=1.0, help="between the new chats of the start test"
    )
    parser.add_argument("--not-lean", action="store_true", help="Ray's default worker settings")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    if arguments.actors >= arguments.cap:
        parser.error("--actors must be < --cap: the supervisor keeps one slot free")
    outcome = run(arguments)
    print(json.dumps(outcome, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
