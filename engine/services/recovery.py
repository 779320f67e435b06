"""Recovery: re-activate conversations whose burst is past its durable deadline.

Timers die with actors, deadlines do not. Every accepted burst has `answer_due_at`; whatever left
it unanswered (an actor crashed or was killed, its node was lost, a process died mid-reply), the
conversation is handed its unanswered messages again, which re-creates its actor.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.actors.conversation import ConversationConfig
from engine.actors.router import ConversationRouter
from engine.adapters import metrics
from engine.config import Settings
from engine.core.turns import Delivery
from engine.db import conversations as conversations_db
from engine.db import operations as operations_db
from engine.db.session import create_engine, session_factory
from engine.services.knowledge import resume_stalled_ingestion
from engine.wiring import default_behaviour

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, settings: Settings, config: ConversationConfig):
        assert settings.database_url
        self._settings = settings
        self._engine = create_engine(
            settings.database_url,
            pool_size=2,
            statement_timeout_s=settings.db_statement_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self._sessions = session_factory(self._engine)
        self._config = config
        self._router = ConversationRouter(config)
        self._defaults = default_behaviour(settings)

    async def run_once(self) -> int:
        """Re-activate every conversation past its deadline; returns how many."""
        async with self._sessions() as session:
            overdue = await conversations_db.overdue_conversations(
                session, grace_s=self._settings.recovery_grace_s
            )
            await session.commit()
            metrics.sends_owed(await operations_db.sends_owed(session))
        # Concurrently: one conversation whose actor sits on a dying node must not hold up the rest.
        await asyncio.gather(*(self._reactivate(c) for c in overdue))
        metrics.recoveries(len(overdue))
        try:
            await resume_stalled_ingestion(
                self._sessions, self._config.retriever, quiet_s=self._settings.ingest_stall_s
            )
        except Exception:  # never in the way of conversations; the next pass tries again
            log.exception("stalled-ingestion pass failed")
        return len(overdue)

    async def _reactivate(self, conversation: conversations_db.Overdue) -> None:
        context: dict[str, Any] = {
            "cliente_id": conversation.cliente_id,
            "chat": conversation.chat_jid,
        }
        policy = self._defaults.overridden_by(conversation.overrides).debounce
        log.warning(
            "re-activating a conversation past its deadline",
            extra={**context, "pending": len(conversation.pending)},
        )
        for message in conversation.pending:
            delivery = Delivery(
                cliente_id=conversation.cliente_id,
                conversation_id=conversation.conversation_id,
                session_id=conversation.session_id,
                chat_jid=conversation.chat_jid,
                message=message,
                policy=policy,
            )
            try:
                # The router bounds each attempt (ACTOR_CALL_TIMEOUT_S); this bounds them all.
                await asyncio.wait_for(
                    self._router.deliver(delivery), 2 * self._settings.actor_call_timeout_s
                )
            except Exception:  # its deadline was pushed back: the next pass tries again
                log.exception("re-activation failed", extra=context)
                return
