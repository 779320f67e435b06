"""The fake Evolution API and fake OpenAI of the tests, in a process of their own, for benchmarks.

    .venv/bin/python bench/fakes.py [--nice N] [--webhook-attempts N] [--webhook-retry-delay-s S]

Prints one JSON line with both URLs and keys once both servers answer, then serves until stdin
closes or SIGTERM. Besides Evolution's own endpoints, `GET /_bench/sent?since=N` on the Evolution
server returns every `sendText` it recorded from index N on (instance, number, text, key id and
`time.monotonic()` on arrival, which is comparable across processes on Linux), so a load
generator in another process learns when each reply was sent. For bench/faults.py it also takes
orders: `POST /_bench/fault` (a fault of tests/support/evolution_faults.py, or `{"mode":
"clear"}`), `POST /_bench/llm` (`{"mode": "ok" | "error" | "slow", "slow_s": …}`) and
`POST /_bench/webhook` (an instance's webhook, as `configure_webhook`). `--webhook-attempts`
and `--webhook-retry-delay-s` set how Evolution retries its own webhook posts (the echoes).

They run apart from the load generator so that neither's event loop delays the other: a reply
is timed when it reaches Evolution, not when a busy driver gets round to it. Typing delay and
model latency are zero unless the caller asks for them (the `delay` of sendText is honoured).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support

from fastapi import FastAPI  # noqa: E402

from tests.support.fake_evolution import FakeEvolution  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402
from tests.support.http_server import ServerThread  # noqa: E402

SENT_FIELDS = ("instance", "number", "text", "at", "key_id")


def evolution_app(fake: FakeEvolution, llm: FakeOpenAI | None = None) -> FastAPI:
    app = fake.app()

    @app.get("/_bench/sent")
    async def sent(since: int = 0) -> dict:
        with fake._lock:
            rows = fake.sent[since:]
            total = len(fake.sent)
        return {
            "total": total,
            "sent": [{k: v for k, v in asdict(s).items() if k in SENT_FIELDS} for s in rows],
        }

    @app.post("/_bench/fault")
    async def fault(order: dict[str, Any]) -> dict:
        mode = order.get("mode")
        endpoint = order.get("endpoint", "sendText")
        window = {"calls": order.get("calls"), "for_s": order.get("for_s")}
        if mode == "clear":
            fake.clear_faults()
        elif mode == "fail":
            fake.fail(endpoint, status=int(order.get("status", 500)), **window)
        elif mode == "slow":
            fake.slow(endpoint, delay_s=float(order["delay_s"]), **window)
        elif mode == "echo_first":
            fake.echo_before_reply(event=order.get("event", "messages.upsert"), **window)
        elif mode == "reset":
            fake.reset_connection(endpoint, **window)
        elif mode == "not_json":
            fake.answer_not_json(endpoint, **window)
        else:
            return {"error": f"unknown mode {mode!r}"}
        return {"ok": True}

    @app.post("/_bench/llm")
    async def llm_mode(order: dict[str, Any]) -> dict:
        assert llm is not None
        llm.mode = str(order.get("mode", "ok"))
        llm.slow_s = float(order.get("slow_s", llm.slow_s))
        return {"ok": True}

    @app.post("/_bench/webhook")
    async def webhook(order: dict[str, Any]) -> dict:
        fake.configure_webhook(
            order["instance"],
            url=order["url"],
            headers=order.get("headers") or {},
            events=order.get("events") or [],
        )
        return {"ok": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nice", type=int, default=0, help="increment to this process's nice")
    parser.add_argument("--webhook-attempts", type=int, default=1, help="Evolution: 10")
    parser.add_argument("--webhook-retry-delay-s", type=float, default=0.2, help="Evolution: 5")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    evolution, llm = FakeEvolution(), FakeOpenAI()
    evolution.webhook_max_attempts = args.webhook_attempts
    evolution.webhook_retry_delay_s = args.webhook_retry_delay_s
    evolution_server = ServerThread(evolution_app(evolution, llm)).start()
    evolution._server = evolution_server  # its webhook posts name it (`server_url`)
    llm._server = ServerThread(llm.app()).start()
    print(
        json.dumps(
            {
                "evolution_url": evolution_server.url,
                "evolution_api_key": evolution.api_key,
                "openai_base_url": llm.base_url,
                "openai_api_key": llm.api_key,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    evolution_server.stop()
    llm.stop()


if __name__ == "__main__":
    main()
