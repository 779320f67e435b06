"""Hand an accepted message to its conversation actor, creating the actor if needed.

Handles are cached (a lookup blocks the caller's event loop for ~0.6 ms). A call that finds the
actor dead or closing (reaped, killed, crashed, or `get_if_exists` returning a dying actor, see
ray#41324) is retried on a fresh get-or-create, so a message that races the reaper is not lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import ray

from engine.actors.calls import GONE, call_with_retry
from engine.actors.conversation import ConversationActor, ConversationConfig
from engine.core.turns import Delivery

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = 8  # back-off from 20 ms, doubling: ~2.5 s for a dying actor to free its name
HANDLE_CACHE_SIZE = 10_000
# A busy actor finishes its burst first (at most max_wait_s plus a reply); then it is retired.
RETIRE_TIMEOUT_S = 60.0
RETIRE_POLL_S = 0.25


class ConversationRouter:
    def __init__(self, config: ConversationConfig):
        self._config = config
        self._handles: OrderedDict[str, Any] = OrderedDict()

    def _handle(self, delivery: Delivery, *, fresh: bool) -> Any:
        name = delivery.session_id
        if not fresh and name in self._handles:
            self._handles.move_to_end(name)
            return self._handles[name]
        resources = {self._config.slot_resource: 1} if self._config.slot_resource else {}
        handle = ConversationActor.options(  # type: ignore[attr-defined]
            name=name,
            namespace=self._config.namespace,
            lifetime="detached",
            get_if_exists=True,
            resources=resources,
        ).remote(
            cliente_id=delivery.cliente_id,
            conversation_id=delivery.conversation_id,
            session_id=delivery.session_id,
            chat_jid=delivery.chat_jid,
            policy=delivery.policy,
            config=self._config,
        )
        self._handles[name] = handle
        if len(self._handles) > HANDLE_CACHE_SIZE:
            self._handles.popitem(last=False)
        return handle

    async def deliver(self, delivery: Delivery) -> int:
        """Returns the size of the burst the message joined."""
        return await call_with_retry(
            lambda fresh: self._handle(delivery, fresh=fresh),
            "deliver",
            delivery.message,
            delivery.policy,
            delivery.conversation_id,
            attempts=DELIVERY_ATTEMPTS,
            first_delay_s=0.02,
            log_context={"cliente_id": delivery.cliente_id, "chat": delivery.chat_jid},
            # Its deadline is durable: a hand-off that hangs is given up, recovery re-delivers.
            timeout_s=self._config.actor_call_timeout_s,
        )

    async def retire(
        self, session_ids: Sequence[str], *, timeout_s: float = RETIRE_TIMEOUT_S
    ) -> None:
        """Make the actors named `session_ids` leave as soon as they are idle.

        Used when a conversation was re-keyed or merged (a lid and a phone of one contact): an
        actor under the old name, or one holding half of the memory, must not keep serving it;
        the next message restores the unified conversation from PostgreSQL in a new actor.
        """
        loop = asyncio.get_running_loop()
        for name in session_ids:
            self._handles.pop(name, None)
            try:
                handle = ray.get_actor(name, namespace=self._config.namespace)
            except ValueError:  # no such actor: nothing holds the old conversation
                continue
            deadline = loop.time() + timeout_s
            while True:
                try:
                    if await handle.passivate.remote():
                        break
                except GONE:
                    break
                if loop.time() >= deadline:
                    log.warning("actor still busy; not retired", extra={"session_id": name})
                    break
                await asyncio.sleep(RETIRE_POLL_S)
