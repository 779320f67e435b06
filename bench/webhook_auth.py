"""Webhook refusals: is a 401 for an instance that does not exist told apart by its timing?

The webhook finds its instance by the secret header alone (one indexed lookup of its SHA-256),
before the body is read, so "unknown instance" and "wrong secret" are the same miss. This prints
the server-side latency of each kind of refused post, interleaved in random order against the
real application (`serve_app.app.build_app()` around an `IngressContext`, in process through
httpx's ASGI transport: no network noise) and a real PostgreSQL:

* `unknown instance` — the body names an instance that does not exist, with some secret;
* `wrong secret` — the body names a registered instance, with a wrong secret;
* `no secret` — no header at all (refused before any lookup);
* `oversize (Content-Length)` — a declared body over WEBHOOK_MAX_BODY_BYTES (413, no lookup);
* `accepted` — the right secret, for scale (the cliente is SUSPENSO: recorded, no actor).

    .venv/bin/python bench/webhook_auth.py [--posts 2000]

Database: DATABASE_URL if set, else a throwaway database on postgresql://postgres@127.0.0.1:5432
(dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (webhook bodies, throwaway databases)

from engine.config import Settings  # noqa: E402
from tests.support import evolution_payloads as wa  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402
from tests.support.scenario import make_cliente  # noqa: E402

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000, help="posts of each kind")
    return parser.parse_args()


async def measure(settings: Settings, posts: int) -> dict[str, list[float]]:
    from serve_app.app import build_app
    from serve_app.context import IngressContext

    context = IngressContext(settings)
    tenant = await make_cliente(
        context.sessions, context.settings, nome="bench", instance_prefix="bench", status="SUSPENSO"
    )
    instance, secret = tenant.instance, tenant.secret
    app = build_app()
    app.state.ctx = context
    oversize = str(settings.webhook_max_body_bytes + 1)
    kinds = {
        "unknown instance": lambda: (
            wa.text("no-such-instance", wa.new_chat(), "oi"),
            {"X-Conversa-Secret": uuid.uuid4().hex * 2},
        ),
        "wrong secret": lambda: (
            wa.text(instance, wa.new_chat(), "oi"),
            {"X-Conversa-Secret": uuid.uuid4().hex * 2},
        ),
        "no secret": lambda: (wa.text(instance, wa.new_chat(), "oi"), {}),
        "oversize (Content-Length)": lambda: (
            wa.text(instance, wa.new_chat(), "oi"),
            {"X-Conversa-Secret": secret, "Content-Length": oversize},
        ),
        "accepted": lambda: (wa.text(instance, wa.new_chat(), "oi"), {"X-Conversa-Secret": secret}),
    }
    expected = {"accepted": 200, "oversize (Content-Length)": 413}
    order = [kind for kind in kinds for _ in range(posts)]
    random.shuffle(order)
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for kind in list(kinds) * 20:  # warm-up: pool connections, code paths
            payload, headers = kinds[kind]()
            await client.post("/webhooks/evolution", json=payload, headers=headers)
        for kind in order:
            payload, headers = kinds[kind]()
            started = time.perf_counter()
            response = await client.post("/webhooks/evolution", json=payload, headers=headers)
            latencies[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == expected.get(kind, 401), (kind, response.text)
    await context.close()
    return latencies


def main() -> None:
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL")
    created = None
    if not database_url:
        created, database_url = create_database(SYSTEM_PG, "conversa_bench_auth")
    try:
        from engine.db import migrate

        migrate.upgrade(database_url)
        settings = Settings(_env_file=None, database_url=database_url, db_pool_size=2)  # type: ignore[call-arg]
        latencies = asyncio.run(measure(settings, args.posts))
    finally:
        if created:
            drop_database(SYSTEM_PG, created)
    print(f"{args.posts} posts of each kind, interleaved; server-side latency in ms")
    print(f"{'kind':<28}{'p50':>8}{'p90':>8}{'p99':>8}{'mean':>8}")
    for kind, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        print(f"{kind:<28}{q[49]:>8.3f}{q[89]:>8.3f}{q[98]:>8.3f}{statistics.fmean(values):>8.3f}")
    unknown, wrong = latencies["unknown instance"], latencies["wrong secret"]
    print(
        "unknown instance - wrong secret: median "
        f"{statistics.median(unknown) - statistics.median(wrong):+.3f} ms, mean "
        f"{statistics.fmean(unknown) - statistics.fmean(wrong):+.3f} ms"
    )


if __name__ == "__main__":
    main()
