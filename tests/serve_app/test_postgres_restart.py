"""PostgreSQL restarts under a running Conversa (a private server, stopped and started here):
the webhook answers 503 while it is down, so Evolution retries, and works again by itself; a
reply owed meanwhile is delivered once it is back, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from engine.config import Settings
from engine.core.statuses import MessageStatus, TurnStatus
from engine.db import migrate
from engine.errors import DatabaseUnavailable
from serve_app.app import build_app
from serve_app.context import IngressContext
from tests.conftest import ADMIN_TOKEN
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.http_server import ServerThread
from tests.support.pipeline import InProcessConversa
from tests.support.private_postgres import PrivatePostgres
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_settings(settings: Settings, private_postgres: PrivatePostgres) -> Settings:
    migrate.upgrade(private_postgres.url)
    return settings.model_copy(
        update={
            "database_url": private_postgres.url,
            "db_statement_timeout_s": 2.0,
            "db_connect_timeout_s": 2.0,
            "typing_presence": False,
            "send_backoff_base_s": 0.2,
            "send_backoff_max_s": 0.5,
            "send_max_attempts": 100,
            "delivery_poll_s": 0.2,
            "evolution_breaker_failures": 1000,
        }
    )


@pytest.fixture(scope="module")
def ingress(private_settings: Settings) -> Iterator[str]:
    """The ingress app (webhooks and operator API) over the private PostgreSQL, on a real port.
    Its clientes are not ATIVO, so their messages are recorded without a hand-off to an actor
    (there is no Ray here): what is under test is the webhook's database path."""
    app = build_app()
    app.state.ctx = IngressContext(private_settings)
    server = ServerThread(app).start()
    yield server.url
    server.stop()


@pytest.fixture
async def api(ingress: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=ingress, headers=headers, timeout=30) as client:
        yield client


async def _post(api: httpx.AsyncClient, secret: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/webhooks/evolution", json=body, headers={"X-Conversa-Secret": secret})


async def test_the_webhook_answers_503_while_postgresql_is_down_and_works_again_by_itself(
    api: httpx.AsyncClient, private_postgres: PrivatePostgres
) -> None:
    response = await api.post("/admin/clientes", json={"nome": "Loja", "status": "SUSPENSO"})
    cliente_id = response.json()["id"]
    secret, instance = "segredo-da-loja-0123456789", "loja-restart"
    response = await api.post(
        f"/admin/clientes/{cliente_id}/instances",
        json={"instance_id": instance, "webhook_secret": secret},
    )
    assert response.status_code == 201, response.text
    chat = wa.new_chat()
    before, during, after = (wa.text(instance, chat, f"mensagem {i}") for i in range(3))
    assert (await _post(api, secret, before)).status_code == 200

    await asyncio.to_thread(private_postgres.stop)
    try:
        refused = await _post(api, secret, during)
        assert refused.status_code == 503  # Evolution retries a 5xx; it stops on a 4xx
        assert "PostgreSQL" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5"
        assert (await api.get(f"/admin/clientes/{cliente_id}")).status_code == 503
    finally:
        await asyncio.to_thread(private_postgres.start)

    async def retried() -> int:  # Evolution's retry of the refused post
        return (await _post(api, secret, during)).status_code == 200

    await eventually(retried, timeout_s=10, interval_s=0.2)
    assert (await _post(api, secret, during)).json()["status"] == "duplicate"
    assert (await _post(api, secret, after)).status_code == 200
    [conversation] = (await api.get(f"/admin/clientes/{cliente_id}/conversations")).json()
    messages = (
        await api.get(f"/admin/clientes/{cliente_id}/conversations/{conversation['id']}/messages")
    ).json()
    assert [m["text"] for m in messages] == ["mensagem 0", "mensagem 1", "mensagem 2"]


async def test_a_reply_owed_across_a_postgresql_restart_is_delivered_once(
    private_settings: Settings, private_postgres: PrivatePostgres, evolution_faults: FakeEvolution
) -> None:
    worker = InProcessConversa(private_settings)  # what a reply worker runs
    try:
        shop = await worker.make_shop()
        chat = wa.new_chat()
        evolution_faults.fail("sendText", number=chat)  # Evolution down too, to start with
        conversation = await worker.receive(shop, chat, "Vocês têm loja física?")
        await worker.turn(conversation)
        worker.start_delivery_loop()

        await asyncio.to_thread(private_postgres.restart, down_s=2.0)
        evolution_faults.clear_faults()
        [sent] = await eventually(lambda: _sent(evolution_faults, chat), timeout_s=20)
        await asyncio.sleep(1.0)
        assert len(evolution_faults.sent_to(chat)) == 1

        async def answered() -> bool:
            turns = await worker.turns(conversation)
            return [t.status for t in turns] == [TurnStatus.RESPONDIDA]

        await eventually(answered)
        messages = await worker.messages(conversation)
        assert [(m.direction, m.status) for m in messages] == [
            ("inbound", MessageStatus.RESPONDIDA),
            ("outbound", MessageStatus.ENVIADA),
        ]
        assert messages[1].wa_message_id == sent.key_id
    finally:
        await worker.close()


async def _sent(fake: FakeEvolution, chat: str) -> list[Any] | None:
    return fake.sent_to(chat) or None


async def test_turns_after_a_postgresql_restart_fail_at_most_once_then_answer(
    private_settings: Settings, private_postgres: PrivatePostgres, fake_evolution: FakeEvolution
) -> None:
    """A reply worker's turn statements run on an asyncpg pool of their own, beside its
    SQLAlchemy pool: after a restart both hold dead connections, and turns work again by
    themselves (a failure is `DatabaseUnavailable`, never a driver error). A reply that went
    out is not reported as a failed turn because the other pool found a dead connection while
    looking for anything else due."""
    worker = InProcessConversa(private_settings)  # what a reply worker runs
    try:
        shop = await worker.make_shop()
        chats = [wa.new_chat() for _ in range(4)]
        conversations = [await worker.receive(shop, chat, "Olá") for chat in chats]
        await asyncio.gather(*(worker.turn(c) for c in conversations))  # several connections

        await asyncio.to_thread(private_postgres.restart, down_s=1.0)
        for chat in chats:
            await _receive_retrying(worker, shop, chat, "Vocês abrem amanhã?")
        failures = 0
        for conversation in conversations:
            for _ in range(5):
                try:
                    result = await worker.turn(conversation)
                    break
                except DatabaseUnavailable:
                    failures += 1
            assert result is not None and result.delivered
        assert failures <= 1
        assert [len(fake_evolution.sent_to(chat)) for chat in chats] == [2] * len(chats)
    finally:
        await worker.close()


async def _receive_retrying(worker: InProcessConversa, shop: Any, chat: str, text: str) -> None:
    """The webhook's side (not under test here): Evolution retries a 503."""
    for attempt in range(5):
        try:
            await worker.receive(shop, chat, text)
            return
        except DatabaseUnavailable:
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("the webhook never worked again")
