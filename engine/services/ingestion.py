"""Ingestion, run inside the cliente's retriever actor: embed a document's chunks and store their
vectors, resumably.

The upload already wrote the document and its chunks to PostgreSQL (PROCESSANDO). A run embeds
the chunks not yet marked `embedded`, batch by batch, and records progress after each batch (the
heartbeat recovery reads). If the actor dies, the next run (its next incarnation, or the
supervisor's stalled-ingestion pass) continues where it stopped; a document whose runs keep dying
becomes ERRO after `MAX_ATTEMPTS`. The document is served only once PRONTO; then the documents
it replaces (same title) are deleted. A run that finds its document deleted stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters import metrics
from engine.adapters.chroma import ChromaStore
from engine.core.statuses import DocumentStatus
from engine.db import chunks as chunks_db
from engine.db import knowledge as knowledge_db

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

BATCH = 32  # chunks per embed + store round trip; progress is recorded after each
EMBED_TIMEOUT_S = 120.0  # one batch; a hung embedder ends the run in ERRO instead of forever
MAX_ATTEMPTS = 3  # runs of one document (each a retriever that died mid-way) before ERRO


class Ingestion:
    def __init__(
        self,
        cliente_id: int,
        *,
        sessions: async_sessionmaker[AsyncSession],
        store: ChromaStore,
        embed: Embed,
    ):
        self._cliente_id = cliente_id
        self._sessions = sessions
        self._store = store
        self._embed = embed

    async def run(
        self, document_id: int, *, stopped: Callable[[], bool] = lambda: False
    ) -> DocumentStatus | None:
        """Embed what is left of a PROCESSANDO document; its final status, or None if it is not
        PROCESSANDO (finished, failed or deleted meanwhile) or `stopped()` became true. Stopping
        is checked between batches, never inside one, so no vector is written after the run
        returns (a cancelled thread would go on writing)."""
        if stopped():
            return None
        context = {"cliente_id": self._cliente_id, "document_id": document_id}
        async with self._sessions() as session:
            attempt = await knowledge_db.start_attempt(session, document_id)
            await session.commit()
        if attempt is None:
            return None
        if attempt > MAX_ATTEMPTS:
            await self._finish(
                document_id,
                DocumentStatus.ERRO,
                f"ingestion was interrupted {MAX_ATTEMPTS} times; upload the document again",
            )
            return DocumentStatus.ERRO
        try:
            return await self._embed_remaining(document_id, context, stopped)
        except Exception as e:
            log.exception("ingestion failed", extra=context)
            await self._finish(
                document_id,
                DocumentStatus.ERRO,
                f"{type(e).__name__}: {e}. Upload the document again to retry.",
            )
            return DocumentStatus.ERRO

    async def _embed_remaining(
        self, document_id: int, context: dict[str, Any], stopped: Callable[[], bool]
    ) -> DocumentStatus | None:
        async with self._sessions() as session:
            remaining = await chunks_db.unembedded(session, document_id)
        batches = [remaining[i : i + BATCH] for i in range(0, len(remaining), BATCH)]
        # The next batch is embedded (in the Embedder actor) while this one is stored, so the
        # model never waits for Chroma or PostgreSQL: ingestion runs at the embedder's rate.
        upcoming = self._embedding(batches[0]) if batches else None
        for index, batch in enumerate(batches):
            assert upcoming is not None
            vectors = await upcoming
            upcoming = self._embedding(batches[index + 1]) if index + 1 < len(batches) else None
            if stopped():
                if upcoming is not None:
                    upcoming.cancel()  # only an embedding: nothing is written
                log.info("ingestion stopped", extra=context)
                return None
            ids = [chunk_id for chunk_id, _ in batch]
            await asyncio.to_thread(
                self._store.upsert,
                ids,
                vectors,
                document_id=document_id,
                cliente_id=self._cliente_id,
            )
            async with self._sessions() as session:
                await chunks_db.mark_embedded(session, ids)
                done, total = await chunks_db.count(session, document_id)
                alive = await knowledge_db.set_progress(session, document_id, chunks_done=done)
                await session.commit()
            if not alive:  # deleted (or forced to ERRO) while embedding: leave no vectors
                if upcoming is not None:
                    upcoming.cancel()
                await asyncio.to_thread(self._store.delete_document, document_id)
                log.info("document deleted during ingestion", extra=context)
                return None
            metrics.ingestion_chunks(self._cliente_id, len(ids))
            log.info("ingesting", extra={**context, "chunks_done": done, "chunks_total": total})
        replaced = await self._finish(document_id, DocumentStatus.PRONTO, None)
        log.info("document ready", extra={**context, "replaced": replaced})
        return DocumentStatus.PRONTO

    def _embedding(self, batch: list[tuple[int, str]]) -> asyncio.Task[list[list[float]]]:
        texts = [text for _, text in batch]
        return asyncio.ensure_future(asyncio.wait_for(self._embed(texts), EMBED_TIMEOUT_S))

    async def _finish(
        self, document_id: int, status: DocumentStatus, error: str | None
    ) -> list[int]:
        """Set the final status; a ready document deletes the ones it replaces (same title)."""
        async with self._sessions() as session:
            done, _ = await chunks_db.count(session, document_id)
            await knowledge_db.set_progress(
                session, document_id, chunks_done=done, status=status, error=error
            )
            replaced = (
                await knowledge_db.replaced_by(session, document_id)
                if status is DocumentStatus.PRONTO
                else []
            )
            for old in replaced:
                await knowledge_db.delete_document(session, self._cliente_id, old)
            await session.commit()
        for old in replaced:
            await asyncio.to_thread(self._store.delete_document, old)
        return replaced

    async def delete_document(self, document_id: int) -> bool:
        """Rows first (from then on nothing of it is served), then its vectors."""
        async with self._sessions() as session:
            deleted = await knowledge_db.delete_document(session, self._cliente_id, document_id)
            await session.commit()
        await asyncio.to_thread(self._store.delete_document, document_id)
        return deleted

    async def delete_all(self) -> int:
        async with self._sessions() as session:
            deleted = await knowledge_db.delete_all(session, self._cliente_id)
            await session.commit()
        await asyncio.to_thread(self._store.reset)
        return deleted
