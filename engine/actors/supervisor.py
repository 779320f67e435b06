"""`Supervisor`: the singleton that keeps live conversations bounded and nothing accepted lost.

This module is the actor's shell and stays cheap to import (every conversation actor builds a
handle to it); recovery's database and routing code (`engine.services.recovery`) loads in its
process only.

- **Bounded.** Every conversation actor holds one unit of the node's `conversation_slot`
  resource (`MAX_LIVE_CONVERSATIONS` per node), so Ray itself never places more than that on a
  node. To keep room for new chats, the supervisor evicts idle actors, least recently used first,
  whenever a node is full; an actor with a pending burst or a running turn refuses eviction.
- **Nothing lost.** Timers die with actors, deadlines do not: every accepted burst has a durable
  `answer_due_at`. Every `RECOVERY_INTERVAL_S` the supervisor re-activates conversations more
  than `RECOVERY_GRACE_S` past it (actor crashed, node lost, process killed mid-reply).
- **Nothing kept longer than allowed.** Every `RETENTION_INTERVAL_S` it deletes, in batches,
  what the retention settings say is too old (`engine.services.retention`).
- **Quick to start.** A new chat's actor takes an idle Python worker the supervisor had the raylet
  boot ahead of time (`WARM_WORKERS` per node, refilled as they are used), instead of waiting for
  a process to boot (`engine.adapters.warm_workers`).
- **Only the served are answered.** When a cliente stops being served (Stripe, an operator, or
  the end of a payment grace period, which this supervisor's periodic pass notices), its live
  conversation actors are told to stop answering and leave (`silence_cliente`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray

from engine.adapters import metrics
from engine.core.naming import CONVERSATION_SLOT, SUPERVISOR_NAME, session_id_prefix
from engine.logs import configure_logging

if TYPE_CHECKING:
    from engine.actors.conversation import ConversationConfig
    from engine.adapters.warm_workers import WarmPool
    from engine.config import Settings

log = logging.getLogger(__name__)

REGISTRATION_SETTLE_S = 5.0
# A full node evicts this share of its cap at once (at least one actor): idle chats leave in
# batches ahead of need instead of one per new chat.
EVICT_AHEAD_FRACTION = 0.25
# Prestarted workers outlive the raylet's idle trimming this long even past its soft limit (a
# flood's refills); after it, the raylet keeps `num_workers_soft_limit` of them.
WARM_KEEP_ALIVE_S = 60


@dataclass
class LiveConversation:
    handle: Any
    node_id: str
    idle_since: float | None  # monotonic; None while busy
    registered_at: float = field(default_factory=time.monotonic)


@ray.remote(num_cpus=0, max_restarts=-1)
class Supervisor:
    def __init__(self, settings: Settings, config: ConversationConfig):
        # Heavy (DB, router, Stripe rules): only this process loads them.
        from engine.adapters import ray_secrets
        from engine.services.billing import BillingClock
        from engine.services.recovery import Recovery
        from engine.services.retention import Retention

        settings = ray_secrets.restored(settings)  # given withheld
        configure_logging(settings.log_level)
        self._cap = settings.max_live_conversations
        self._namespace = settings.ray_namespace
        self._recovery_interval_s = settings.recovery_interval_s
        self._recovery = Recovery(settings, config)
        self._billing_clock = BillingClock(settings)
        self._retention = Retention(settings)
        self._retention_interval_s = settings.retention_interval_s
        self._retention_due = time.monotonic()  # the first pass at the first interval
        self._live: dict[str, LiveConversation] = {}
        self._evicting: set[str] = set()
        self._recovered = 0
        self._evicted = 0
        self._reaped = 0
        self._adopted = 0
        self._silenced = 0
        self._recovery_task = asyncio.get_running_loop().create_task(self._recovery_loop())
        self._warm = self._start_warm_pool(settings.warm_workers)

    def _start_warm_pool(self, target: int) -> WarmPool | None:
        if target <= 0:
            return None
        from engine.adapters.warm_workers import WarmPool

        pool = WarmPool(target, CONVERSATION_SLOT, keep_alive_s=WARM_KEEP_ALIVE_S)
        self._warm_task = asyncio.get_running_loop().create_task(pool.run())
        return pool

    # --- registry (fire-and-forget calls from conversation actors) ------------------------

    async def register(self, session_id: str, handle: Any, node_id: str) -> None:
        # Busy until it says otherwise: a new actor is about to be handed a message.
        self._live[session_id] = LiveConversation(handle, node_id, None)
        if self._warm is not None:
            self._warm.used(node_id)
        await self._make_room(node_id)

    async def busy(self, session_id: str) -> None:
        conversation = self._known(session_id)
        if conversation is not None:
            conversation.idle_since = None

    async def idle(self, session_id: str) -> None:
        conversation = self._known(session_id)
        if conversation is not None:
            conversation.idle_since = time.monotonic()
            await self._make_room(conversation.node_id)

    def _known(self, session_id: str) -> LiveConversation | None:
        """The registry's entry, registering an actor it does not know (this supervisor was
        restarted after the actor registered, or the registration was lost)."""
        if session_id not in self._live:
            alive = _alive_conversation_actors().get(session_id)
            if alive is None:
                return None
            self._adopt(session_id, alive)
        return self._live.get(session_id)

    def _adopt(self, session_id: str, node_id: str) -> None:
        try:
            handle = ray.get_actor(session_id, namespace=self._namespace)
        except ValueError:  # left in between
            return
        # Seen alive in Ray's table already: no registration to wait for (registered_at 0).
        self._live[session_id] = LiveConversation(handle, node_id, time.monotonic(), 0.0)
        self._adopted += 1

    def _reconcile(self) -> None:
        """Make the registry agree with Ray's own list of live actors: forget the ones that died
        without saying so (killed, crashed, node lost) and adopt the ones it never heard of."""
        alive = _alive_conversation_actors()
        # A new actor registers from its constructor, before Ray lists it as alive.
        settled = time.monotonic() - REGISTRATION_SETTLE_S
        for session_id, conversation in list(self._live.items()):
            if session_id not in alive and conversation.registered_at < settled:
                self._live.pop(session_id, None)
        for session_id, node_id in alive.items():
            if session_id not in self._live:
                self._adopt(session_id, node_id)

    async def deregister(self, session_id: str, reason: str = "idle") -> None:
        if self._live.pop(session_id, None) is not None and reason == "idle":
            self._reaped += 1
            metrics.actor_reaped()

    async def _make_room(self, node_id: str) -> None:
        """Keep free slots on a full node: once it has no free slot left, evict a batch of its
        least recently idle actors at once (a quarter of the cap), so a flood of new chats is
        admitted in waves rather than one eviction per new actor."""
        on_node = [(s, c) for s, c in self._live.items() if c.node_id == node_id]
        free = self._cap - len(on_node)
        if free >= 1:
            return
        wanted = max(1, int(self._cap * EVICT_AHEAD_FRACTION)) - free
        idle = sorted(
            (
                (c.idle_since, s)
                for s, c in on_node
                if c.idle_since is not None and s not in self._evicting
            )
        )
        batch = [session_id for _, session_id in idle[:wanted]]
        self._evicting.update(batch)
        try:
            await asyncio.gather(*(self._evict(session_id) for session_id in batch))
        finally:
            self._evicting.difference_update(batch)

    async def _evict(self, session_id: str) -> None:
        try:
            left = await asyncio.wait_for(self._live[session_id].handle.passivate.remote(), 5)
        except (TimeoutError, ray.exceptions.RayActorError, KeyError):
            left = True  # already gone: forget it
        if left:
            self._live.pop(session_id, None)
            self._evicted += 1
            metrics.actor_evicted()

    # --- recovery ---------------------------------------------------------------------------

    async def _recovery_loop(self) -> None:
        # Each step on its own: one that fails (PostgreSQL away, Stripe's clock) must not keep
        # the others from running, and it is tried again at the next interval.
        steps = (
            ("recovery", self._recover_overdue),
            ("billing clock", self._run_billing_clock),
            ("reconciliation", self._reconcile_and_make_room),
            ("live gauges", self._record_live),
            ("retention", self._prune_when_due),
        )
        while True:
            await asyncio.sleep(self._recovery_interval_s)
            for name, step in steps:
                try:
                    await step()
                except Exception:
                    log.exception(f"{name} pass failed; retrying at the next interval")

    async def _recover_overdue(self) -> None:
        self._recovered += await self._recovery.run_once()

    async def _run_billing_clock(self) -> None:
        for cliente_id in await self._billing_clock.run_once():
            await self.silence_cliente(cliente_id)

    async def _reconcile_and_make_room(self) -> None:
        self._reconcile()
        for node_id in {c.node_id for c in self._live.values()}:
            await self._make_room(node_id)  # in case an idle report was lost

    async def _record_live(self) -> None:
        metrics.live_conversations((await self.stats())["live_per_node"])

    async def _prune_when_due(self) -> None:
        if time.monotonic() < self._retention_due:
            return
        # Due again one interval later even if this pass fails (PostgreSQL away).
        self._retention_due = time.monotonic() + self._retention_interval_s
        await self.prune()

    async def prune(self) -> dict[str, int]:
        """Run a retention pass now (operators, tests); returns the rows deleted per kind."""
        counts: dict[str, int] = await self._retention.run_once()
        return counts

    async def silence_cliente(self, cliente_id: int) -> int:
        """Tell every live conversation actor of a cliente that is no longer served to stop
        answering and leave; returns how many were told."""
        prefix = session_id_prefix(cliente_id)
        known = {s: c.handle for s, c in self._live.items() if s.startswith(prefix)}
        # Also the ones still being created: they have not registered yet, and a call made now
        # is delivered as soon as they are up.
        for session_id in _conversation_actors(alive_only=False):
            if session_id.startswith(prefix) and session_id not in known:
                try:
                    known[session_id] = ray.get_actor(session_id, namespace=self._namespace)
                except ValueError:  # left in between
                    continue

        async def tell(handle: Any) -> None:
            try:
                await asyncio.wait_for(handle.stop_serving.remote(), 10)
            except (TimeoutError, ray.exceptions.RayActorError):
                pass  # gone already, or stuck: recovery's turn re-reads the status anyway

        await asyncio.gather(*(tell(h) for h in known.values()))
        self._silenced += len(known)
        log.info(
            "cliente not served: conversations told to stop",
            extra={"cliente_id": cliente_id, "actors": len(known)},
        )
        return len(known)

    async def recover(self) -> int:
        """Run a recovery pass now (operators, tests); returns how many were re-activated."""
        recovered = await self._recovery.run_once()
        self._recovered += recovered
        return recovered

    async def tracked(self) -> list[str]:
        """Session ids of the conversation actors the registry holds."""
        return list(self._live)

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
            "adopted": self._adopted,
            "silenced": self._silenced,
            "workers_prestarted": self._warm.prestarted if self._warm is not None else 0,
        }


def _alive_conversation_actors() -> dict[str, str]:
    """Session id -> node id of every live conversation actor, from Ray's actor table (GCS; no
    dashboard needed). A developer API, the one Ray offers without the dashboard's state server."""
    return _conversation_actors(alive_only=True)


def _conversation_actors(*, alive_only: bool) -> dict[str, str]:
    """Session id -> node id of conversation actors: alive, or (`alive_only=False`) any not dead
    yet, including those still being created (their node id may be empty then)."""
    from ray._private import state

    table = state.actors(actor_state_name="ALIVE" if alive_only else None)
    return {
        actor["Name"]: (actor.get("Address") or {}).get("NodeID", "")
        for actor in table.values()
        if actor["ActorClassName"] == "ConversationActor"
        and actor["Name"]
        and actor["State"] != "DEAD"
    }


def start_supervisor(settings: Settings, config: ConversationConfig) -> Any:
    from engine.adapters import ray_secrets

    ray_secrets.publish(settings)
    handle = Supervisor.options(  # type: ignore[attr-defined]
        name=SUPERVISOR_NAME,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(ray_secrets.withheld(settings), config)
    ray.get(handle.stats.remote())
    return handle
