"""Fixtures for integration tests: real PostgreSQL, local Ray, Chroma, and test-run HTTP peers.

One Conversa stack (the same `serve_app.runtime.start` that `conversa run` uses) is started per
test session against a fresh database; each test makes its own clientes, so tests never share
conversations, and cleans up the actors it caused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from engine.config import Settings
from tests.support.accounts import Account, MakeAccount, account_for
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_stripe import DEFAULT_PRICE, FakeStripe
from tests.support.http_server import free_port
from tests.support.postgres import asyncpg_dsn, create_database, drop_database
from tests.support.private_postgres import PrivatePostgres
from tests.support.tenants import MakeTenant, TenantHandle

ADMIN_TOKEN = "test-admin-token-Jq7vR2xW9mKp4sLd8NfT3bZc"  # strong: ENVIRONMENT=test
IDLE_TTL_S = 3.0
SEARCH_AHEAD_S = 1.0
MAX_LIVE = 4
EVOLUTION_TIMEOUT_S = 3.0
ECHO_WINDOW_S = 3.0
SEND_MAX_ATTEMPTS = 20
TURN_LEASE_S = 6.0
RETRIEVER_TIMEOUT_S = 3.0
TURN_TIMEOUT_S = 15.0
ACTOR_CALL_TIMEOUT_S = 12.0
SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _reachable(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server to create the test database in: CONVERSA_TEST_POSTGRES_URL, the
    machine's server on 127.0.0.1:5432, or an embedded one started for this run."""
    configured = os.environ.get("CONVERSA_TEST_POSTGRES_URL")
    if configured:
        yield asyncpg_dsn(configured)
        return
    if asyncio.run(_reachable(SYSTEM_PG)):
        yield SYSTEM_PG
        return
    from engine.adapters import embedded_postgres

    url, server = embedded_postgres.start(tmp_path_factory.mktemp("pg"))
    yield asyncpg_dsn(url)
    server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database for this run, migrated by the same Alembic scripts as production."""
    from engine.db import migrate

    name, url = create_database(postgres_admin_url, "conversa_test")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
def own_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test module that runs Conversa's code in-process
    (tests/support/pipeline.py): the session stack's reply workers never see its rows."""
    from engine.db import migrate

    name, url = create_database(postgres_admin_url, "conversa_inproc")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the module's own, which its tests may stop and start (never the
    machine's server: other tests use it)."""
    server = PrivatePostgres().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def fake_evolution() -> Iterator[FakeEvolution]:
    server = FakeEvolution().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


BILLING_GRACE_S = 4.0


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    fake_evolution: FakeEvolution,
    fake_llm: FakeOpenAI,
    fake_stripe: FakeStripe,
) -> Iterator[Settings]:
    data_dir = Path(tempfile.mkdtemp(prefix="conversa-test-"))
    base_port = free_port()
    yield Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        database_url=database_url,
        db_pool_size=3,
        ray_num_cpus=2,
        http_port=base_port,
        haproxy_stats_port=free_port(),
        haproxy_metrics_port=free_port(),
        fallback_proxy_port=free_port(),
        direct_ingress_min_port=32000 + (base_port % 20) * 100,
        ingress_replicas=2,
        reply_workers=2,
        debounce_s=0.5,
        max_wait_s=3.0,
        # A second to watch a burst searched ahead (tests/serve_app/test_message_path.py); bursts
        # due sooner (debounce 0.5 s) are searched by their turns, so both ways run in the suite.
        search_ahead_s=SEARCH_AHEAD_S,
        # Lifecycle knobs small enough to watch happen inside a test.
        idle_ttl_s=IDLE_TTL_S,
        retriever_idle_ttl_s=6.0,
        max_live_conversations=MAX_LIVE,
        recovery_interval_s=1.0,
        recovery_grace_s=2.0,
        # Retention on, with a pass every few seconds: only rows a test ages by hand are old
        # enough to go (tests/serve_app/test_retention.py).
        message_retention_days=30,
        processed_webhook_retention_days=7,
        retention_interval_s=2.0,
        retention_batch_rows=2,
        ingest_stall_s=3.0,
        # The "I don't know" gate off by default: most tests post made-up messages to check the
        # message path; the tests of the gate give their cliente the calibrated threshold.
        relevance_min_score=-1.0,  # SCORE_FLOOR: the gate is off
        typing_ms_per_char=1,
        typing_min_ms=0,
        typing_max_ms=200,
        openai_api_key=fake_llm.api_key,
        openai_base_url=fake_llm.base_url,
        llm_timeout_s=2.0,
        evolution_url=fake_evolution.url,
        evolution_api_key=fake_evolution.api_key,
        evolution_timeout_s=EVOLUTION_TIMEOUT_S,
        # Delivery and timeouts small enough to watch retries, echoes and leases in a test.
        send_backoff_base_s=0.5,
        send_backoff_max_s=2.0,
        send_max_attempts=SEND_MAX_ATTEMPTS,
        send_echo_window_s=ECHO_WINDOW_S,
        delivery_poll_s=0.3,
        evolution_breaker_failures=3,
        evolution_breaker_cooldown_s=2.0,
        turn_lease_s=TURN_LEASE_S,
        retriever_timeout_s=RETRIEVER_TIMEOUT_S,
        turn_timeout_s=TURN_TIMEOUT_S,
        actor_call_timeout_s=ACTOR_CALL_TIMEOUT_S,
        log_level="INFO",
        # Tests answer a reply within milliseconds, as only a bot would: that heuristic is off
        # here (tests/serve_app/test_chat_limits.py turns it on for its own pipeline).
        loop_fast_answers=0,
        # Evolution (the test-run server) posts provisioned instances' webhooks here.
        public_url=f"http://127.0.0.1:{base_port}",
        signup_enabled=True,
        stripe_api_key=fake_stripe.api_key,
        stripe_api_base=fake_stripe.url,
        stripe_webhook_secret=fake_stripe.webhook_secret,
        stripe_price_id=DEFAULT_PRICE,
        billing_grace_s=BILLING_GRACE_S,  # short enough to watch a grace period end
    )
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def conversa(settings: Settings) -> Iterator[Any]:
    """The whole stack, started once per session exactly as `conversa run` starts it."""
    from serve_app import runtime

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no ~/.ray/auth_token side effect
    ray_tmp = tempfile.mkdtemp(prefix="cvr-", dir="/tmp")  # short: Ray's socket paths are long
    running = runtime.start(settings, dashboard=False, temp_dir=ray_tmp)
    yield running
    running.stop()
    if not os.environ.get("CONVERSA_KEEP_RAY_LOGS"):  # set it to read the actors' logs after a run
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture
async def api(conversa: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=conversa.base_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=60,
    ) as client:
        yield client


