"""A chat's first messages arriving at once, on a database of its own: each one is accepted (the
webhook answers 200, not 500) and stored, on the ack path's one statement and on the general
path alike. The conversation's upsert names one unique constraint (`cliente_id, chat_jid`); while
`session_id` had its own (dropped by migration 015), the loser of the race could hit that one and
fail the webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine.config import Settings
from engine.core.inbound import InboundOutcome
from engine.db.ack import AckWriter
from engine.db.raw import RawPool
from engine.db.session import asyncpg_dsn
from engine.services.inbox import EvolutionInbox
from engine.wiring import default_behaviour
from tests.support import evolution_payloads as wa
from tests.support.pipeline import InProcessConversa

pytestmark = pytest.mark.integration

CHATS = 40
AT_ONCE = 12  # a customer's first messages, all in flight together


@pytest.fixture
async def conversa(settings: Settings, own_database_url: str) -> AsyncIterator[InProcessConversa]:
    conversa = InProcessConversa(
        settings.model_copy(update={"database_url": own_database_url, "db_pool_size": AT_ONCE})
    )
    yield conversa
    await conversa.close()


@pytest.mark.parametrize("path", ["one statement", "general"])
async def test_a_new_chats_first_messages_at_once_are_all_accepted(
    conversa: InProcessConversa, settings: Settings, own_database_url: str, path: str
) -> None:
    ack = None
    if path == "one statement":
        ack = AckWriter(
            RawPool(
                asyncpg_dsn(own_database_url),
                pool_size=AT_ONCE,
                statement_timeout_s=settings.db_statement_timeout_s,
                connect_timeout_s=settings.db_connect_timeout_s,
            )
        )
    inbox = EvolutionInbox(conversa.sessions, defaults=default_behaviour(settings), ack=ack)
    shop = await conversa.make_shop()
    try:
        for _ in range(CHATS):
            chat = wa.new_chat()
            outcomes = await asyncio.gather(
                *(
                    inbox.handle(
                        secret=shop.secret,
                        read_body=wa.body_reader(wa.text(shop.instance, chat, f"oi {i}")),
                    )
                    for i in range(AT_ONCE)
                ),
                return_exceptions=True,
            )
            failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
            assert not failed, failed
            assert {o.status for o in outcomes} == {InboundOutcome.ACCEPTED}  # type: ignore[union-attr]
            [conversation] = {o.delivery.conversation_id for o in outcomes}  # type: ignore[union-attr]
            inbound = [m for m in await conversa.messages(conversation) if m.direction == "inbound"]
            assert sorted(m.text for m in inbound) == sorted(f"oi {i}" for i in range(AT_ONCE))
    finally:
        if ack is not None:
            await ack.close()
