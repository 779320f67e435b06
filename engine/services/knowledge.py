"""Ingesting a cliente's documents into its retriever, and deleting its knowledge."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.actors.retriever import RetrieverClient, RetrieverConfig
from engine.adapters import metrics
from engine.core.chunking import chunk_text
from engine.core.statuses import DocumentStatus
from engine.db import knowledge as knowledge_db

log = logging.getLogger(__name__)

INGEST_BATCH = 16  # chunks per embed+store round trip; progress is recorded after each


class Knowledge:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retriever: RetrieverConfig,
        *,
        chunk_size: int,
        chunk_overlap: int,
    ):
        self._sessions = sessions
        self._retriever = retriever
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap

    async def ingest(
        self,
        cliente_id: int,
        document_id: int,
        content: str,
        *,
        on_progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> int:
        """Chunk, embed and store a stored document; progress is kept on its row."""
        chunks = chunk_text(content, size=self._chunk_size, overlap=self._chunk_overlap)
        context = {
            "cliente_id": cliente_id,
            "document_id": document_id,
            "chunks_total": len(chunks),
        }
        retriever = RetrieverClient(cliente_id, self._retriever)
        done = 0
        try:
            await self._progress(document_id, done, len(chunks))
            for start in range(0, len(chunks), INGEST_BATCH):
                done += await retriever.call(
                    "add_chunks", document_id, chunks[start : start + INGEST_BATCH], start
                )
                metrics.ingestion_chunks(cliente_id, min(INGEST_BATCH, len(chunks) - start))
                await self._progress(document_id, done, len(chunks))
                log.info("ingesting", extra={**context, "chunks_done": done})
                if on_progress is not None:
                    await on_progress(done, len(chunks))
        except Exception as e:
            log.exception("ingestion failed", extra=context)
            await self._progress(
                document_id,
                done,
                len(chunks),
                status=DocumentStatus.ERRO,
                error=f"{type(e).__name__}: {e}. Upload the document again to retry.",
            )
            raise
        await self._progress(document_id, done, len(chunks), status=DocumentStatus.PRONTO)
        log.info("document ready", extra=context)
        return done

    async def _progress(
        self,
        document_id: int,
        done: int,
        total: int,
        *,
        status: DocumentStatus = DocumentStatus.PROCESSANDO,
        error: str | None = None,
    ) -> None:
        async with self._sessions() as session:
            await knowledge_db.set_progress(
                session,
                document_id,
                chunks_done=done,
                chunks_total=total,
                status=status,
                error=error,
            )
            await session.commit()

    async def deletar_vectorstore_cliente(self, cliente_id: int) -> int:
        """Delete all of a cliente's knowledge: its Chroma collection and its documents."""
        await RetrieverClient(cliente_id, self._retriever).call("delete_all")
        async with self._sessions() as session:
            deleted = await knowledge_db.delete_all(session, cliente_id)
            await session.commit()
        log.info("knowledge deleted", extra={"cliente_id": cliente_id, "documents": deleted})
        return deleted
