"""Every operation of the OpenAPI document fuzzed with schemathesis, three ways: with no
credentials, with the operator token, with a cliente's API key. The real app (in process, over
ASGI) on a database of its own, with its own supervisor and reply worker on the test cluster.

Holds: no response is a 5xx; with no credentials, every refused request leaves every table's row
count as it was. Cases are drawn per operation with a fixed seed (`derandomize`) and a bounded
count, then sent one by one; the counts per route are printed (`pytest -s`) for the README.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import Case

from engine.config import EmbeddingModel, Settings
from serve_app.app import build_app
from tests.conftest import ADMIN_TOKEN
from tests.support.inprocess_app import replica
from tests.support.postgres import asyncpg_dsn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLES_PER_OPERATION = 12
BASE = "http://conversa"
# The webhook and the Stripe webhook read raw bodies (no schema to fuzz): hypothesis covers the
# webhook (test_webhook_properties.py), signatures cover Stripe's (test_billing.py).
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v1/signup")}


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(build_app().openapi())
    return [result.ok() for result in schema.get_all_operations()]


def _draw(operation: Any, count: int) -> list[Case]:
    """`count` cases of one operation, the same on every run."""
    cases: list[Case] = []

    @hypothesis_settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(operation.as_strategy())
    def collect(case: Case) -> None:
        cases.append(case)

    collect()
    return cases


def _request(case: Case, auth: dict[str, str]) -> dict[str, Any]:
    """httpx arguments of a case (schemathesis speaks `requests`)."""
    sent = case.as_transport_kwargs(base_url=BASE)
    headers = {k: str(v) for k, v in (sent.get("headers") or {}).items()}
    headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")}
    request: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": {**headers, **auth},
        "params": sent.get("params") or None,
        "cookies": sent.get("cookies") or None,
    }
    if "json" in sent:
        request["content"] = json.dumps(sent["json"]).encode()
        request["headers"]["Content-Type"] = "application/json"
    elif isinstance(sent.get("data"), str | bytes):
        request["content"] = sent["data"]
    elif sent.get("data") is not None or sent.get("files"):
        request["data"], request["files"] = sent.get("data"), sent.get("files")
    return request


async def _row_counts(connection: asyncpg.Connection) -> dict[str, int]:
    """Every table's row count (rate_limits aside: counting failures is its job)."""
    tables = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT IN ('alembic_version', 'rate_limits')"
    )
    union = " UNION ALL ".join(
        f"SELECT '{t['tablename']}', count(*) FROM \"{t['tablename']}\"" for t in tables
    )
    return {name: count for name, count in await connection.fetch(union)}


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings, own_database_url: str, conversa: Any) -> Iterator[Settings]:
    """The test stack's settings on the module's own database and Ray namespace, with the shared
    actors (supervisor, reply worker, a hashing embedder) started there."""
    import ray

    from serve_app.deployment import start_shared_actors

    fuzz = settings.model_copy(
        update={
            "database_url": own_database_url,
            "ray_namespace": f"fuzz-{uuid.uuid4().hex[:6]}",
            "embedding_model": EmbeddingModel.HASH,
            "reply_workers": 1,
            "api_rate_burst": 10_000,  # the fuzzer is not a client to slow down
            "actor_call_timeout_s": 5.0,
        }
    )
    start_shared_actors(fuzz)
    yield fuzz
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == fuzz.ray_namespace:
            ray.kill(ray.get_actor(actor["name"], namespace=fuzz.ray_namespace))


@pytest.fixture(scope="module")
async def http(fuzz_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with replica(fuzz_settings) as client:
        yield client


async def _tenant_key(http: httpx.AsyncClient) -> str:
    operator = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    made = await http.post(
        "/admin/clientes",
        json={"nome": "Loja Fuzz", "status": "ATIVO"},
        headers=operator,
    )
    assert made.status_code == 201, made.text
    key = await http.post(
        f"/admin/clientes/{made.json()['id']}/api-keys", json={"name": "fuzz"}, headers=operator
    )
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


@dataclass
class Run:
    per_route: Counter[str] = field(default_factory=Counter)  # cases sent
    answered_2xx: set[str] = field(default_factory=set)  # routes that did something
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx, as curl commands
    wrote: list[str] = field(default_factory=list)  # refused, yet a row count changed


async def _fuzz(
    http: httpx.AsyncClient, auth: dict[str, str], *, database_url: str | None = None
) -> Run:
    """Send every operation's cases; with `database_url`, check every refused request left
    every row count as it was."""
    run = Run()
    counts = await asyncpg.connect(asyncpg_dsn(database_url)) if database_url else None
    try:
        for operation in _operations():
            route = f"{operation.method.upper()} {operation.path}"
            for case in _draw(operation, EXAMPLES_PER_OPERATION):
                before = await _row_counts(counts) if counts else None
                response = await http.request(**_request(case, auth))
                run.per_route[route] += 1
                run.statuses[response.status_code] += 1
                if response.is_success:
                    run.answered_2xx.add(route)
                if response.status_code >= 500:
                    run.server_errors.append(f"{response.status_code} {case.as_curl_command()}")
                if counts and before is not None and response.status_code >= 400:
                    after = await _row_counts(counts)
                    if after != before:
                        changed = {t: (before[t], after[t]) for t in after if before[t] != after[t]}
                        run.wrote.append(f"{route} {response.status_code} wrote {changed}")
    finally:
        if counts:
            await counts.close()
    print(
        f"\n{sum(run.per_route.values())} cases over {len(run.per_route)} operations; "
        f"statuses {dict(sorted(run.statuses.items()))}; 2xx on {len(run.answered_2xx)} "
        f"operations; per route: {dict(run.per_route)}"
    )
    return run


async def test_without_credentials_nothing_fails_and_nothing_refused_writes(
    http: httpx.AsyncClient, fuzz_settings: Settings
) -> None:
    run = await _fuzz(http, {}, database_url=fuzz_settings.database_url)

    assert run.server_errors == []
    assert run.wrote == []
    assert len(run.per_route) == len(_operations())
    assert {r.split()[1].split("/")[1] for r in run.answered_2xx} <= {"healthz", "readyz", "v1"}


async def test_with_the_operator_token_nothing_fails(http: httpx.AsyncClient) -> None:
    run = await _fuzz(http, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert run.server_errors == []
    assert sum(1 for r in run.answered_2xx if " /admin/" in r) >= 10  # the token was accepted


async def test_with_a_tenant_api_key_nothing_fails(http: httpx.AsyncClient) -> None:
    key = await _tenant_key(http)

    run = await _fuzz(http, {"Authorization": f"Bearer {key}"})

    assert run.server_errors == []
    assert sum(1 for r in run.answered_2xx if " /v1/" in r) >= 10  # the key was accepted


def test_every_public_operation_is_known() -> None:
    """Operations reachable without credentials are exactly these (a new one is a decision)."""
    public_prefixes = ("/admin", "/v1", "/webhooks", "/stripe")
    unguarded = {
        (op.method.upper(), op.path)
        for op in _operations()
        if not op.path.startswith(public_prefixes)
    }
    assert unguarded | {("POST", "/v1/signup")} == PUBLIC
