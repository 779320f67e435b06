"""`ReplyWorker`: the shared actors that do a conversation's I/O.

A small fixed pool (`REPLY_WORKERS`, named `reply_worker_{i}`) holds the PostgreSQL pool, the chat
model client and the Evolution client, so that hundreds of live conversation actors need neither
a database connection each (PostgreSQL allows ~100) nor ~40 MB of client libraries each.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import ray

from engine.config import Settings
from engine.db import conversations as conversations_db
from engine.db.models import MessageStatus
from engine.db.session import create_engine, session_factory
from engine.debounce import PendingMessage
from engine.errors import SendFailed
from engine.evolution import EvolutionClient
from engine.llm import ChatModel
from engine.logs import configure_logging
from engine.naming import reply_worker_name
from engine.prompt import Passage, Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnResult:
    reply_text: str
    reply_kind: str
    delivered: bool


@ray.remote(num_cpus=0)
class ReplyWorker:
    def __init__(self, settings: Settings):
        configure_logging(settings.log_level)
        assert settings.database_url, "the runtime resolves DATABASE_URL before starting workers"
        self._settings = settings
        self._engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        self._sessions = session_factory(self._engine)
        self._model = ChatModel(settings)
        self._evolution: EvolutionClient | None = None
        if settings.evolution_url:
            key = (
                settings.evolution_api_key.get_secret_value()
                if settings.evolution_api_key
                else None
            )
            self._evolution = EvolutionClient(
                base_url=settings.evolution_url, api_key=key, timeout_s=settings.evolution_timeout_s
            )

    async def restore(
        self, conversation_id: int, history_turns: int
    ) -> tuple[list[PendingMessage], list[Turn]]:
        async with self._sessions() as session:
            pending = await conversations_db.load_pending(session, conversation_id)
            memory = await conversations_db.load_memory(session, conversation_id, history_turns)
        return pending, memory

    async def begin_turn(self, conversation_id: int) -> conversations_db.TurnStart | None:
        async with self._sessions() as session:
            start = await conversations_db.begin_turn(session, conversation_id)
            await session.commit()
        return start

    async def answer_turn(
        self,
        start: conversations_db.TurnStart,
        *,
        conversation_id: int,
        passages: list[Passage],
        memory: list[Turn],
    ) -> TurnResult:
        """Produce the reply, send it, and record both; never raises for model or send errors."""
        context = {"cliente_id": start.cliente_id, "chat": start.chat_jid, "turn_id": start.turn_id}
        reply = await self._model.reply(
            persona=start.system_prompt,
            passages=passages,
            memory=memory,
            user_text=start.user_text,
            log_context=context,
        )
        outbound = await self._send(start, reply.text, context)
        async with self._sessions() as session:
            await conversations_db.complete_turn(
                session,
                start,
                conversation_id=conversation_id,
                reply_text=reply.text,
                reply_kind=reply.kind,
                sources=[asdict(p) for p in passages],
                outbound=[outbound],
            )
            await session.commit()
        log.info(
            "turn answered",
            extra={
                **context,
                "reply_kind": reply.kind,
                "passages": len(passages),
                "messages": len(start.message_ids),
                "send_status": outbound.status.value,
            },
        )
        return TurnResult(reply.text, reply.kind, outbound.status is not MessageStatus.FALHOU)

    async def _send(
        self, start: conversations_db.TurnStart, text: str, context: dict[str, Any]
    ) -> conversations_db.Outbound:
        if self._evolution is None or not start.instance_id:
            return conversations_db.Outbound(text, MessageStatus.REGISTRADA)
        try:
            sent = await self._evolution.send_text(
                instance=start.instance_id,
                number=start.chat_jid,
                text=text,
                api_key=start.instance_api_key,
            )
        except SendFailed as e:
            log.error("send failed", extra={**context, "error": str(e), "status": e.status})
            return conversations_db.Outbound(text, MessageStatus.FALHOU, error=str(e))
        return conversations_db.Outbound(text, MessageStatus.ENVIADA, sent.wa_message_id)

    async def ping(self) -> bool:
        return True


def start_reply_workers(settings: Settings) -> list[ray.actor.ActorHandle]:
    """Get or create the pool; the returned handles are already usable."""
    handles = [
        ReplyWorker.options(  # type: ignore[attr-defined]
            name=reply_worker_name(i),
            namespace=settings.ray_namespace,
            lifetime="detached",
            get_if_exists=True,
        ).remote(settings)
        for i in range(settings.reply_workers)
    ]
    ray.get([h.ping.remote() for h in handles])
    return handles
