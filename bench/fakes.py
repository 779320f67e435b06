"""The fake Evolution API and fake OpenAI of the tests, in a process of their own, for benchmarks.

    .venv/bin/python bench/fakes.py [--nice N]

Prints one JSON line with both URLs and keys once both servers answer, then serves until stdin
closes or SIGTERM. Besides Evolution's own endpoints, `GET /_bench/sent?since=N` on the Evolution
server returns every `sendText` it recorded from index N on (instance, number, text and
`time.monotonic()` on arrival, which is comparable across processes on Linux), so a load
generator in another process learns when each reply was sent.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support

from fastapi import FastAPI  # noqa: E402

from tests.support.fake_evolution import FakeEvolution  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402
from tests.support.http_server import ServerThread  # noqa: E402


def evolution_app(fake: FakeEvolution) -> FastAPI:
    app = fake.app()

    @app.get("/_bench/sent")
    async def sent(since: int = 0) -> dict:
        with fake._lock:
            rows = fake.sent[since:]
            total = len(fake.sent)
        return {
            "total": total,
            "sent": [
                {k: v for k, v in asdict(s).items() if k in ("instance", "number", "text", "at")}
                for s in rows
            ],
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nice", type=int, default=0, help="increment to this process's nice")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    evolution, llm = FakeEvolution(), FakeOpenAI()
    evolution_server = ServerThread(evolution_app(evolution)).start()
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
