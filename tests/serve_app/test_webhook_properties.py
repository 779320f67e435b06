"""Properties of `POST /webhooks/evolution` on the running stack, for any body (hypothesis).

For any JSON value, any nesting and any strings — and any bytes at all — the answer is 2xx or
4xx, never 5xx; and a post that is refused writes no row (idempotency keys, conversations,
messages, lid pairs, the instance's state). Examples run through HAProxy into a Serve replica,
exactly as Evolution's posts do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.statuses import Author
from tests.support import webhook_strategies as fuzz
from tests.support.postgres import asyncpg_dsn
from tests.support.tenants import MakeTenant, TenantHandle

pytestmark = pytest.mark.integration

ROUTE_CASES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Rows a webhook can write, for one cliente (its actors' replies, author bot, are not counted:
# they land whenever a burst is answered, a refused post in between or not).
SNAPSHOT = f"""
SELECT
  (SELECT count(*) FROM processed_webhooks WHERE source = 'evolution:' || $2) AS keys,
  (SELECT count(*) FROM conversations WHERE cliente_id = $1) AS conversations,
  (SELECT count(*) FROM messages WHERE cliente_id = $1 AND author <> '{Author.BOT}') AS messages,
  (SELECT count(*) FROM lid_pairs WHERE cliente_id = $1) AS lid_pairs,
  (SELECT row(status, numero, qr_code, updated_at)::text FROM instancias_whatsapp
    WHERE instance_id = $2) AS instance
"""


class Poster:
    """Posts bodies for one tenant and checks the property on each answer."""

    def __init__(self, tenant: TenantHandle, connection: asyncpg.Connection):
        self.tenant = tenant
        self.connection = connection
        self.statuses: dict[int, int] = {}

    async def snapshot(self) -> dict[str, Any]:
        row = await self.connection.fetchrow(SNAPSHOT, self.tenant.id, self.tenant.instance)
        return dict(row)

    async def check(self, body: bytes, *, path: str = "/webhooks/evolution") -> httpx.Response:
        before = await self.snapshot()
        response = await self.tenant.api.post(
            path,
            content=body,
            headers={"X-Conversa-Secret": self.tenant.secret, "Content-Type": "application/json"},
        )
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        assert 200 <= response.status_code < 500, (response.status_code, response.text, body[:500])
        if response.status_code >= 400:
            assert response.json()["detail"], response.text
            assert await self.snapshot() == before, body[:500]
        return response


@pytest.fixture
async def poster_for(make_tenant: MakeTenant, database_url: str) -> AsyncIterator[Any]:
    """`await poster_for(**cliente_fields)`: the test's one tenant, made on the first example
    (hypothesis runs every example of a test inside one use of this fixture)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    made: list[Poster] = []

    async def poster(**cliente_fields: Any) -> Poster:
        if not made:
            made.append(Poster(await make_tenant(**cliente_fields), connection))
        return made[0]

    yield poster
    await connection.close()
    for one in made:
        print(f"\nwebhook answers for cliente {one.tenant.id}: {one.statuses}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN/Infinity and lone surrogates (as escapes) included


@ROUTE_CASES
@given(value=fuzz.any_json)
async def test_any_json_body_is_answered_2xx_or_4xx_and_a_refusal_writes_nothing(
    poster_for: Any, value: Any
) -> None:
    poster = await poster_for(status="SUSPENSO")
    await poster.check(_dumps(value))


@ROUTE_CASES
@given(body=st.one_of(st.binary(max_size=3000), st.integers(1, 120_000).map(lambda n: b"[" * n)))
async def test_any_bytes_are_answered_2xx_or_4xx(poster_for: Any, body: bytes) -> None:
    poster = await poster_for(status="SUSPENSO")
    await poster.check(body)


@ROUTE_CASES
@given(data=st.data())
async def test_any_evolution_shaped_post_is_answered_2xx_or_4xx(
    poster_for: Any, data: st.DataObject
) -> None:
    """Every field of the envelope and of `messages.upsert` / instance events may be anything;
    the byEvents path form too. The cliente is SUSPENSO: messages are recorded, not answered."""
    poster = await poster_for(status="SUSPENSO")
    payload = data.draw(fuzz.envelopes(instance=poster.tenant.instance))
    path = data.draw(
        fuzz.weighted(
            (4, st.just("/webhooks/evolution")),
            (1, st.just("/webhooks/evolution/messages-upsert")),
            (1, st.text(max_size=20).map(lambda s: f"/webhooks/evolution/{quote(s, safe='')}x")),
        )
    )
    await poster.check(_dumps(payload), path=path)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzzed_messages_for_an_active_cliente_are_answered_2xx_or_4xx(
    poster_for: Any, data: st.DataObject
) -> None:
    """The accept path (deadline, hand-off, lid/phone unification) too: an ATIVO cliente whose
    chats are one contact's lid and phone (so at most two actors, answering in the background:
    their replies are not rows a webhook writes)."""
    poster = await poster_for(status="ATIVO", debounce_s=0.3, max_wait_s=1.0)
    chats = st.sampled_from([fuzz.PHONE, fuzz.LID])
    payload = data.draw(fuzz.envelopes(instance=poster.tenant.instance, chats=chats))
    await poster.check(_dumps(payload))
