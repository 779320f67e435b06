"""One customer workload and its driver, for Conversa and for the baseline alike (issue 13).

The workload (`build`, deterministic from a seed): `clientes` businesses, each with its own
Evolution instance, webhook secret and a few knowledge documents; `chats` customers spread over
them, each starting within the first `ramp_s` and writing `bursts` bursts of 1-4 messages. Inside
a burst the messages follow each other by 50-200 ms (well under the debounce); a customer waits
for the reply to a burst, thinks 0.3-1 s, and writes the next one, so bursts are separated by
more than the debounce plus the reply time. Every message is an Evolution v2 `messages.upsert`
body (tests/support/evolution_payloads.py) and carries a tag `[b<chat>.<burst>]`; the fake model
quotes the burst back, so each `sendText` the fake Evolution records names the bursts it answers.

The driver (`run_conversations`, `run_flood`) posts with at most `concurrency` requests in flight
(async httpx), records each webhook's ack latency, and polls the fake Evolution for every
`sendText` with its arrival time. Per burst: **reply latency = first reply sent − debounce
deadline**, the deadline being the ack of the burst's last message + `debounce_s`; split into a
chat's first burst (Conversa creates the chat's actor then) and the later ("warm") ones; and
whether it was answered once, twice (or more), or never. `run_flood` is the ack path alone:
`flood` webhooks back to back on the same, already warm chats (the caller first raises every
cliente's debounce so no reply fires), for webhooks/s and ack p50/p99 at saturation.

Used by bench/compare.py, which starts each system, measures CPU and prints the table.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

WEBHOOK_PATH = "/webhooks/evolution"
TAG = re.compile(r"\[b(\d+)\.(\d+)\]")
PRODUCTS = ["camiseta", "tênis", "mochila", "boné", "jaqueta", "relógio", "óculos", "carteira"]
QUESTIONS = [
    "Oi, boa tarde!",
    "Quanto custa {p}?",
    "Vocês têm {p} em estoque?",
    "Qual o prazo de entrega para {p}?",
    "Aceitam pix?",
    "Qual o horário de funcionamento?",
    "Tem garantia {p}?",
    "Posso trocar {p} se não servir?",
    "obrigado",
]


# --------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Spec:
    clientes: int = 10
    chats: int = 60
    bursts: int = 3
    messages_per_burst: tuple[int, int] = (1, 4)
    gap_in_burst_s: tuple[float, float] = (0.05, 0.2)
    think_s: tuple[float, float] = (0.3, 1.0)
    ramp_s: float = 30.0
    debounce_s: float = 0.5
    max_wait_s: float = 5.0
    concurrency: int = 16
    flood: int = 1000
    reply_timeout_s: float = 30.0
    seed: int = 13


@dataclass(frozen=True)
class Cliente:
    index: int
    nome: str
    instance: str
    secret: str
    documents: tuple[tuple[str, str], ...]  # (title, markdown)


@dataclass(frozen=True)
class Burst:
    texts: tuple[str, ...]
    gaps_s: tuple[float, ...]  # before the 2nd, 3rd, ... message


@dataclass(frozen=True)
class Chat:
    index: int
    cliente: int  # index into Workload.clientes
    jid: str
    start_s: float
    bursts: tuple[Burst, ...]
    think_s: tuple[float, ...]  # after the reply to burst i, before burst i + 1


@dataclass(frozen=True)
class Workload:
    spec: Spec
    clientes: tuple[Cliente, ...]
    chats: tuple[Chat, ...]

    @property
    def webhooks(self) -> int:
        return sum(len(b.texts) for c in self.chats for b in c.bursts)

    @property
    def bursts(self) -> int:
        return sum(len(c.bursts) for c in self.chats)


def build(spec: Spec, *, label: str) -> Workload:
    """The same clientes, chats and texts for every `label`; instance names carry the label."""
    rng = random.Random(spec.seed)
    clientes = []
    for i in range(spec.clientes):
        stock = rng.sample(PRODUCTS, 4)
        paragraphs = [
            f"O produto {p} da Loja {i} custa R$ {rng.randint(20, 400)},00 e tem garantia de "
            f"{rng.randint(1, 24)} meses. Entregamos {p} em até {rng.randint(1, 10)} dias úteis "
            f"para todo o Brasil; o frete é grátis acima de R$ {rng.randint(100, 300)}. "
            "Trocas em até 30 dias com a nota fiscal."
            for p in stock
        ] + [
            f"A Loja {i} atende de segunda a sábado, das {rng.randint(7, 10)}h às "
            f"{rng.randint(17, 22)}h. Aceitamos pix, cartão em até {rng.randint(2, 12)}x e boleto.",
        ]
        documents = (
            ("produtos.md", "\n\n".join(paragraphs[:4])),
            ("atendimento.md", paragraphs[4]),
        )
        secret = f"segredo-{i:02d}-" + uuid.UUID(int=rng.getrandbits(128)).hex
        clientes.append(Cliente(i, f"Loja {i}", f"{label}-loja-{i:02d}", secret, documents))
    chats = []
    for c in range(spec.chats):
        bursts = []
        for b in range(spec.bursts):
            n = rng.randint(*spec.messages_per_burst)
            texts = tuple(
                rng.choice(QUESTIONS).format(p=rng.choice(PRODUCTS)) + f" [b{c}.{b}]"
                for _ in range(n)
            )
            gaps = tuple(round(rng.uniform(*spec.gap_in_burst_s), 3) for _ in range(n - 1))
            bursts.append(Burst(texts, gaps))
        jid = f"55119{rng.randint(10_000_000, 99_999_999)}@s.whatsapp.net"
        think = tuple(round(rng.uniform(*spec.think_s), 3) for _ in range(spec.bursts - 1))
        start = round(spec.ramp_s * c / max(1, spec.chats), 3)
        chats.append(Chat(c, c % spec.clientes, jid, start, tuple(bursts), think))
    return Workload(spec, tuple(clientes), tuple(chats))


def upsert_body(instance: str, chat_jid: str, text: str) -> bytes:
    """An Evolution v2 `messages.upsert` body, exactly as the tests build it."""
    from tests.support import evolution_payloads as wa

    return json.dumps(wa.text(instance, chat_jid, text, timestamp=int(time.time()))).encode()


# --------------------------------------------------------------------------- the fakes


@dataclass(frozen=True)
class Sent:
    number: str
    text: str
    at: float  # time.monotonic() when the fake Evolution got the sendText


class FakesClient:
    """Reads what the fake Evolution recorded (bench/fakes.py's `/_bench/sent`)."""

    def __init__(self, http: httpx.AsyncClient, evolution_url: str):
        self._http = http
        self._url = f"{evolution_url}/_bench/sent"

    async def sent_since(self, index: int) -> tuple[int, list[Sent]]:
        response = await self._http.get(self._url, params={"since": index})
        body = response.json()
        return body["total"], [Sent(s["number"], s["text"], s["at"]) for s in body["sent"]]


class ReplyWatcher:
    """Polls the fake Evolution every 50 ms; wakes the chat waiting for a burst's reply."""

    def __init__(self, fakes: FakesClient, since: int):
        self._fakes = fakes
        self.index = since
        self.replies: dict[tuple[int, int], list[float]] = defaultdict(list)
        self.untagged = 0
        self._events: dict[tuple[int, int], asyncio.Event] = defaultdict(asyncio.Event)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> ReplyWatcher:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        return self

    async def _poll(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(0.05)

    async def poll_once(self) -> None:
        self.index, sent = await self._fakes.sent_since(self.index)
        for s in sent:
            tags = {(int(c), int(b)) for c, b in TAG.findall(s.text)}
            if not tags:
                self.untagged += 1
            for tag in tags:
                self.replies[tag].append(s.at)
                self._events[tag].set()

    async def wait(self, tag: tuple[int, int], timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._events[tag].wait()
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.poll_once()


# --------------------------------------------------------------------------- posting


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    instances: tuple[str, ...]  # per cliente index
    secrets: tuple[str, ...]
    cliente_ids: tuple[int, ...]


@dataclass
class Acks:
    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    first_post: float = math.inf
    last_ack: float = 0.0
    driver_cpu_s: float = 0.0

    @property
    def wall_s(self) -> float:
        return max(0.0, self.last_ack - self.first_post)


class Poster:
    def __init__(self, http: httpx.AsyncClient, target: Target, concurrency: int):
        self._http = http
        self._url = target.base_url + WEBHOOK_PATH
        self._target = target
        self._slots = asyncio.Semaphore(concurrency)
        self.acks = Acks()

    async def post(self, cliente: int, body: bytes) -> tuple[str, float]:
        """(outcome, monotonic time of the ack)."""
        headers = {
            "X-Conversa-Secret": self._target.secrets[cliente],
            "Content-Type": "application/json",
        }
        async with self._slots:
            started = time.monotonic()
            self.acks.first_post = min(self.acks.first_post, started)
            try:
                response = await self._http.post(self._url, content=body, headers=headers)
                outcome = (
                    response.json().get("status", "?")
                    if response.status_code == 200
                    else f"http_{response.status_code}"
                )
            except (httpx.HTTPError, ValueError) as e:
                outcome = type(e).__name__
            acked = time.monotonic()
        self.acks.latencies_s.append(acked - started)
        self.acks.outcomes[outcome] += 1
        self.acks.last_ack = max(self.acks.last_ack, acked)
        return outcome, acked


# --------------------------------------------------------------------------- conversations


@dataclass
class Conversations:
    acks: Acks
    deadlines: dict[tuple[int, int], float]
    ack_gaps: dict[tuple[int, int], float]  # longest time between two acks inside the burst
    replies: dict[tuple[int, int], list[float]]
    untagged_replies: int
    wall_s: float
    settle_s: float
    debounce_s: float


async def run_conversations(
    http: httpx.AsyncClient,
    target: Target,
    workload: Workload,
    fakes: FakesClient,
    *,
    chats: tuple[Chat, ...] | None = None,
    say: Callable[[str], None] = print,
) -> Conversations:
    """Every chat's bursts, each chat waiting for its replies; then wait for stragglers."""
    spec = workload.spec
    chats = workload.chats if chats is None else chats
    since, _ = await fakes.sent_since(0)
    watcher = ReplyWatcher(fakes, since).start()
    poster = Poster(http, target, spec.concurrency)
    deadlines: dict[tuple[int, int], float] = {}
    ack_gaps: dict[tuple[int, int], float] = {}
    started = time.monotonic()
    cpu_before = time.process_time()

    async def customer(chat: Chat) -> None:
        await asyncio.sleep(max(0.0, started + chat.start_s - time.monotonic()))
        instance = target.instances[chat.cliente]
        for b, burst in enumerate(chat.bursts):
            acked, gap_s = 0.0, 0.0
            for m, text in enumerate(burst.texts):
                if m:
                    await asyncio.sleep(burst.gaps_s[m - 1])
                previous = acked
                _, acked = await poster.post(chat.cliente, upsert_body(instance, chat.jid, text))
                gap_s = max(gap_s, acked - previous if m else 0.0)
            deadlines[(chat.index, b)] = acked + spec.debounce_s
            ack_gaps[(chat.index, b)] = gap_s
            await watcher.wait((chat.index, b), spec.reply_timeout_s)
            if b < len(chat.bursts) - 1:
                await asyncio.sleep(chat.think_s[b])

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            say(
                f"  {target.name}: {sum(poster.acks.outcomes.values())} webhooks acked, "
                f"{len(watcher.replies)}/{sum(len(c.bursts) for c in chats)} bursts answered"
            )

    reporter = asyncio.get_running_loop().create_task(progress())
    try:
        await asyncio.gather(*(customer(chat) for chat in chats))
        wall_s = time.monotonic() - started
        settle_started = time.monotonic()
        # Late or second replies: wait until every burst is answered (or 10 s of nothing new),
        # then a little longer so that a duplicate has time to show.
        quiet_since, seen = time.monotonic(), watcher.index
        while len(watcher.replies) < len(deadlines) and time.monotonic() - quiet_since < 10:
            await asyncio.sleep(0.2)
            if watcher.index != seen:
                quiet_since, seen = time.monotonic(), watcher.index
        await asyncio.sleep(2 * spec.debounce_s + 1.0)
        settle_s = time.monotonic() - settle_started
    finally:
        reporter.cancel()
        await watcher.stop()
    poster.acks.driver_cpu_s = time.process_time() - cpu_before
    return Conversations(
        poster.acks,
        deadlines,
        ack_gaps,
        dict(watcher.replies),
        watcher.untagged,
        wall_s,
        settle_s,
        spec.debounce_s,
    )


# --------------------------------------------------------------------------- the ack path alone


async def run_flood(
    http: httpx.AsyncClient, target: Target, workload: Workload, *, count: int
) -> Acks:
    """`count` webhooks back to back (`concurrency` in flight), round-robin over the chats."""
    chats = workload.chats
    bodies = [
        (
            chats[i % len(chats)].cliente,
            upsert_body(
                target.instances[chats[i % len(chats)].cliente],
                chats[i % len(chats)].jid,
                f"Mensagem {i} da promoção: ainda tem {PRODUCTS[i % len(PRODUCTS)]}?",
            ),
        )
        for i in range(count)
    ]
    poster = Poster(http, target, workload.spec.concurrency)
    queue: Iterator[tuple[int, bytes]] = iter(bodies)
    cpu_before = time.process_time()

    async def worker() -> None:
        for cliente, body in queue:  # one shared iterator: each body is posted once
            await poster.post(cliente, body)

    await asyncio.gather(*(worker() for _ in range(workload.spec.concurrency)))
    poster.acks.driver_cpu_s = time.process_time() - cpu_before
    return poster.acks


# --------------------------------------------------------------------------- metrics


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def ack_summary(acks: Acks) -> dict[str, Any]:
    ms = [x * 1000 for x in acks.latencies_s]
    return {
        "webhooks": len(ms),
        "outcomes": dict(acks.outcomes),
        "wall_s": acks.wall_s,
        "webhooks_per_s": len(ms) / acks.wall_s if acks.wall_s else float("nan"),
        "ack_ms": {"p50": percentile(ms, 50), "p99": percentile(ms, 99), "max": max(ms or [0])},
        "driver_cpu_ms_per_webhook": 1000 * acks.driver_cpu_s / max(1, len(ms)),
    }


def reply_summary(result: Conversations) -> dict[str, Any]:
    """Reply latency (ms) for first and later bursts, and how often each burst was answered.

    Latency is taken over intact bursts only: a burst whose webhooks were acked more than the
    debounce apart was, for the server, two bursts, and its first reply may come before the
    deadline of its last message. How many bursts were split that way is reported."""
    latency: dict[str, list[float]] = {"first": [], "warm": []}
    answered: Counter = Counter()
    per_burst = []
    for tag, deadline in sorted(result.deadlines.items()):
        times = sorted(result.replies.get(tag, []))
        split = result.ack_gaps.get(tag, 0.0) > result.debounce_s
        answered["once" if len(times) == 1 else "never" if not times else "twice_or_more"] += 1
        answered["split_by_slow_acks"] += split
        if len(times) > 1 and split:
            answered["twice_acks_apart"] += 1
        if times and not split:
            latency["first" if tag[1] == 0 else "warm"].append(1000 * (times[0] - deadline))
        gap_s = result.ack_gaps.get(tag, 0.0)
        per_burst.append(
            {"chat": tag[0], "burst": tag[1], "deadline": deadline, "ack_gap_s": gap_s,
             "replies": times}
        )  # fmt: skip
    kinds = ("once", "twice_or_more", "twice_acks_apart", "never", "split_by_slow_acks")
    return {
        "bursts": len(result.deadlines),
        "answered": {k: answered.get(k, 0) for k in kinds},
        "untagged_replies": result.untagged_replies,
        **{
            f"reply_ms_{kind}": {
                "n": len(v),
                "p50": percentile(v, 50),
                "p99": percentile(v, 99),
                "max": max(v or [float("nan")]),
            }
            for kind, v in latency.items()
        },
        "phase_wall_s": result.wall_s,
        "settle_s": result.settle_s,
        "per_burst": per_burst,
    }


# --------------------------------------------------------------------------- CPU


class CpuMeter:
    """utime+stime (+ reaped children) per role, over processes found anew at each sample, so
    processes that start between two samples are counted from zero."""

    def __init__(self, processes: Callable[[], dict[int, tuple[str, psutil.Process]]]):
        self._processes = processes

    def sample(self) -> dict[int, tuple[str, float]]:
        out = {}
        for pid, (role, process) in self._processes().items():
            try:
                t = process.cpu_times()
            except psutil.Error:
                continue
            out[pid] = (role, t.user + t.system + t.children_user + t.children_system)
        return out

    @staticmethod
    def delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict:
        roles: Counter = Counter()
        for pid, (role, seconds) in after.items():
            roles[role] += seconds - (before[pid][1] if pid in before else 0.0)
        return dict(roles)


def postgres_backends(database: str) -> dict[int, tuple[str, psutil.Process]]:
    """The PostgreSQL backends serving one database (their title names it): the shared server's
    other databases, used by other people's tests, are left out."""
    out = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and f" {database} " in " ".join(
            process.info["cmdline"] or []
        ):
            out[process.pid] = ("postgres_backends", process)
    return out


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, default=str))
