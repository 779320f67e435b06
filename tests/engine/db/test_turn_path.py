"""A turn's statements on raw asyncpg (engine/db/turn_path.py), in-process on a database of its
own: what the claim sees when it had to wait for the chat, a reply recorded where there is no
Evolution to send it, and a part sent under a key another row already holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from engine.config import Settings
from engine.core.statuses import MessageStatus, TurnStatus
from engine.db.raw import RawPool
from engine.db.turn_path import TurnStatements
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.pipeline import InProcessConversa
from tests.support.postgres import asyncpg_dsn

pytestmark = pytest.mark.integration

POOL = {"pool_size": 1, "statement_timeout_s": 5.0, "connect_timeout_s": 5.0}


@pytest.fixture
async def conversa(settings: Settings, own_database_url: str) -> AsyncIterator[InProcessConversa]:
    here = InProcessConversa(
        settings.model_copy(update={"database_url": own_database_url, "typing_presence": False})
    )
    yield here
    await here.close()


async def test_a_message_accepted_while_the_claim_waits_for_the_chat_is_in_the_burst(
    conversa: InProcessConversa, own_database_url: str
) -> None:
    """The webhook that accepts a message holds the conversation's row while it writes it. A
    claim that waited for that row must read the burst after it got the row, not before: the
    message is in this turn, not left for a later one."""
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    conversation = await conversa.receive(shop, chat, "Qual o horário?")
    ack = await asyncpg.connect(asyncpg_dsn(own_database_url))
    try:
        writing = ack.transaction()
        await writing.start()
        await ack.execute(
            "UPDATE conversations SET last_message_at = now() WHERE id = $1", conversation
        )
        await ack.execute(
            """INSERT INTO messages (conversation_id, cliente_id, direction, author, status,
                                     instance_id, wa_message_id, message_type, text)
               VALUES ($1, $2, 'inbound', 'customer', 'RECEBIDA', $3, $4, 'conversation',
                       'E aos domingos?')""",
            conversation,
            shop.id,
            shop.instance,
            wa.new_key_id(),
        )
        claiming = asyncio.create_task(conversa.begin(conversation))
        await asyncio.sleep(0.5)
        assert not claiming.done()  # it waits for the chat's row
        await writing.commit()
        plan = await asyncio.wait_for(claiming, timeout=10)
    finally:
        await ack.close()

    assert plan is not None
    assert "Qual o horário?" in plan.user_text and "E aos domingos?" in plan.user_text
    messages = await conversa.messages(conversation)
    assert {m.turn_id for m in messages} == {plan.turn_id}


async def test_a_reply_recorded_without_evolution_answers_the_turn_at_once(
    settings: Settings, own_database_url: str
) -> None:
    """With no Evolution configured a reply is recorded, not owed: the turn and the customer's
    messages are answered in the same write."""
    conversa = InProcessConversa(
        settings.model_copy(update={"database_url": own_database_url, "evolution_url": None})
    )
    try:
        shop = await conversa.make_shop()
        chat = wa.new_chat()
        conversation = await conversa.receive(shop, chat, "Vocês entregam?")
        result = await conversa.turn(conversation)
        assert result is not None and result.reply_text

        [turn] = await conversa.turns(conversation)
        messages = await conversa.messages(conversation)
    finally:
        await conversa.close()
    assert turn.status is TurnStatus.RESPONDIDA and turn.answered_at is not None
    assert turn.lease_owner is None
    assert [(m.direction, m.status, m.next_attempt_at) for m in messages] == [
        ("inbound", MessageStatus.RESPONDIDA, None),
        ("outbound", MessageStatus.REGISTRADA, None),
    ]
    assert messages[1].text == result.reply_text


async def test_a_part_sent_under_a_key_already_stored_elsewhere_is_still_delivered(
    conversa: InProcessConversa, evolution_faults: FakeEvolution, own_database_url: str
) -> None:
    """Evolution took the part, but its key is already on another row (an echo recorded on its
    own): the part is delivered all the same, and its turn and the customer's message answered."""
    shop = await conversa.make_shop()
    chat = wa.new_chat()
    evolution_faults.fail("sendText", number=chat)
    conversation = await conversa.receive(shop, chat, "Tem estacionamento?")
    await conversa.turn(conversation)  # the reply is owed: Evolution failed
    _, part = await conversa.messages(conversation)
    key = wa.new_key_id()
    echo = await asyncpg.connect(asyncpg_dsn(own_database_url))
    try:
        await echo.execute(
            """INSERT INTO messages (conversation_id, cliente_id, direction, author, status,
                                     instance_id, wa_message_id, text)
               VALUES ($1, $2, 'outbound', 'human', 'ENVIADA', $3, $4, 'eco')""",
            conversation,
            shop.id,
            shop.instance,
            key,
        )
    finally:
        await echo.close()
    statements = TurnStatements(RawPool(asyncpg_dsn(own_database_url), **POOL))
    try:
        await statements.record_sent(part.id, part.turn_id or 0, wa_message_id=key)
    finally:
        await statements.close()

    inbound, part, _ = await conversa.messages(conversation)
    [turn] = await conversa.turns(conversation)
    assert (part.status, part.wa_message_id, part.next_attempt_at) == (
        MessageStatus.ENVIADA,
        None,
        None,
    )
    assert turn.status is TurnStatus.RESPONDIDA and turn.answered_at is not None
    assert inbound.status is MessageStatus.RESPONDIDA
