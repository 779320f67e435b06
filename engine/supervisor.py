"""`Supervisor`: the singleton that keeps live conversations bounded and nothing accepted lost.

- **Bounded.** Every conversation actor holds one unit of the node's `conversation_slot`
  resource (`MAX_LIVE_CONVERSATIONS` per node), so Ray itself never places more than that on a
  node. To keep room for new chats, the supervisor evicts idle actors, least recently used first,
  whenever a node is full; an actor with a pending burst or a running turn refuses eviction.
- **Nothing lost.** Timers die with actors, deadlines do not: every accepted burst has a durable
  `answer_due_at`. Every `RECOVERY_INTERVAL_S` the supervisor re-activates conversations more
  than `RECOVERY_GRACE_S` past it (actor crashed, node lost, process killed mid-reply).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import ray

from engine.config import Settings
from engine.conversation import ConversationConfig
from engine.db import conversations as conversations_db
from engine.db.session import create_engine, session_factory
from engine.debounce import DebouncePolicy
from engine.logs import configure_logging
from engine.naming import SUPERVISOR_NAME
from engine.routing import ConversationRouter
from engine.webhooks import Delivery

log = logging.getLogger(__name__)

REACTIVATION_TIMEOUT_S = 30.0


@dataclass
class LiveConversation:
    handle: Any
    node_id: str
    idle_since: float | None  # monotonic; None while busy


@ray.remote(num_cpus=0, max_restarts=-1)
class Supervisor:
    def __init__(self, settings: Settings, config: ConversationConfig):
        configure_logging(settings.log_level)
        assert settings.database_url
        self._settings = settings
        self._cap = settings.max_live_conversations
        self._engine = create_engine(settings.database_url, pool_size=2)
        self._sessions = session_factory(self._engine)
        self._router = ConversationRouter(config)
        self._live: dict[str, LiveConversation] = {}
        self._evicting: set[str] = set()
        self._recovered = 0
        self._evicted = 0
        self._reaped = 0
        self._recovery = asyncio.get_running_loop().create_task(self._recovery_loop())

    # --- registry (fire-and-forget calls from conversation actors) ------------------------

    async def register(self, session_id: str, handle: Any, node_id: str) -> None:
        # Busy until it says otherwise: a new actor is about to be handed a message.
        self._live[session_id] = LiveConversation(handle, node_id, None)
        await self._make_room(node_id)

    async def busy(self, session_id: str) -> None:
        if session_id in self._live:
            self._live[session_id].idle_since = None

    async def idle(self, session_id: str) -> None:
        if session_id in self._live:
            self._live[session_id].idle_since = time.monotonic()
            await self._make_room(self._live[session_id].node_id)

    async def deregister(self, session_id: str, reason: str = "idle") -> None:
        if self._live.pop(session_id, None) is not None and reason == "idle":
            self._reaped += 1

    async def _make_room(self, node_id: str) -> None:
        """Keep one free slot on a full node by evicting its least recently idle actors."""
        on_node = [(s, c) for s, c in self._live.items() if c.node_id == node_id]
        excess = len(on_node) - (self._cap - 1)
        if excess <= 0:
            return
        idle = sorted(
            (
                (c.idle_since, s)
                for s, c in on_node
                if c.idle_since is not None and s not in self._evicting
            )
        )
        for _, session_id in idle[:excess]:
            self._evicting.add(session_id)
            try:
                left = await asyncio.wait_for(self._live[session_id].handle.passivate.remote(), 5)
            except (TimeoutError, ray.exceptions.RayActorError, KeyError):
                left = True  # already gone: forget it
            finally:
                self._evicting.discard(session_id)
            if left:
                self._live.pop(session_id, None)
                self._evicted += 1

    # --- recovery ---------------------------------------------------------------------------

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.recovery_interval_s)
            try:
                await self.recover()
                self._forget_dead_nodes()
            except Exception:
                log.exception("recovery pass failed; retrying at the next interval")

    async def recover(self) -> int:
        """Re-activate conversations past their deadline; returns how many."""
        async with self._sessions() as session:
            overdue = await conversations_db.overdue_conversations(
                session, grace_s=self._settings.recovery_grace_s
            )
            await session.commit()
        # Concurrently: one conversation whose actor sits on a dying node must not hold up the rest.
        await asyncio.gather(*(self._reactivate(c) for c in overdue))
        self._recovered += len(overdue)
        return len(overdue)

    async def _reactivate(self, conversation: conversations_db.Overdue) -> None:
        context = {"cliente_id": conversation.cliente_id, "chat": conversation.chat_jid}
        debounce_s = _or(conversation.debounce_s, self._settings.debounce_s)
        policy = DebouncePolicy(
            debounce_s, max(_or(conversation.max_wait_s, self._settings.max_wait_s), debounce_s)
        )
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
                await asyncio.wait_for(self._router.deliver(delivery), REACTIVATION_TIMEOUT_S)
            except Exception:  # its deadline was pushed back: the next pass tries again
                log.exception("re-activation failed", extra=context)
                return

    def _forget_dead_nodes(self) -> None:
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        for session_id in [s for s, c in self._live.items() if c.node_id not in alive]:
            self._live.pop(session_id, None)

    async def stats(self) -> dict[str, Any]:
        per_node: dict[str, int] = {}
        for conversation in self._live.values():
            per_node[conversation.node_id] = per_node.get(conversation.node_id, 0) + 1
        return {
            "live": len(self._live),
            "live_per_node": per_node,
            "idle": sum(1 for c in self._live.values() if c.idle_since is not None),
            "cap_per_node": self._cap,
            "evicted": self._evicted,
            "reaped_idle": self._reaped,
            "recovered": self._recovered,
        }


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def start_supervisor(settings: Settings, config: ConversationConfig) -> Any:
    handle = Supervisor.options(  # type: ignore[attr-defined]
        name=SUPERVISOR_NAME,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(settings, config)
    ray.get(handle.stats.remote())
    return handle
