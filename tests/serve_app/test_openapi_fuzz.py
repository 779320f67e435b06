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


async def _row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('alembic_version', 'rate_limits')"
        )
        return {
            t["tablename"]: await connection.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
            for t in tables
        }
    finally:
        await connection.close()


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


async def _fuzz(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    *,
    database_url: str | None = None,
) -> tuple[Counter[str], list[str], list[str]]:
    """Send every operation's cases; the cases per route, the 5xx answers and (with
    `database_url`) the refused requests that changed a row count."""
    per_route: Counter[str] = Counter()
    server_errors: list[str] = []
    wrote: list[str] = []
    for operation in _operations():
        route = f"{operation.method.upper()} {operation.path}"
        for case in _draw(operation, EXAMPLES_PER_OPERATION):
            before = await _row_counts(database_url) if database_url else None
            response = await http.request(**_request(case, auth))
            per_route[route] += 1
            if response.status_code >= 500:
                server_errors.append(f"{response.status_code} {case.as_curl_command()}")
            if before is not None and response.status_code >= 400:
                after = await _row_counts(database_url or "")
                if after != before:
                    changed = {t: (before[t], after[t]) for t in after if before[t] != after[t]}
                    wrote.append(f"{route} {response.status_code} wrote {changed}")
    print(f"\n{sum(per_route.values())} cases; per route: {dict(per_route)}")
    return per_route, server_errors, wrote


async def test_without_credentials_nothing_fails_and_nothing_refused_writes(
    http: httpx.AsyncClient, fuzz_settings: Settings
) -> None:
    per_route, server_errors, wrote = await _fuzz(
        http, {}, database_url=fuzz_settings.database_url
    )

    assert server_errors == []
    assert wrote == []
    assert len(per_route) == len(_operations())


async def test_with_the_operator_token_nothing_fails(http: httpx.AsyncClient) -> None:
    _, server_errors, _ = await _fuzz(http, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert server_errors == []


async def test_with_a_tenant_api_key_nothing_fails(http: httpx.AsyncClient) -> None:
    key = await _tenant_key(http)

    _, server_errors, _ = await _fuzz(http, {"Authorization": f"Bearer {key}"})

    assert server_errors == []


def test_every_public_operation_is_known() -> None:
    """Operations reachable without credentials are exactly these (a new one is a decision)."""
    public_prefixes = ("/admin", "/v1", "/webhooks", "/stripe")
    unguarded = {
        (op.method.upper(), op.path)
        for op in _operations()
        if not op.path.startswith(public_prefixes)
    }
    assert unguarded | {("POST", "/v1/signup")} == PUBLIC
