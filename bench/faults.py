"""Faults injected one after another under a steady stream of conversations (issue 7).

    .venv/bin/python bench/faults.py [--scale 1] [--chats 24] [--clientes 6] [--only a,b]
        [--json out.json] [--keep-logs] [--time-limit-s 2400]

About 10 minutes at `--scale 1` on a 2-core node (the fault durations are the issue's:
Evolution answers 500 for 60 s); `--scale 0.3` shortens every fault and pause for a quick look.

What runs, all on this machine: Conversa exactly as `conversa run` starts it
(`serve_app.runtime.start`: local Ray, Serve's HAProxy ingress with 2 replicas, 2 reply workers,
the supervisor, `EMBEDDING_MODEL=hash`) on a **private PostgreSQL** this benchmark starts (pgserver,
a temporary directory, a Unix socket: the machine's server is never touched) and restarts; the
fake Evolution and OpenAI servers of the tests in a process of their own (bench/fakes.py), which
post the echo of every send (`send.message`) to Conversa's webhook and retry their webhook posts
as Evolution does (10 attempts).

The stream (`--chats` customers over `--clientes` businesses): each customer writes a burst of
1-4 messages (bench/workload.py's bodies, each tagged `[m<chat>.<burst>.<n>]`), waits for the
reply (up to `--reply-timeout-s`), thinks 4-12 s and writes again, for the whole run. Webhooks
are posted as Evolution posts them: retried with backoff on a 5xx or a dropped connection (10
attempts). The fake model quotes the burst back, so each reply names the messages it answers; a
reply without tags (the fallback message while the model fails) is attributed through Conversa's
own tables (the reply's part → its turn → the messages it answered). Counting is per message: a
burst whose messages were acknowledged more than the debounce apart (a retried webhook) is two
bursts for Conversa, answered by two replies, each message once.

The faults, one after another, each followed by a recovery window (until every burst accepted so
far is answered, at least `calm`): Evolution 500s for 60 s; Evolution slower than
`EVOLUTION_TIMEOUT_S` for 30 s; Evolution posting the echo of a send before answering it for
30 s; model errors for 20 s; model timeouts for 20 s; a PostgreSQL restart (down 5 s); `kill -9`
of 5 conversation actors with work in hand; of the reply worker that is producing replies; of
every retriever; of the supervisor; of a Serve replica.

Per fault (messages are counted in the phase their burst's last message was acknowledged in):
messages (and bursts) accepted; messages answered exactly once, twice (a copy of the same reply
sent again: the documented unknown-outcome window; or a second, different reply: a bug), never;
webhooks answered 5xx or dropped (then retried); and the time to recover: from the end of the
fault (the kill) until every message accepted before it was answered. At the end: Conversa's
turns and parts by status (nothing should be left owed or in progress).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests.support
sys.path.insert(0, str(BENCH))  # the sibling benchmarks

import webhook_ingress as wi  # noqa: E402
import workload as wl  # noqa: E402

from tests.support.postgres import asyncpg_dsn  # noqa: E402
from tests.support.private_postgres import PrivatePostgres  # noqa: E402

TAG = re.compile(r"\[m(\d+)\.(\d+)\.(\d+)\]")
Key = tuple[int, int, int]  # a message: (chat, burst, position in the burst)
STOP_RETRYING = frozenset({400, 401, 403, 404, 422})  # Evolution gives up on these
WEBHOOK_ATTEMPTS = 10
EVOLUTION_TIMEOUT_S = 3.0
LLM_TIMEOUT_S = 3.0
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiplies fault durations/pauses")
    p.add_argument("--chats", type=int, default=24)
    p.add_argument("--clientes", type=int, default=6)
    p.add_argument("--reply-timeout-s", type=float, default=120.0)
    p.add_argument(
        "--model-latency-s", type=float, default=1.0, help="the fake model's time per answer"
    )
    p.add_argument("--only", help="comma-separated fault names (default: all, in order)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write every number here")
    p.add_argument("--keep-logs", action="store_true", help="keep Ray's logs (their dir printed)")
    p.add_argument("--time-limit-s", type=float, default=2400.0)
    args = p.parse_args()
    if args.scale <= 0 or min(args.chats, args.clientes) < 1:
        p.error("--scale must be > 0, --chats and --clientes >= 1")
    return args


# --------------------------------------------------------------------------- the ledger


def tags_in(text: str) -> set[Key]:
    return {(int(c), int(b), int(n)) for c, b, n in TAG.findall(text)}


@dataclass
class Burst:
    chat: int
    index: int
    texts: tuple[str, ...]
    phase: str = ""
    acked: dict[Key, float] = field(default_factory=dict)  # accepted message → its ack time
    lost: int = 0  # messages Evolution gave up on (no 2xx after every retry)
    acked_at: float | None = None  # when its last message was posted (monotonic)
    replied: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Sent:
    number: str
    text: str
    at: float
    key_id: str


@dataclass
class Ledger:
    bursts: dict[tuple[int, int], Burst] = field(default_factory=dict)
    waiting: dict[int, tuple[int, int]] = field(default_factory=dict)  # chat → burst it awaits
    sent: list[Sent] = field(default_factory=list)
    webhooks: Counter = field(default_factory=Counter)  # (phase, outcome) → count
    phase: str = "steady"

    def on_sent(self, sent: Sent, chat_of: dict[str, int]) -> None:
        """Wake the customer a reply is for (exact counting is done at the end)."""
        self.sent.append(sent)
        bursts = {(chat, burst) for chat, burst, _ in tags_in(sent.text)}
        if not bursts and sent.number in chat_of:  # the fallback: for the burst it waits on
            waiting = self.waiting.get(chat_of[sent.number])
            bursts = {waiting} if waiting else set()
        for key in bursts:
            if key in self.bursts:
                self.bursts[key].replied.set()


class ReplyWatcher:
    """Polls the fake Evolution for every sendText (bench/fakes.py's `/_bench/sent`)."""

    def __init__(self, http: httpx.AsyncClient, evolution_url: str, ledger: Ledger):
        self._http, self._url, self._ledger = http, f"{evolution_url}/_bench/sent", ledger
        self.index = 0
        self.chat_of: dict[str, int] = {}

    async def run(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.poll_once()
            await asyncio.sleep(0.2)

    async def poll_once(self) -> None:
        body = (await self._http.get(self._url, params={"since": self.index})).json()
        for row in body["sent"]:
            sent = Sent(row["number"], row["text"], row["at"], row["key_id"])
            self._ledger.on_sent(sent, self.chat_of)
        self.index += len(body["sent"])


# --------------------------------------------------------------------------- the stream


class EvolutionPoster:
    """Posts webhooks as Evolution does: a 5xx or a dropped connection is retried with backoff,
    up to 10 attempts; 400/401/403/404/422 stop it."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, ledger: Ledger):
        self._http, self._url, self._ledger = http, base_url + wl.WEBHOOK_PATH, ledger

    async def post(self, secret: str, body: bytes) -> bool:
        headers = {"X-Conversa-Secret": secret, "Content-Type": "application/json"}
        delay_s = 0.5
        for _ in range(WEBHOOK_ATTEMPTS):
            try:
                response = await self._http.post(self._url, content=body, headers=headers)
                outcome = str(response.status_code)
            except httpx.HTTPError as e:
                response, outcome = None, type(e).__name__
            self._ledger.webhooks[(self._ledger.phase, outcome)] += 1
            if response is not None and (
                response.status_code < 300 or response.status_code in STOP_RETRYING
            ):
                return response.status_code < 300
            await asyncio.sleep(delay_s)
            delay_s = min(2 * delay_s, 8.0)
        return False


@dataclass(frozen=True)
class Customer:
    index: int
    cliente: int
    jid: str


async def customer(
    who: Customer,
    target: wl.Target,
    poster: EvolutionPoster,
    ledger: Ledger,
    stop: asyncio.Event,
    rng: random.Random,
    reply_timeout_s: float,
) -> None:
    await asyncio.sleep(rng.uniform(0, 8))  # not all at once
    index = 0
    while not stop.is_set():
        count = rng.choice((1, 1, 2, 2, 3, 4))
        texts = tuple(
            rng.choice(wl.QUESTIONS).format(p=rng.choice(wl.PRODUCTS))
            + f" [m{who.index}.{index}.{n}]"
            for n in range(count)
        )
        burst = Burst(who.index, index, texts)
        ledger.bursts[(who.index, index)] = burst
        ledger.waiting[who.index] = (who.index, index)
        for position, text in enumerate(texts):
            if position:
                await asyncio.sleep(rng.uniform(0.05, 0.2))
            body = wl.upsert_body(target.instances[who.cliente], who.jid, text)
            if await poster.post(target.secrets[who.cliente], body):
                burst.acked[(who.index, index, position)] = time.monotonic()
            else:
                burst.lost += 1
        burst.acked_at, burst.phase = time.monotonic(), ledger.phase
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(reply_timeout_s):
                await burst.replied.wait()
        await asyncio.sleep(rng.uniform(4, 12))
        index += 1


# --------------------------------------------------------------------------- faults


@dataclass
class Context:
    args: argparse.Namespace
    http: httpx.AsyncClient
    fakes_url: str
    postgres: PrivatePostgres
    settings: Any
    ledger: Ledger
    target: wl.Target
    customers: list[Customer]


@dataclass(frozen=True)
class Fault:
    name: str
    label: str
    duration_s: float  # at --scale 1; 0 for an instant fault (a kill)
    inject: Callable[[Context], Awaitable[str]]  # returns what was done
    lift: Callable[[Context], Awaitable[None]] | None = None


async def _fake(ctx: Context, path: str, order: dict[str, Any]) -> None:
    response = await ctx.http.post(f"{ctx.fakes_url}/_bench/{path}", json=order)
    response.raise_for_status()


def evolution_fault(order: dict[str, Any]) -> Callable[[Context], Awaitable[str]]:
    async def inject(ctx: Context) -> str:
        await _fake(ctx, "fault", order)
        return f"sendText: {order}"

    return inject


async def clear_evolution(ctx: Context) -> None:
    await _fake(ctx, "fault", {"mode": "clear"})


def llm_fault(mode: str) -> Callable[[Context], Awaitable[str]]:
    async def inject(ctx: Context) -> str:
        await _fake(ctx, "llm", {"mode": mode, "slow_s": 4 * LLM_TIMEOUT_S})
        return f"model: {mode}"

    return inject


async def heal_llm(ctx: Context) -> None:
    await _fake(ctx, "llm", {"mode": "slow", "slow_s": ctx.args.model_latency_s})


async def restart_postgres(ctx: Context) -> str:
    down_s = 5.0
    await asyncio.to_thread(ctx.postgres.stop)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(ctx.postgres.start)
    return f"PostgreSQL stopped (fast), down {down_s:.0f} s, started"


def _alive(class_prefix: str) -> list[tuple[str, int]]:
    from ray._private import state

    return [
        (actor["Name"], int(actor["Pid"]))
        for actor in state.actors(actor_state_name="ALIVE").values()
        if actor["ActorClassName"].startswith(class_prefix) and actor["Pid"]
    ]


def _kill(pids: list[int]) -> int:
    killed = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def _busy_sessions(ctx: Context) -> list[str]:
    """Session ids of the chats whose last burst is acknowledged but not answered yet."""
    busy = []
    for who in ctx.customers:
        burst = ctx.ledger.bursts.get(ctx.ledger.waiting.get(who.index, (-1, -1)))
        if burst is not None and burst.acked_at is not None and not burst.replied.is_set():
            busy.append(f"cliente_{ctx.target.cliente_ids[who.cliente]}_{who.jid}")
    return busy


async def kill_conversations(ctx: Context) -> str:
    """Five conversation actors with work in hand (a burst pending or its reply in progress);
    waits up to 20 s for five such chats."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(_busy_sessions(ctx)) >= 5:
            break
        await asyncio.sleep(0.1)
    by_session = dict(_alive("ConversationActor"))
    pids = [by_session[s] for s in _busy_sessions(ctx) if s in by_session][:5]
    busy = len(pids)
    if len(pids) < 5:  # not enough busy ones: any live ones
        pids += [pid for pid in by_session.values() if pid not in pids][: 5 - len(pids)]
    return f"killed {_kill(pids)} conversation actors, {busy} of them with work in hand"


async def kill_reply_worker(ctx: Context) -> str:
    """The reply worker producing the most replies (waits up to 20 s for one that is)."""
    import ray

    from engine.core.naming import reply_worker_name

    handles = [
        ray.get_actor(reply_worker_name(i), namespace=ctx.settings.ray_namespace)
        for i in range(ctx.settings.reply_workers)
    ]
    deadline = time.monotonic() + 20
    while True:
        statuses = [await h.status.remote() for h in handles]
        busiest = max(statuses, key=lambda s: len(s["answering"]))
        if busiest["answering"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    _kill([busiest["pid"]])
    return f"killed a reply worker producing {len(busiest['answering'])} replies"


async def kill_retrievers(ctx: Context) -> str:
    pids = [pid for _, pid in _alive("TenantRetriever")]
    return f"killed {_kill(pids)} retrievers"


async def kill_supervisor(ctx: Context) -> str:
    pids = [pid for name, pid in _alive("Supervisor") if name == "supervisor"]
    return f"killed {_kill(pids)} supervisor"


async def kill_serve_replica(ctx: Context) -> str:
    replicas = sorted(pid for _, pid in _alive("ServeReplica:conversa:Ingress"))
    return f"killed {_kill(replicas[:1])} of {len(replicas)} Serve replicas"


FAULTS = [
    Fault(
        "evolution_500",
        "Evolution answers 500",
        60,
        evolution_fault({"mode": "fail", "status": 500}),
        clear_evolution,
    ),
    Fault(
        "evolution_slow",
        "Evolution slower than the timeout",
        30,
        evolution_fault({"mode": "slow", "delay_s": EVOLUTION_TIMEOUT_S + 2}),
        clear_evolution,
    ),
    Fault(
        "echo_first",
        "echo before the send's answer",
        30,
        evolution_fault({"mode": "echo_first"}),
        clear_evolution,
    ),
    Fault("llm_errors", "model errors (503)", 20, llm_fault("error"), heal_llm),
    Fault("llm_timeouts", "model timeouts", 20, llm_fault("slow"), heal_llm),
    Fault("postgres_restart", "PostgreSQL restart", 0, restart_postgres),
    Fault("kill_conversations", "kill -9 conversation actors", 0, kill_conversations),
    Fault("kill_reply_worker", "kill -9 a reply worker", 0, kill_reply_worker),
    Fault("kill_retriever", "kill -9 the retrievers", 0, kill_retrievers),
    Fault("kill_supervisor", "kill -9 the supervisor", 0, kill_supervisor),
    Fault("kill_serve_replica", "kill -9 a Serve replica", 0, kill_serve_replica),
]


@dataclass
class PhaseRecord:
    name: str
    label: str
    started: float
    fault_end: float = 0.0
    ended: float = 0.0
    action: str = ""


async def run_phase(ctx: Context, fault: Fault, record: PhaseRecord) -> None:
    scale = ctx.args.scale
    record.action = await fault.inject(ctx)
    say(f"{fault.name}: {record.action}")
    if fault.duration_s:
        await asyncio.sleep(fault.duration_s * scale)
    if fault.lift is not None:
        await fault.lift(ctx)
    record.fault_end = time.monotonic()
    say(f"{fault.name}: lifted; waiting for every burst accepted so far to be answered")
    await wait_backlog(ctx, before=record.fault_end, limit_s=180)
    await asyncio.sleep(max(5.0, 10.0 * scale))  # calm before the next fault


async def wait_backlog(ctx: Context, *, before: float, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        backlog = [
            b
            for b in ctx.ledger.bursts.values()
            if b.acked_at is not None
            and b.acked_at <= before
            and b.acked
            and not b.replied.is_set()
        ]
        if not backlog:
            return
        await asyncio.sleep(0.5)
    say(f"  backlog not cleared in {limit_s:.0f} s")


# --------------------------------------------------------------------------- counting


async def attribute(ctx: Context) -> dict[Key, list[Sent]]:
    """Every reply the fake Evolution delivered, by the messages it answers: by its tags, else
    through Conversa's tables (the part's turn and the messages that turn answered)."""
    connection = await asyncpg.connect(asyncpg_dsn(ctx.settings.database_url))
    try:
        parts = await connection.fetch(
            "SELECT m.wa_message_id, m.text, m.turn_id, c.chat_jid FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE m.direction = 'outbound'"
        )
        inbound = await connection.fetch(
            "SELECT turn_id, text FROM messages WHERE direction = 'inbound' AND turn_id IS NOT NULL"
        )
    finally:
        await connection.close()
    tags_of_turn: dict[int, set[Key]] = defaultdict(set)
    for row in inbound:
        tags_of_turn[row["turn_id"]] |= tags_in(row["text"])
    turn_of_key = {r["wa_message_id"]: r["turn_id"] for r in parts if r["wa_message_id"]}
    turns_of_text: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in parts:
        turns_of_text[(r["chat_jid"], r["text"])].append(r["turn_id"])
    replies: dict[Key, list[Sent]] = defaultdict(list)
    for sent in ctx.ledger.sent:
        tags = tags_in(sent.text)
        if not tags:
            turn = turn_of_key.get(sent.key_id)
            candidates = [turn] if turn else turns_of_text.get((sent.number, sent.text), [])
            tags = set().union(*(tags_of_turn.get(t, set()) for t in candidates if t))
        for tag in tags:
            replies[tag].append(sent)
    return replies


def count_phase(
    ctx: Context, record: PhaseRecord, replies: dict[Key, list[Sent]]
) -> dict[str, Any]:
    mine = [b for b in ctx.ledger.bursts.values() if b.phase == record.name and b.acked_at]
    counts: Counter = Counter()
    odd = []  # messages not answered exactly once, for the JSON
    latencies_s = []  # first reply − the burst's last ack (the debounce included)
    for burst in mine:
        for key in burst.acked:
            got = replies.get(key, [])
            if got and burst.acked_at is not None:
                latencies_s.append(min(s.at for s in got) - burst.acked_at)
            if not got:
                counts["never"] += 1
            elif len(got) == 1:
                counts["once"] += 1
            elif len({s.text for s in got}) == 1:
                counts["twice_same_copy"] += 1  # the documented window: one part sent again
            else:
                counts["twice_different"] += 1
            if len(got) != 1:
                odd.append(
                    {
                        "message": key,
                        "texts_of_its_burst": burst.texts,
                        "acked_at": burst.acked[key],
                        "replies": [(s.at, s.key_id, s.text[:160]) for s in got],
                    }
                )
    worst = 0.0
    for burst in ctx.ledger.bursts.values():
        for key, acked_at in burst.acked.items():
            if acked_at > record.fault_end:
                continue
            got = replies.get(key, [])
            wait = min(s.at for s in got) - record.fault_end if got else float("inf")
            worst = max(worst, wait)
    webhooks = {o: n for (p, o), n in ctx.ledger.webhooks.items() if p == record.name}
    return {
        "fault": record.name,
        "label": record.label,
        "action": record.action,
        "window_s": round(record.ended - record.started, 1),
        "messages_accepted": sum(len(b.acked) for b in mine),
        "messages_lost_by_evolution": sum(b.lost for b in mine),
        "bursts": len(mine),
        "answered_once": counts["once"],
        "answered_twice_same_copy": counts["twice_same_copy"],
        "answered_twice_different": counts["twice_different"],
        "never_answered": counts["never"],
        "recover_s": None if worst == float("inf") else round(worst, 1),
        "reply_s": {
            "p50": wl.percentile(latencies_s, 50),
            "max": max(latencies_s, default=float("nan")),
        },
        "webhook_answers": webhooks,
        "not_once": odd,
    }


async def final_state(ctx: Context) -> dict[str, Any]:
    connection = await asyncpg.connect(asyncpg_dsn(ctx.settings.database_url))
    try:
        turns = await connection.fetch("SELECT status, count(*) FROM turns GROUP BY status")
        parts = await connection.fetch(
            "SELECT status, count(*), sum(attempts) AS attempts, sum(unconfirmed) AS unconfirmed "
            "FROM messages WHERE direction = 'outbound' GROUP BY status"
        )
        inbound = await connection.fetch(
            "SELECT status, count(*) FROM messages WHERE direction = 'inbound' GROUP BY status"
        )
    finally:
        await connection.close()
    return {
        "turns": {r["status"]: r["count"] for r in turns},
        "parts": {
            r["status"]: {
                "count": r["count"],
                "attempts": r["attempts"],
                "unconfirmed": r["unconfirmed"],
            }
            for r in parts
        },
        "inbound": {r["status"]: r["count"] for r in inbound},
    }


# --------------------------------------------------------------------------- setup


def start_fakes(cleanup: contextlib.ExitStack, log_dir: Path) -> dict[str, Any]:
    log_file = (log_dir / "fakes.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fakes.py"), "--webhook-attempts", str(WEBHOOK_ATTEMPTS),
         "--webhook-retry-delay-s", "0.5"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
    )  # fmt: skip

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
    return json.loads(line)


def conversa_settings(database_url: str, data_dir: Path, fakes: dict[str, Any], chats: int) -> Any:
    from pydantic import SecretStr

    return wi.bench_settings(database_url, data_dir).model_copy(
        update={
            "openai_api_key": SecretStr(fakes["openai_api_key"]),
            "openai_base_url": fakes["openai_base_url"],
            "llm_timeout_s": LLM_TIMEOUT_S,
            "evolution_url": fakes["evolution_url"],
            "evolution_api_key": SecretStr(fakes["evolution_api_key"]),
            "evolution_timeout_s": EVOLUTION_TIMEOUT_S,
            "typing_ms_per_char": 0,
            "typing_presence": False,
            "debounce_s": 0.5,
            "max_wait_s": 2.0,
            # Recovery and leases scaled to a run of minutes (production: 60 s grace, 30 s lease).
            "recovery_interval_s": 1.0,
            "recovery_grace_s": 5.0,
            "turn_lease_s": 10.0,
            "retriever_timeout_s": 5.0,
            "turn_timeout_s": 60.0,
            "actor_call_timeout_s": 20.0,
            "send_echo_window_s": 10.0,
            "send_backoff_base_s": 1.0,
            "send_backoff_max_s": 10.0,
            "evolution_breaker_cooldown_s": 5.0,
            # Every chat keeps its actor: the cap is not what is measured here.
            "max_live_conversations": max(150, chats + 20),
        }
    )


async def setup_tenants(
    http: httpx.AsyncClient, base_url: str, settings: Any, workload: wl.Workload, fakes_url: str
) -> wl.Target:
    auth = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    ids = []
    for c in workload.clientes:
        r = await http.post(f"{base_url}/admin/clientes", json={"nome": c.nome}, headers=auth)
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
        # The instance's webhook as the README sets it up: the echoes come back to Conversa.
        r = await http.post(
            f"{fakes_url}/_bench/webhook",
            json={
                "instance": c.instance,
                "url": f"{base_url}{wl.WEBHOOK_PATH}",
                "headers": {"x-conversa-secret": c.secret},
                "events": ["MESSAGES_UPSERT", "SEND_MESSAGE"],
            },
        )
        r.raise_for_status()
    return wl.Target(
        "conversa",
        base_url,
        tuple(c.instance for c in workload.clientes),
        tuple(c.secret for c in workload.clientes),
        tuple(ids),
    )


# --------------------------------------------------------------------------- main


async def run(
    args: argparse.Namespace, running: Any, postgres: PrivatePostgres, fakes: dict[str, Any]
) -> dict[str, Any]:
    spec = wl.Spec(clientes=args.clientes, chats=args.chats, seed=args.seed)
    workload = wl.build(spec, label="faults")
    faults = FAULTS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {f.name for f in FAULTS}
        if unknown:
            raise SystemExit(f"unknown faults {sorted(unknown)}; known: {[f.name for f in FAULTS]}")
        faults = [f for f in FAULTS if f.name in wanted]
    ledger = Ledger()
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        target = await setup_tenants(
            http, running.base_url, running.settings, workload, fakes["evolution_url"]
        )
        customers = [
            Customer(i, i % args.clientes, f"55117{rng.randint(10_000_000, 99_999_999)}"
                     "@s.whatsapp.net")
            for i in range(args.chats)
        ]  # fmt: skip
        await _fake(
            Context(args, http, fakes["evolution_url"], postgres, running.settings, ledger,
                    target, customers),
            "llm",
            {"mode": "slow", "slow_s": args.model_latency_s},
        )  # fmt: skip
        say(f"{len(target.instances)} clientes ready; {len(customers)} customers start writing")
        watcher = ReplyWatcher(http, fakes["evolution_url"], ledger)
        watcher.chat_of = {c.jid: c.index for c in customers}
        ctx = Context(
            args, http, fakes["evolution_url"], postgres, running.settings, ledger, target,
            customers,
        )  # fmt: skip
        stop = asyncio.Event()
        poster = EvolutionPoster(http, running.base_url, ledger)
        tasks = [asyncio.get_running_loop().create_task(watcher.run())]
        tasks += [
            asyncio.get_running_loop().create_task(
                customer(c, target, poster, ledger, stop, random.Random(rng.random()),
                         args.reply_timeout_s)
            )
            for c in customers
        ]  # fmt: skip
        records = []
        steady = PhaseRecord("steady", "no fault (steady stream)", time.monotonic())
        records.append(steady)
        await asyncio.sleep(max(20.0, 30.0 * args.scale))
        steady.fault_end = steady.ended = time.monotonic()
        for fault in faults:
            record = PhaseRecord(fault.name, fault.label, time.monotonic())
            ledger.phase = fault.name
            records.append(record)
            await run_phase(ctx, fault, record)
            record.ended = time.monotonic()
        drain = PhaseRecord("drain", "after the last fault (stream stops)", time.monotonic())
        ledger.phase = drain.name
        records.append(drain)
        say("stopping the stream; waiting for the last replies")
        stop.set()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        drain.fault_end = time.monotonic()
        await wait_backlog(ctx, before=time.monotonic(), limit_s=180)
        await asyncio.sleep(running.settings.send_echo_window_s + 5)  # late copies would show
        await watcher.poll_once()
        tasks[0].cancel()
        drain.ended = time.monotonic()
        replies = await attribute(ctx)
        rows = [count_phase(ctx, r, replies) for r in records]
        return {
            "scale": args.scale,
            "chats": args.chats,
            "clientes": args.clientes,
            "phases": rows,
            "sent_total": len(ledger.sent),
            "final_state": await final_state(ctx),
        }


def print_table(report: dict[str, Any]) -> None:
    header = (
        "| fault | window s | messages accepted (bursts) | answered once | twice: same copy / "
        "different reply | never answered | time to recover s | reply p50 / max s | "
        "webhooks 5xx or dropped |"
    )
    print("\n" + header)
    print("|" + "---|" * 9)
    for row in report["phases"]:
        if row["fault"] == "drain" and not row["messages_accepted"]:
            continue  # the stream stopped with the last fault: nothing to show
        failed = sum(n for o, n in row["webhook_answers"].items() if not o.startswith("2"))
        recover = "n/a" if row["recover_s"] is None else f"{row['recover_s']:.1f}"
        if row["fault"] in ("steady", "drain"):
            recover = "—"  # no fault to recover from
        print(
            f"| {row['label']} | {row['window_s']:.0f} | {row['messages_accepted']} "
            f"({row['bursts']}) | {row['answered_once']} | "
            f"{row['answered_twice_same_copy']} / {row['answered_twice_different']} | "
            f"{row['never_answered']} | {recover} | {row['reply_s']['p50']:.1f} / "
            f"{row['reply_s']['max']:.1f} | {failed} |"
        )
    totals = Counter()
    for row in report["phases"]:
        for key in ("messages_accepted", "bursts", "answered_once", "never_answered",
                    "answered_twice_same_copy", "answered_twice_different",
                    "messages_lost_by_evolution"):  # fmt: skip
            totals[key] += row[key]
    print(
        f"\nTotal: {totals['messages_accepted']} messages in {totals['bursts']} bursts "
        f"accepted; answered once {totals['answered_once']}, twice "
        f"{totals['answered_twice_same_copy']} (same copy) + {totals['answered_twice_different']}"
        f" (different), never {totals['never_answered']}; messages Evolution gave up posting: "
        f"{totals['messages_lost_by_evolution']}."
    )
    state = report["final_state"]
    print(f"Conversa at the end: turns {state['turns']}; inbound {state['inbound']}")
    print(f"  reply parts {state['parts']}")
    for row in report["phases"]:
        if row["action"]:
            print(f"  {row['fault']}: {row['action']}")


def main() -> int:
    args = parse_args()
    wi.install_time_limit(args.time_limit_s)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    log_dir = Path(tempfile.mkdtemp(prefix="conversa-faults-logs-"))
    with contextlib.ExitStack() as cleanup:
        try:
            fakes = start_fakes(cleanup, log_dir)
            say(f"fakes up: Evolution {fakes['evolution_url']}, model {fakes['openai_base_url']}")
            postgres = PrivatePostgres().start()
            cleanup.callback(postgres.cleanup)
            say(f"private PostgreSQL up: {postgres.url}")
            data_dir = Path(tempfile.mkdtemp(prefix="conversa-faults-"))
            cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
            ray_tmp = Path(tempfile.mkdtemp(prefix="cvf-", dir="/tmp"))
            if not args.keep_logs:
                cleanup.callback(shutil.rmtree, ray_tmp, ignore_errors=True)
            settings = conversa_settings(postgres.url, data_dir, fakes, args.chats)
            say("conversa: starting (migrations, local Ray, shared actors, Serve HAProxy)")
            running = wi.start_stack(settings, ray_tmp, cleanup)
            report = asyncio.run(run(args, running, postgres, fakes))
        finally:
            signal.alarm(0)
            say("tearing down")
    print(
        f"\n=== Faults under a steady stream: {args.chats} chats over {args.clientes} clientes, "
        f"scale {args.scale}, {os.cpu_count()} cores, load average now "
        f"{os.getloadavg()[0]:.1f} ==="
    )
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    if args.keep_logs:
        print(f"Ray logs: {ray_tmp}; fakes log: {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