@pytest.fixture
async def make_tenant(
    api: httpx.AsyncClient, settings: Settings, database_url: str
) -> AsyncIterator[MakeTenant]:
    """Factory: a cliente with an instance and (optionally) documents, cleaned up after."""
    made: list[int] = []

    async def make(
        *, documents: tuple[str, ...] = (), status: str | None = "ATIVO", **cliente_fields: Any
    ) -> TenantHandle:
        """`status=None`: as a new business starts (PENDENTE until it pays)."""
        body = {"nome": f"Loja {uuid.uuid4().hex[:6]}", **cliente_fields}
        if status is not None:
            body["status"] = status
        response = await api.post("/admin/clientes", json=body)
        assert response.status_code == 201, response.text
        cliente_id = response.json()["id"]
        made.append(cliente_id)
        instance = f"loja-{cliente_id}-{uuid.uuid4().hex[:6]}"
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        response = await api.post(
            f"/admin/clientes/{cliente_id}/instances",
            json={
                "instance_id": instance,
                "webhook_secret": secret,
                "api_key": f"instance-key-{cliente_id}",
            },
        )
        assert response.status_code == 201, response.text
        for i, document in enumerate(documents):
            response = await api.post(
                f"/admin/clientes/{cliente_id}/documents",
                params={"title": f"doc-{i}", "wait": "true"},
                content=document.encode(),
                headers={"Content-Type": "text/markdown"},
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "PRONTO"
        return TenantHandle(cliente_id, instance, secret, api)

    yield make
    await kill_actors_of(made, settings, database_url)


async def kill_actors_of(cliente_ids: list[int], settings: Settings, database_url: str) -> None:
    from engine.core.naming import get_collection_name
    from tests.support.ray_actors import kill_actor

    if not cliente_ids:
        return
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # A finished test's pending bursts must not be revived by recovery while the next test
        # runs: dozens of actor starts at the live cap would make its chats wait in line.
        rows = await connection.fetch(
            "UPDATE conversations SET answer_due_at = NULL WHERE cliente_id = ANY($1::int[]) "
            "RETURNING session_id",
            cliente_ids,
        )
    finally:
        await connection.close()
    names = [r["session_id"] for r in rows] + [get_collection_name(c) for c in cliente_ids]
    for name in names:
        kill_actor(name, namespace=settings.ray_namespace)


@pytest.fixture
async def make_account(api: httpx.AsyncClient) -> AsyncIterator[MakeAccount]:
    """Factory: a tenant API key (made by the operator) for a cliente, with a client using it."""
    made: list[Account] = []

    async def make(cliente_id: int) -> Account:
        account = await account_for(api, cliente_id)
        made.append(account)
        return account

    yield make
    for account in made:
        await account.client.aclose()


@pytest.fixture
def db_counts(database_url: str) -> Callable[[int], Awaitable[dict[str, int]]]:
    """Row counts a webhook may write, to prove a rejected post wrote nothing: idempotency keys
    and conversations anywhere, messages and turns of one cliente (other tests' conversations
    may still be answering in the background)."""

    async def counts(cliente_id: int) -> dict[str, int]:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            result = {
                table: await connection.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("processed_webhooks", "conversations")
            }
            for table in ("messages", "turns"):
                result[table] = await connection.fetchval(
                    f"SELECT count(*) FROM {table} WHERE cliente_id = $1", cliente_id
                )
            return result
        finally:
            await connection.close()

    return counts


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def evolution_faults(fake_evolution: FakeEvolution) -> Iterator[FakeEvolution]:
    """The session's fake Evolution for a test that injects faults: all cleared afterwards, so
    no other test meets them."""
    yield fake_evolution
    fake_evolution.clear_faults()
    fake_evolution.fail_status = None
