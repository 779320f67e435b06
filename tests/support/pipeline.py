"""Conversa's inbox and reply pipeline in the test's own process, on a database of the test's
choosing: real PostgreSQL, the fake Evolution and OpenAI servers over HTTP, the same code the
ingress and the reply workers run — without Ray, whose actors are thin shells around it. For
tests that need their own settings (attempt caps, tiny leases) or their own PostgreSQL (one they
restart), which the session's running stack cannot give them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from engine.config import Settings
from engine.core.turns import TurnPlan, TurnResult
from engine.db.models import Message, Turn
from engine.db.session import create_engine, session_factory
from engine.errors import DatabaseUnavailable
from engine.services.inbox import EvolutionInbox
from engine.services.reply_pipeline import ReplyPipeline
from engine.wiring import default_behaviour
from tests.support import evolution_payloads as wa
from tests.support.scenario import ScenarioCliente, make_cliente


class InProcessConversa:
    def __init__(self, settings: Settings, *, owner: str = "test_worker"):
        assert settings.database_url
        self.settings = settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=2,
            statement_timeout_s=settings.db_statement_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self.sessions = session_factory(self.engine)
        self.inbox = EvolutionInbox(self.sessions, defaults=default_behaviour(settings))
        self.pipeline = ReplyPipeline(settings, owner=owner)
        self._loop: asyncio.Task[None] | None = None

    async def make_shop(self, **cliente_fields: Any) -> ScenarioCliente:
        return await make_cliente(
            self.sessions,
            self.settings,
            nome=f"Loja {uuid.uuid4().hex[:8]}",
            instance_prefix="loja",
            **cliente_fields,
        )

    async def receive(self, shop: ScenarioCliente, chat: str, text: str) -> int:
        """A customer's message through the webhook's inbox; returns its conversation id."""
        outcome = await self.inbox.handle(
            secret=shop.secret, read_body=wa.body_reader(wa.text(shop.instance, chat, text))
        )
        assert outcome.delivery is not None, outcome
        return outcome.delivery.conversation_id

    async def begin(self, conversation_id: int) -> TurnPlan | None:
        return await self.pipeline.begin_turn(conversation_id)

    async def answer(self, plan: TurnPlan) -> TurnResult:
        return await self.pipeline.answer_turn(plan, passages=[], memory=[])

    async def turn(self, conversation_id: int) -> TurnResult | None:
        """One whole turn as a conversation actor runs it (without passages)."""
        plan = await self.begin(conversation_id)
        return None if plan is None else await self.answer(plan)

    def start_delivery_loop(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self.pipeline.deliverer.run())

    async def turns(self, conversation_id: int) -> list[Turn]:
        query = select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.id)
        return await self._read(query)

    async def messages(self, conversation_id: int) -> list[Message]:
        query = (
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
        return await self._read(query)

    async def _read(self, query: Any) -> list[Any]:
        """The test's own reads: a pooled connection dropped by a restart fails once."""
        for attempt in (1, 2):
            try:
                async with self.sessions() as session:
                    return list(await session.scalars(query))
            except DatabaseUnavailable:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        await self.pipeline.close()
        await self.engine.dispose()
