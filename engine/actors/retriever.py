"""`TenantRetriever`: one detached actor per cliente, bound to Chroma collection `tenant_{id}`.

The actor is the only process that opens its cliente's on-disk Chroma store (a directory of its
own), because two processes writing one PersistentClient path silently lose vectors. With
`CHROMA_URL` it talks to a Chroma server instead, which is safe from any number of nodes.
Queries are embedded by the shared `Embedder` actor. Nothing here can reach another cliente's
collection: the name is fixed at construction from the cliente id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import ray

from engine.actors.calls import call_with_retry
from engine.adapters.chroma import ChromaStore
from engine.core.naming import EMBEDDER_NAME, get_collection_name
from engine.core.prompt import Passage
from engine.errors import ActorClosing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrieverConfig:
    namespace: str
    chroma_dir: str | None  # on-disk stores, one sub-directory per cliente
    chroma_url: str | None  # a Chroma server (multi-node)
    idle_ttl_s: float = 900.0


@ray.remote(num_cpus=0, max_restarts=0)
class TenantRetriever:
    def __init__(self, cliente_id: int, config: RetrieverConfig):
        self._cliente_id = cliente_id
        self._name = get_collection_name(cliente_id)
        self._store = ChromaStore.open(
            self._name, chroma_dir=config.chroma_dir, chroma_url=config.chroma_url
        )
        self._embedder = ray.get_actor(EMBEDDER_NAME, namespace=config.namespace)
        self._idle_ttl_s = config.idle_ttl_s
        self._loop = asyncio.get_running_loop()
        self._in_flight = 0
        self._closing = False
        self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)

    def _use(self) -> None:
        """Every call: refuse once leaving (callers retry), and push the idle deadline back."""
        if self._closing:
            raise ActorClosing(self._name)
        self._idle_timer.cancel()
        self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)

    def _idle_expired(self) -> None:
        if self._in_flight:
            self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)
            return
        self._closing = True
        log.info("retriever leaving after idle", extra={"cliente_id": self._cliente_id})
        self._loop.create_task(self._leave())

    async def _leave(self) -> None:
        ray.actor.exit_actor()

    async def search(self, query: str, k: int) -> list[Passage]:
        """The `k` chunks of this cliente's knowledge closest to `query`."""
        self._use()
        self._in_flight += 1
        try:
            return await self._search(query, k)
        finally:
            self._in_flight -= 1

    async def _search(self, query: str, k: int) -> list[Passage]:
        if not query.strip() or k <= 0:
            return []
        if await asyncio.to_thread(self._store.count) == 0:
            return []
        [vector] = await self._embedder.embed.remote([query])
        return await asyncio.to_thread(self._store.nearest, vector, k)

    async def add_chunks(self, document_id: int, chunks: list[str], first_index: int) -> int:
        """Embed and store chunks `first_index…` of a document (idempotent: ids are stable)."""
        self._use()
        self._in_flight += 1
        try:
            return await self._add_chunks(document_id, chunks, first_index)
        finally:
            self._in_flight -= 1

    async def _add_chunks(self, document_id: int, chunks: list[str], first_index: int) -> int:
        if not chunks:
            return 0
        vectors = await self._embedder.embed.remote(chunks)
        await asyncio.to_thread(
            self._store.upsert,
            document_id,
            chunks,
            vectors,
            first_index=first_index,
            cliente_id=self._cliente_id,
        )
        return len(chunks)

    async def delete_all(self) -> None:
        """`deletar_vectorstore_cliente`: drop the whole collection, then start an empty one."""
        self._use()
        await asyncio.to_thread(self._store.reset)
        log.info("knowledge deleted", extra={"cliente_id": self._cliente_id})


def retriever_handle(cliente_id: int, config: RetrieverConfig) -> ray.actor.ActorHandle:
    """Get or create the cliente's retriever (named `tenant_{id}`)."""
    return TenantRetriever.options(  # type: ignore[attr-defined]
        name=get_collection_name(cliente_id),
        namespace=config.namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(cliente_id, config)


class RetrieverClient:
    """Calls one cliente's retriever, re-creating it if it was reaped, crashed or is leaving."""

    ATTEMPTS = 4

    def __init__(self, cliente_id: int, config: RetrieverConfig):
        self._cliente_id = cliente_id
        self._config = config
        self._handle: Any = None

    async def call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        """Each attempt waits at most `timeout_s` (None: as long as it takes, for ingestion)."""
        return await call_with_retry(
            self._get,
            method,
            *args,
            attempts=self.ATTEMPTS,
            first_delay_s=0.1,
            log_context={"cliente_id": self._cliente_id},
            timeout_s=timeout_s,
        )

    def _get(self, fresh: bool) -> Any:
        if fresh or self._handle is None:
            self._handle = retriever_handle(self._cliente_id, self._config)
        return self._handle
