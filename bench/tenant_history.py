"""The tenant API's history reads on a big cliente: analytics per day, the streamed export, and
API key authentication, measured in-process against a real PostgreSQL (no Ray, no HTTP).

What it prints, for `--messages` messages of one cliente over `--days` days (and as many of
another cliente, so every query must filter by cliente):

* analytics over the whole range (the SQL of `GET /v1/analytics`): wall time, p50 of 5 runs;
* the export (the query and formatting of `GET /v1/export`, JSONL and CSV): rows/s and how much
  this process's RSS grew while streaming (the rows are read in batches, never all at once);
* API key authentication (`engine.services.api_keys.authenticate`: one SELECT by hash, and an
  UPDATE of `last_used_at` at most once a minute): p50/p99 over `--auth` calls.

    .venv/bin/python bench/tenant_history.py [--messages 200000] [--days 30] [--auth 2000]

Database: a throwaway database on postgresql://postgres@127.0.0.1:5432 (dropped at the end),
migrated by the same Alembic scripts as production.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core.history import DayRange
from engine.db import migrate
from engine.db.session import create_engine, session_factory
from engine.services import api_keys, history
from engine.services.history import ExportFormat

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--auth", type=int, default=2000)
    return parser.parse_args()


async def fill(url: str, *, messages: int, days: int) -> tuple[int, date]:
    """Two clientes with `messages` messages each (a turn per two), over `days` days."""
    db = await asyncpg.connect(url)
    try:
        ids = []
        for nome in ("Grande", "Vizinha"):
            cliente = await db.fetchval(
                "INSERT INTO clientes (nome, status) VALUES ($1, 'ATIVO') RETURNING id", nome
            )
            await db.execute(
                "INSERT INTO conversations (cliente_id, chat_jid, session_id) "
                "SELECT $1::int, n || '@s.whatsapp.net', 'cliente_' || $1::int || '_' || n "
                "FROM generate_series(1, 1000) n",
                cliente,
            )
            await db.execute(
                "INSERT INTO turns (conversation_id, cliente_id, status, user_text, reply_text, "
                "reply_kind, prompt_tokens, completion_tokens, created_at, answered_at) "
                "SELECT c.id, $1, 'RESPONDIDA', 'pergunta', 'resposta', 'llm', 300, 40, "
                "  now() - (n % ($3 * 24)) * interval '1 hour', "
                "  now() - (n % ($3 * 24)) * interval '1 hour' + interval '3 seconds' "
                "FROM generate_series(1, $2 / 2) n "
                "JOIN conversations c ON c.cliente_id = $1 "
                "  AND c.chat_jid = (n % 1000 + 1)::text || '@s.whatsapp.net'",
                cliente,
                messages,
                days,
            )
            await db.execute(
                "INSERT INTO messages (conversation_id, cliente_id, turn_id, direction, author, "
                "status, instance_id, text, created_at) "
                "SELECT t.conversation_id, $1, t.id, d.direction, d.author, d.status, 'i', "
                "  'uma mensagem de tamanho razoável, como as de verdade', "
                "  t.created_at - d.lag "
                "FROM turns t CROSS JOIN (VALUES "
                "  ('inbound', 'customer', 'RESPONDIDA', interval '0'), "
                "  ('outbound', 'bot', 'ENVIADA', interval '-3 seconds')) "
                "  AS d(direction, author, status, lag) "
                "WHERE t.cliente_id = $1",
                cliente,
            )
            ids.append(cliente)
        await db.execute("ANALYZE")
        return ids[0], datetime.now(UTC).date()
    finally:
        await db.close()


async def measure(url: str, args: argparse.Namespace) -> None:
    started = time.monotonic()
    cliente_id, today = await fill(url, messages=args.messages, days=args.days)
    print(f"filled {2 * args.messages} messages in {time.monotonic() - started:.1f} s")
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    days = DayRange.parse(today - timedelta(days=args.days), today, "America/Sao_Paulo")
    try:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            stats = await history.analytics(sessions, cliente_id, days)
            runs.append(time.perf_counter() - t0)
        total = sum(s.messages_in for s in stats)
        print(
            f"analytics: {len(stats)} days, {total} messages in, "
            f"p50 {statistics.median(runs) * 1000:.0f} ms (min {min(runs) * 1000:.0f} ms)"
        )

        process = psutil.Process()
        for fmt in (ExportFormat.JSONL, ExportFormat.CSV):
            rss_before = process.memory_info().rss
            peak = rss_before
            t0 = time.perf_counter()
            rows = size = 0
            async for line in history.export(sessions, cliente_id, days, fmt):
                rows += 1
                size += len(line)
                if rows % 5000 == 0:
                    peak = max(peak, process.memory_info().rss)
            elapsed = time.perf_counter() - t0
            print(
                f"export {fmt.value}: {rows} lines, {size / 1e6:.1f} MB in {elapsed:.1f} s "
                f"({rows / elapsed:,.0f} lines/s), RSS +{(peak - rss_before) / 1e6:.1f} MB"
            )

        async with sessions() as session:
            created = await api_keys.create_key(session, cliente_id, name="b", created_by="b")
            await session.commit()
        timings = []
        for _ in range(args.auth):
            t0 = time.perf_counter()
            await api_keys.authenticate(sessions, created.key)
            timings.append(time.perf_counter() - t0)
        timings.sort()
        p99 = timings[int(len(timings) * 0.99) - 1]
        print(
            f"API key auth: p50 {statistics.median(timings) * 1000:.2f} ms, "
            f"p99 {p99 * 1000:.2f} ms over {args.auth} calls"
        )
    finally:
        await engine.dispose()


async def admin(sql: str) -> None:
    db = await asyncpg.connect(SERVER)
    try:
        await db.execute(sql)
    finally:
        await db.close()


def main() -> None:
    args = parse_args()
    name = f"conversa_bench_history_{uuid.uuid4().hex[:8]}"
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        migrate.upgrade(url)
        asyncio.run(measure(url, args))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
