"""`TenantRetriever`: one detached actor per cliente, bound to Chroma collection `tenant_{id}`.

It owns all of its cliente's knowledge work: hybrid search (`engine.services.retrieval`), and
ingestion and deletion (`engine.services.ingestion`), which are serialized here, one write at a
time per cliente, so an upload racing a delete cannot leave a deleted document's vectors behind
(and PostgreSQL, not Chroma, decides what is served). Ingestion runs here, where the work is
owned, not in the ingress replica that received the upload: a new incarnation resumes whatever
is still PROCESSANDO when it starts.

The actor is the only process that opens its cliente's on-disk Chroma store (a directory of its
own), because two processes writing one PersistentClient path silently lose vectors. With
`CHROMA_URL` it talks to a Chroma server instead, which is safe from any number of nodes.
Embeddings come from the shared `Embedder` actor. Nothing here can reach another cliente's
collection or rows: the name and every query are fixed at construction from the cliente id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import ray

from engine.actors.calls import call_with_retry
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
    db_pool_size: int = 2


@dataclass(frozen=True)
class DeleteOutcome:
    """What a knowledge deletion did; `busy` lists documents still being ingested when a
    non-forced deletion refused to run."""

    deleted: int = 0
    busy: tuple[int, ...] = ()


@ray.remote(num_cpus=0, max_restarts=0)
class TenantRetriever:
    def __init__(self, cliente_id: int, config: RetrieverConfig):
        # Heavy imports here, not at module level: building a handle must stay cheap.
        from engine.adapters import ray_secrets
        from engine.services.tenant_knowledge import TenantKnowledge

        self._cliente_id = cliente_id
        self._name = get_collection_name(cliente_id)
        self._log = {"cliente_id": cliente_id}
        self._embedder = ray.get_actor(EMBEDDER_NAME, namespace=config.namespace)
        self._knowledge = TenantKnowledge(
            cliente_id,
            collection=self._name,
            chroma_dir=config.chroma_dir,
            chroma_url=config.chroma_url,
            # Not an argument: every conversation actor carries this config.
            database_url=ray_secrets.database_url(config.namespace),
            db_pool_size=config.db_pool_size,
            embed=self._embed,
        )
        self._writes = asyncio.Lock()  # ingestion and deletion: one at a time per cliente
        self._ingesting: dict[int, asyncio.Task[Any]] = {}
        self._stopping: set[int] = set()
        self._idle_ttl_s = config.idle_ttl_s
        self._loop = asyncio.get_running_loop()
        self._in_flight = 0
        self._closing = False
        self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)
        self._opened = self._loop.create_task(self._open())
        self._loop.create_task(self.resume())  # what a dead incarnation left PROCESSANDO

    async def _open(self) -> None:
        try:
            await self._knowledge.open()
        except Exception:
            # No such cliente (deleted) or PostgreSQL away: leave, the next call makes a new one.
            log.exception("could not open the knowledge store; leaving", extra=self._log)
            self._closing = True
            self._loop.create_task(self._leave())
            raise

    async def _ready(self) -> None:
        """Every call: refuse once leaving, push the idle deadline back, wait for the store."""
        self._use()
        await asyncio.shield(self._opened)

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = await self._embedder.embed.remote(texts)
        return vectors

    # --- lifetime ---------------------------------------------------------------------------

    def _use(self) -> None:
        """Every call: refuse once leaving (callers retry), and push the idle deadline back."""
        if self._closing:
            raise ActorClosing(self._name)
        self._idle_timer.cancel()
        self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)

    def _idle_expired(self) -> None:
        if self._in_flight or self._ingesting or self._writes.locked():
            self._idle_timer = self._loop.call_later(self._idle_ttl_s, self._idle_expired)
            return
        self._closing = True
        log.info("retriever leaving after idle", extra=self._log)
        self._loop.create_task(self._leave())

    async def _leave(self) -> None:
        await self._knowledge.close()
        ray.actor.exit_actor()

    # --- search -----------------------------------------------------------------------------

    async def ready(self) -> bool:
        """Up with its store open: what a caller waits for before timing a search."""
        await self._ready()
        return True

    async def search(self, query: str, k: int) -> list[Passage]:
        """The `k` chunks of this cliente's knowledge that best answer `query` (hybrid)."""
        await self._ready()
        self._in_flight += 1
        try:
            return await self._knowledge.search.search(query, k)
        finally:
            self._in_flight -= 1

    # --- ingestion --------------------------------------------------------------------------

    async def ingest(self, document_id: int) -> None:
        """Start (or resume) embedding a stored document; returns at once. Idempotent."""
        await self._ready()
        if document_id not in self._ingesting:
            task = self._loop.create_task(self._ingest(document_id))
            self._ingesting[document_id] = task
            task.add_done_callback(lambda _: self._ingesting.pop(document_id, None))

    async def _ingest(self, document_id: int) -> None:
        async with self._writes:
            await self._knowledge.ingestion.run(
                document_id, stopped=lambda: document_id in self._stopping
            )

    async def resume(self) -> list[int]:
        """Resume every PROCESSANDO document of this cliente; returns those being ingested."""
        await self._ready()
        pending = await self._knowledge.processing()
        for document_id in pending:
            if document_id not in self._ingesting:
                log.info("resuming ingestion", extra={**self._log, "document_id": document_id})
                await self.ingest(document_id)
        return sorted(self._ingesting)

    # --- deletion ---------------------------------------------------------------------------

    async def delete_document(self, document_id: int) -> bool:
        """Delete one document: its ingestion (if running) stops, then rows, then vectors."""
        await self._ready()
        await self._cancel(document_id)
        async with self._writes:
            deleted: bool = await self._knowledge.ingestion.delete_document(document_id)
        log.info("document deleted", extra={**self._log, "document_id": document_id})
        return deleted

    async def delete_all(self, force: bool = False) -> DeleteOutcome:
        """`deletar_vectorstore_cliente`: every document, chunk and vector of this cliente.
        Refuses (returns the busy ids) while documents are being ingested, unless `force`."""
        await self._ready()
        if self._ingesting and not force:
            return DeleteOutcome(busy=tuple(sorted(self._ingesting)))
        for document_id in list(self._ingesting):
            await self._cancel(document_id)
        async with self._writes:
            deleted = await self._knowledge.ingestion.delete_all()
        log.info("knowledge deleted", extra={**self._log, "documents": deleted, "forced": force})
        return DeleteOutcome(deleted=deleted)

    async def drop(self) -> int:
        """The cliente is being deleted: stop every ingestion, delete its documents, chunks,
        collection and directory, then leave. Returns how many documents were deleted."""
        await self._ready()
        for document_id in list(self._ingesting):
            await self._cancel(document_id)
        async with self._writes:
            deleted = await self._knowledge.drop()
        self._closing = True
        self._idle_timer.cancel()
        self._loop.create_task(self._leave())
        log.info("knowledge store dropped", extra={**self._log, "documents": deleted})
        return deleted

    async def _cancel(self, document_id: int) -> None:
        """Stop a document's ingestion and wait for it: it ends between two batches, so none of
        its writes can land after the deletion that follows."""
        task = self._ingesting.get(document_id)
        if task is None:
            return
        self._stopping.add(document_id)
        try:
            await asyncio.gather(task, return_exceptions=True)
        finally:
            self._stopping.discard(document_id)

    async def stats(self) -> dict[str, int]:
        """Vectors in this cliente's collection (the operator API compares them with chunks)."""
        await self._ready()
        return {"vectors": await self._knowledge.vector_count()}


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
        self._seen_ready = False

    async def call(
        self,
        method: str,
        *args: Any,
        timeout_s: float | None = None,
        start_timeout_s: float | None = None,
    ) -> Any:
        """Each attempt waits at most `timeout_s` (None: as long as it takes, for ingestion).

        With `start_timeout_s`, a client that has not yet seen its retriever up first waits that
        long at most for it to be up with its store open: a retriever's cold start (imports,
        opening Chroma: seconds on a busy node) is then not counted against the search's
        `timeout_s`, while a retriever that hangs once up still costs only `timeout_s`."""
        if start_timeout_s is not None:
            await self.ready(start_timeout_s)
        return await self._call(method, *args, timeout_s=timeout_s)

    async def ready(self, timeout_s: float) -> None:
        """Wait at most `timeout_s` for the retriever to be up with its store open, creating
        it if needed (once per actor: a client that has seen it up returns at once)."""
        if not self._seen_ready:
            await self._call("ready", timeout_s=timeout_s)
            self._seen_ready = True

    async def _call(self, method: str, *args: Any, timeout_s: float | None) -> Any:
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
            self._seen_ready = False  # a new actor: the next search waits for its start again
        return self._handle
