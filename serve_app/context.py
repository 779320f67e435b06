"""Everything an ingress process holds: DB pool, inbox, router, actor handles and background
hand-offs (one per Serve replica, built once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import ray

from engine.actors.router import ConversationRouter
from engine.adapters.evolution import EvolutionClient
from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.core.naming import SUPERVISOR_NAME
from engine.core.rate_limit import Rate
from engine.core.turns import Delivery
from engine.db.ack import AckWriter
from engine.db.raw import RawPool
from engine.db.session import asyncpg_dsn, create_engine, session_factory
from engine.services.billing import Billing, StatusChange, announce
from engine.services.cliente_deletion import ClienteDeletion
from engine.services.human_replies import HumanReplies
from engine.services.inbox import EvolutionInbox
from engine.services.instances import Instances
from engine.services.knowledge import Knowledge
from engine.services.privacy import ContactPrivacy
from engine.services.rate_limits import RateLimits
from engine.services.readiness import Readiness
from engine.wiring import conversation_config, default_behaviour, retriever_config

log = logging.getLogger(__name__)


class IngressContext:
    def __init__(self, settings: Settings):
        assert settings.database_url, "the runtime resolves DATABASE_URL before starting Serve"
        self.settings = settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            statement_timeout_s=settings.db_statement_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self.sessions = session_factory(self.engine)
        self.ack = AckWriter(
            RawPool(
                asyncpg_dsn(settings.database_url),
                pool_size=settings.db_pool_size,
                statement_timeout_s=settings.db_statement_timeout_s,
                connect_timeout_s=settings.db_connect_timeout_s,
            )
        )
        self.inbox = EvolutionInbox(
            self.sessions, defaults=default_behaviour(settings), ack=self.ack
        )
        self.router = ConversationRouter(conversation_config(settings))
        self.knowledge = Knowledge(
            self.sessions,
            retriever_config(settings),
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            max_upload_bytes=settings.max_upload_bytes,
        )
        self.billing = Billing(self.sessions, settings)
        self.instances = Instances(self.sessions, settings)
        self.deletion = ClienteDeletion(
            self.sessions,
            instances=self.instances,
            retriever=retriever_config(settings),
            namespace=settings.ray_namespace,
        )
        self.privacy = ContactPrivacy(
            self.sessions, namespace=settings.ray_namespace, history_turns=settings.history_turns
        )
        self.limits = RateLimits(
            self.sessions,
            per_api_key=Rate.per_minute(settings.api_rate_per_min, burst=settings.api_rate_burst),
            auth_failures=Rate.per_minute(
                settings.auth_failures_per_min, burst=settings.auth_failures_burst
            ),
        )
        self.human_replies = HumanReplies(
            self.sessions,
            evolution=_evolution_client(settings),
            secrets=SecretBox(settings.secrets_key.get_secret_value()),
            defaults=default_behaviour(settings),
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._supervisor: Any = None
        self.readiness = Readiness(settings, self.sessions, supervisor=lambda: self.supervisor)

    @property
    def supervisor(self) -> Any:
        """The supervisor's handle, looked up once (a lookup blocks the event loop ~0.6 ms)."""
        if self._supervisor is None:
            self._supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=self.settings.ray_namespace)
        return self._supervisor

    def spawn(self, work: Coroutine[Any, Any, Any], *, what: str, context: dict[str, Any]) -> None:
        """Run work after the response; failures are logged (the data is already persisted)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error(
                    f"{what} failed",
                    extra={**context, "error": repr(finished.exception())},
                )

        task.add_done_callback(done)

    def hand_off(self, delivery: Delivery | None, *, retire: tuple[str, ...] = ()) -> None:
        """After the ack: retire the actors of conversations a webhook re-keyed or merged (their
        names no longer match), then give the accepted message to its conversation's actor."""
        context = {"cliente_id": delivery.cliente_id, "chat": delivery.chat_jid} if delivery else {}
        if retire:  # rare: once per contact whose lid and phone conversations are unified
            self.spawn(
                self._retire_then_deliver(delivery, retire), what="hand-off", context=context
            )
        elif delivery is not None:
            self.spawn(
                self.router.deliver(delivery),
                what="hand-off to conversation actor",
                context=context,
            )

    async def _retire_then_deliver(
        self, delivery: Delivery | None, retire: tuple[str, ...]
    ) -> None:
        if retire:
            await self.router.retire(retire)
        if delivery is not None:
            await self.router.deliver(delivery)

    def announce(self, change: StatusChange | None) -> None:
        """After the response: a cliente that stopped being served silences its live chats."""
        if change is not None and change.stops_serving:
            self.spawn(
                announce(change, self.supervisor),
                what="silencing a cliente's conversations",
                context={"cliente_id": change.cliente_id, "status": change.after.value},
            )

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.instances.close()
        await self.human_replies.close()
        await self.ack.close()
        await self.engine.dispose()


def _evolution_client(settings: Settings) -> EvolutionClient | None:
    """For sends a person makes from the console; None when Evolution is not configured."""
    if not settings.evolution_url:
        return None
    key = settings.evolution_api_key
    return EvolutionClient(
        base_url=settings.evolution_url,
        api_key=key.get_secret_value() if key else None,
        timeout_s=settings.evolution_timeout_s,
    )
