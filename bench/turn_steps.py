"""A warm turn, step by step, in one process: where the time between the deadline and the reply
goes when Ray and the network are taken away.

The reply workers' code (`engine.services.reply_pipeline.ReplyPipeline`) and the webhook's inbox
run in this process against a real PostgreSQL and the tests' fake Evolution and instant model
(HTTP servers on threads of this process). For `--chats` chats, each message is accepted through
the inbox, then the turn is run as a conversation actor runs it (`begin_turn`, then
`answer_turn`, without passages) and timed:

* `begin_turn` — claim the burst under a lease and decide the turn;
* `answer_turn` — the whole call, and inside it: the model call, recording the reply (and
  claiming its first part), the send to Evolution, and what comes after the send (recording it,
  looking for anything else due);
* `to the send` — `begin_turn` + `answer_turn` up to Evolution having the reply: the part of
  "reply − deadline" that is the reply worker's own work (`bench/compare.py` adds Ray's hops).

    .venv/bin/python bench/turn_steps.py [--chats 20] [--turns 10]

Database: DATABASE_URL if set, else a throwaway database on postgresql://postgres@127.0.0.1:5432
(dropped at the end). For an A/B, copy this file into another checkout's `bench/` and run it
there: it imports the code of the checkout it sits in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (fakes, scenario, throwaway databases)

from engine.config import Settings  # noqa: E402
from tests.support import evolution_payloads as wa  # noqa: E402
from tests.support.fake_evolution import FakeEvolution  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
STEPS = (
    "begin_turn",
    "answer_turn",
    "  model",
    "  record reply",
    "  send",
    "  after the send",
    "to the send",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10, help="turns per chat (the first: warm-up)")
    return parser.parse_args()


async def measure(settings: Settings, chats: int, turns: int) -> dict[str, list[float]]:
    from tests.support.pipeline import InProcessConversa
    from tests.support.scenario import make_cliente

    conversa = InProcessConversa(settings, owner="bench")
    pipeline = conversa.pipeline
    shop = await make_cliente(conversa.sessions, settings, nome="bench", instance_prefix="bench")
    warm: dict[str, list[float]] = defaultdict(list)  # the first turn of each chat, dropped
    times: dict[str, list[float]] = defaultdict(list)
    steps = {"current": warm}
    # Bench-only instrumentation: the pipeline's own steps, timed where they are called.
    pipeline._reply = timed_into(steps, "  model", pipeline._reply)  # type: ignore[method-assign,assignment]
    pipeline._record = timed_into(steps, "  record reply", pipeline._record)  # type: ignore[method-assign,assignment]
    deliverer = pipeline.deliverer
    sent_at: list[float] = []
    send = deliverer._send

    async def send_and_note(*args: Any, **kwargs: Any) -> Any:
        result = await send(*args, **kwargs)
        sent_at.append(time.perf_counter())
        return result

    deliverer._send = timed_into(steps, "  send", send_and_note)  # type: ignore[method-assign,assignment]
    chat_ids = [wa.new_chat() for _ in range(chats)]
    for turn in range(turns):
        steps["current"] = warm if turn == 0 else times
        for i, chat in enumerate(chat_ids):
            conversation = await conversa.receive(shop, chat, f"pergunta {turn} do chat {i}")
            started = time.perf_counter()
            plan = await pipeline.begin_turn(conversation)
            begun = time.perf_counter()
            assert plan is not None
            result = await pipeline.answer_turn(plan, passages=[], memory=[])
            done = time.perf_counter()
            assert result.delivered, result
            into = steps["current"]
            into["begin_turn"].append((begun - started) * 1000)
            into["answer_turn"].append((done - begun) * 1000)
            into["to the send"].append((sent_at[-1] - started) * 1000)
            into["  after the send"].append((done - sent_at[-1]) * 1000)
    await conversa.close()
    return times


def timed_into(
    steps: dict[str, dict[str, list[float]]], step: str, function: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            steps["current"][step].append((time.perf_counter() - started) * 1000)

    return wrapper


def main() -> None:
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL")
    created = None
    if not database_url:
        created, database_url = create_database(SYSTEM_PG, "conversa_bench_turn")
    evolution, model = FakeEvolution().start(), FakeOpenAI().start()
    try:
        from engine.db import migrate

        migrate.upgrade(database_url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            db_pool_size=2,
            log_level="WARNING",  # a line per turn and per send would be most of the CPU
            evolution_url=evolution.url,
            evolution_api_key=evolution.api_key,
            openai_api_key=model.api_key,
            openai_base_url=model.base_url,
            typing_presence=False,
            typing_ms_per_char=0,
            relevance_min_score=-1.0,
            chat_max_messages=10_000,  # the bench's chats write fast: not a flood, not a bot
            loop_repeats=10_000,
            loop_fast_answers=10_000,
        )
        times = asyncio.run(measure(settings, args.chats, args.turns))
    finally:
        evolution.stop()
        model.stop()
        if created:
            drop_database(SYSTEM_PG, created)
    count = len(times["begin_turn"])
    print(f"{args.chats} chats × {args.turns - 1} warm turns ({count} turns), one process; ms")
    print(f"{'step':<22}{'p50':>8}{'p90':>8}{'p99':>8}{'mean':>8}")
    for step in STEPS:
        values = times[step]
        q = statistics.quantiles(values, n=100)
        print(f"{step:<22}{q[49]:>8.2f}{q[89]:>8.2f}{q[98]:>8.2f}{statistics.fmean(values):>8.2f}")


if __name__ == "__main__":
    main()
