"""Rate limits through the real app and PostgreSQL: 429 with `Retry-After` per API key on /v1,
and per source address on failed authentication (/admin, /v1, the webhook), shared by replicas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from engine.config import IngressMode, Settings
from tests.conftest import ADMIN_TOKEN
from tests.support.inprocess_app import replica

pytestmark = pytest.mark.integration

FAILURES_BURST = 3
API_BURST = 4
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}
# An operator route that touches only PostgreSQL: past authentication it answers 404.
ADMIN_PATH = "/admin/clientes/2147483000"
PAST_AUTH = 404


@pytest.fixture
def limited(settings: Settings, own_database_url: str) -> Settings:
    """The test stack's settings on the module's own database, with small limits that do not
    refill during a test, behind a proxy that names the client in X-Forwarded-For."""
    return settings.model_copy(
        update={
            "database_url": own_database_url,
            "api_rate_per_min": 0.5,
            "api_rate_burst": API_BURST,
            "auth_failures_per_min": 0.5,
            "auth_failures_burst": FAILURES_BURST,
            "forwarded_ip_header": "X-Forwarded-For",
        }
    )


@pytest.fixture
async def app(limited: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with replica(limited) as http:
        yield http


def _from(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    # The client may send its own X-Forwarded-For; the proxy appends the real address last.
    return {**(headers or {}), "X-Forwarded-For": f"6.6.6.6, {address}"}


def _address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def _api_key(app: httpx.AsyncClient) -> str:
    made = await app.post(
        "/admin/clientes", json={"nome": f"Loja {uuid.uuid4().hex[:6]}"}, headers=OPERATOR
    )
    assert made.status_code == 201, made.text
    key = await app.post(
        f"/admin/clientes/{made.json()['id']}/api-keys", json={"name": "t"}, headers=OPERATOR
    )
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


async def test_an_api_key_over_its_rate_gets_429_with_retry_after_and_others_are_served(
    app: httpx.AsyncClient,
) -> None:
    key, other = await _api_key(app), await _api_key(app)
    mine = {"Authorization": f"Bearer {key}"}

    answers = [await app.get("/v1/me", headers=mine) for _ in range(API_BURST + 2)]
    theirs = await app.get("/v1/me", headers={"X-API-Key": other})

    assert [a.status_code for a in answers] == [200] * API_BURST + [429, 429]
    refused = answers[-1]
    assert 60 <= int(refused.headers["Retry-After"]) <= 120  # one request every 120 s
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert "API_RATE_PER_MIN" in refused.json()["error"]["message"]
    assert theirs.status_code == 200


async def test_a_source_failing_operator_auth_is_refused_even_with_the_right_token(
    app: httpx.AsyncClient,
) -> None:
    attacker, operator = _address(), _address()

    guesses = [
        (await app.get(ADMIN_PATH, headers=_from(attacker, WRONG))).status_code
        for _ in range(FAILURES_BURST + 1)
    ]
    right_token = await app.get(ADMIN_PATH, headers=_from(attacker, OPERATOR))
    elsewhere = await app.get(ADMIN_PATH, headers=_from(operator, OPERATOR))

    assert guesses == [401] * FAILURES_BURST + [429]
    assert right_token.status_code == 429  # refused before the token is even compared
    assert int(right_token.headers["Retry-After"]) >= 1
    assert elsewhere.status_code == PAST_AUTH


async def test_one_failure_count_per_source_across_admin_v1_and_the_webhook(
    app: httpx.AsyncClient,
) -> None:
    source = _address()

    admin = await app.get(ADMIN_PATH, headers=_from(source, WRONG))
    tenant = await app.get("/v1/me", headers=_from(source, {"X-API-Key": "cvk_wrong"}))
    webhook = await app.post(
        "/webhooks/evolution",
        json={"event": "messages.upsert"},
        headers=_from(source, {"X-Conversa-Secret": "wrong"}),
    )
    over = await app.post(
        "/webhooks/evolution",
        json={"event": "messages.upsert"},
        headers=_from(source, {"X-Conversa-Secret": "wrong"}),
    )

    assert [r.status_code for r in (admin, tenant, webhook, over)] == [401, 401, 401, 429]
    assert "AUTH_FAILURES_PER_MIN" in over.json()["detail"]


async def test_replicas_share_the_failure_count(limited: Settings) -> None:
    """Failures spread over replicas (each its own pool) count once: the replica that sees the
    source go over the limit never saw it fail before."""
    source = _address()
    async with AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(replica(limited)) for _ in range(FAILURES_BURST + 1)
        ]
        answers = [
            (await one.get(ADMIN_PATH, headers=_from(source, WRONG))).status_code
            for one in replicas
        ]

    assert answers == [401] * FAILURES_BURST + [429]


async def test_without_a_forwarding_header_direct_mode_limits_the_peer_address(
    limited: Settings,
) -> None:
    direct = limited.model_copy(
        update={"forwarded_ip_header": None, "ingress_mode": IngressMode.DIRECT}
    )
    async with replica(direct, client=(_address(), 40000)) as http:
        answers = [
            (await http.get(ADMIN_PATH, headers=WRONG)).status_code
            for _ in range(FAILURES_BURST + 1)
        ]

    assert answers == [401] * FAILURES_BURST + [429]


async def test_in_haproxy_mode_without_a_forwarding_header_no_peer_is_blamed(
    limited: Settings,
) -> None:
    """Every peer of a replica is HAProxy: limiting it would lock every client out."""
    haproxy = limited.model_copy(
        update={"forwarded_ip_header": None, "ingress_mode": IngressMode.HAPROXY}
    )
    async with replica(haproxy) as http:
        answers = [
            (await http.get(ADMIN_PATH, headers=WRONG)).status_code
            for _ in range(FAILURES_BURST + 2)
        ]
        served = await http.get(ADMIN_PATH, headers=OPERATOR)

    assert set(answers) == {401} and served.status_code == PAST_AUTH


async def test_a_tenant_cannot_raise_its_own_chat_limits(app: httpx.AsyncClient) -> None:
    key = {"Authorization": f"Bearer {await _api_key(app)}"}

    raised = await app.patch("/v1/me", json={"llm_daily_tokens": 0}, headers=key)
    me = await app.get("/v1/me", headers=key)

    assert raised.status_code == 422
    assert raised.json()["error"]["fields"][0]["field"].endswith("llm_daily_tokens")
    assert me.json()["llm_daily_tokens"] is None


async def test_console_sign_in_guesses_count_against_the_source(app: httpx.AsyncClient) -> None:
    source = _address()

    guesses = [
        (
            await app.post("/console/entrar", data={"key": f"cvk_guess{i}"}, headers=_from(source))
        ).status_code
        for i in range(FAILURES_BURST + 1)
    ]
    blocked = await app.post("/console/entrar", data={"key": ADMIN_TOKEN}, headers=_from(source))

    assert guesses == [401] * FAILURES_BURST + [429]
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
