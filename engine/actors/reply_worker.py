"""`ReplyWorker`: the shared actors that do a conversation's I/O (PostgreSQL, model, Evolution).

A small fixed pool (`REPLY_WORKERS`, named `reply_worker_{i}`) holds the PostgreSQL pool, the chat
model client and the Evolution client, so that hundreds of live conversation actors need neither
a database connection each (PostgreSQL allows ~100) nor ~30 MB of client libraries each.

Each worker also runs a delivery loop: every DELIVERY_POLL_S it sends the owed reply parts that
are due (`engine.services.delivery`), so a reply that Evolution could not take is retried from
PostgreSQL by whichever worker is alive, after any restart.

This module is only the actor's shell and must stay cheap to import: every conversation actor
imports it to build a handle. The work is in `engine.services.reply_pipeline`, imported by the
actor only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

import ray

from engine.core.naming import reply_worker_name

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.core.debounce import BurstMessage
    from engine.core.prompt import Exchange, Passage
    from engine.core.turns import TurnPlan, TurnResult


@ray.remote(num_cpus=0, max_restarts=-1)  # stateless: restarted on another node if its node dies
class ReplyWorker:
    def __init__(self, settings: Settings, index: int = 0):
        from engine.adapters import ray_secrets
        from engine.services.reply_pipeline import ReplyPipeline

        settings = ray_secrets.restored(settings)  # given withheld
        self._pipeline = ReplyPipeline(settings, owner=reply_worker_name(index))
        self._delivery = asyncio.get_running_loop().create_task(self._pipeline.deliverer.run())
        self._delivery.add_done_callback(_log_if_failed)

    async def restore(
        self, conversation_id: int, history_turns: int
    ) -> tuple[list[BurstMessage], list[Exchange]]:
        """Unanswered messages and the current session's memory, for a (re)created actor."""
        return await self._pipeline.restore(conversation_id, history_turns)

    async def begin_turn(self, conversation_id: int) -> TurnPlan | None:
        """Claim the conversation's unanswered messages and decide what the turn does."""
        return await self._pipeline.begin_turn(conversation_id)

    async def answer_turn(
        self, plan: TurnPlan, *, passages: list[Passage], memory: list[Exchange]
    ) -> TurnResult:
        """Produce the reply under the turn's lease, record it, deliver its parts in order."""
        return await self._pipeline.answer_turn(plan, passages=passages, memory=memory)

    async def ping(self) -> bool:
        return True

    async def status(self) -> dict[str, Any]:
        """What operators and tests can see: its process, the circuit to Evolution, and the
        bursts whose replies it is producing now."""
        return {
            "pid": os.getpid(),
            "circuit": self._pipeline.deliverer.breaker_state().value,
            "answering": list(self._pipeline.answering.values()),
        }


def _log_if_failed(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("delivery loop stopped", extra={"error": repr(task.exception())})


def start_reply_workers(settings: Settings) -> list[Any]:
    """Get or create the pool; the returned handles are already usable."""
    from engine.adapters import ray_secrets

    ray_secrets.publish(settings)
    given = ray_secrets.withheld(settings)
    handles = [
        ReplyWorker.options(  # type: ignore[attr-defined]
            name=reply_worker_name(i),
            namespace=settings.ray_namespace,
            lifetime="detached",
            get_if_exists=True,
        ).remote(given, i)
        for i in range(settings.reply_workers)
    ]
    ray.get([h.ping.remote() for h in handles])
    return handles
