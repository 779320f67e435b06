"""Ingesting a cliente's documents into its retriever, and deleting its knowledge."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.actors.retriever import RetrieverClient, RetrieverConfig
from engine.core.chunking import chunk_text
from engine.core.statuses import DocumentStatus
from engine.db import clientes as clientes_db
from engine.db import knowledge as knowledge_db
from engine.db.models import KnowledgeDocument
from engine.errors import Conflict, InvalidInput, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)

INGEST_BATCH = 16  # chunks per embed+store round trip; progress is recorded after each
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
Spawn = Callable[[Coroutine[Any, Any, Any], dict[str, Any]], None]


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

    async def upload(
        self,
        cliente_id: int,
        *,
        title: str,
        content_type: str | None,
        raw: bytes,
        wait: bool,
        spawn: Spawn,
    ) -> tuple[KnowledgeDocument, bool]:
        """Store a text/markdown document and embed it: now (`wait`), or in the background
        (`spawn`). Returns the document and whether it is ready. Refuses, writing nothing, a
        type Conversa cannot read, a body over 5 MB, text that is not UTF-8, an empty one."""
        kind = (content_type or "text/plain").split(";")[0].strip().lower()
        if kind not in TEXT_TYPES:
            raise UnsupportedMediaType(
                f"Content-Type must be one of {', '.join(TEXT_TYPES)}, got {kind!r}"
            )
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(
                f"document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; split it"
            )
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInput("document must be UTF-8 text") from e
        if not content.strip():
            raise InvalidInput("document is empty")
        if "\x00" in content or "\x00" in title:
            raise InvalidInput("document and title may not contain NUL characters")
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            document, needs_ingest = await knowledge_db.add_document(
                session, cliente_id, title=title, content_type=kind, content=content
            )
            await session.commit()
        if not needs_ingest:
            return document, True
        ingest = self.ingest(cliente_id, document.id, content)
        if wait:
            await ingest
        else:
            spawn(ingest, {"cliente_id": cliente_id, "document_id": document.id})
        async with self._sessions() as session:  # progress was written by the ingestion
            ready = await knowledge_db.get_document(session, cliente_id, document.id)
        return ready, wait

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

    async def delete_document(self, cliente_id: int, document_id: int) -> None:
        """Delete one document: its chunks (no longer searched), then its row."""
        async with self._sessions() as session:
            document = await knowledge_db.get_document(session, cliente_id, document_id)
            if document.status is DocumentStatus.PROCESSANDO:
                raise Conflict(
                    f"document {document_id} is still being ingested; wait for it to finish"
                )
        await RetrieverClient(cliente_id, self._retriever).call("delete_document", document_id)
        async with self._sessions() as session:
            await knowledge_db.delete_document(session, cliente_id, document_id)
            await session.commit()
        log.info("document deleted", extra={"cliente_id": cliente_id, "document_id": document_id})

    async def deletar_vectorstore_cliente(self, cliente_id: int) -> int:
        """Delete all of a cliente's knowledge: its Chroma collection and its documents.
        Refused while a document is still being ingested."""
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            busy = [
                d.id
                for d in await knowledge_db.list_documents(session, cliente_id)
                if d.status is DocumentStatus.PROCESSANDO
            ]
        if busy:
            raise InvalidInput(
                f"documents {busy} are still being ingested; wait for them to finish"
            )
        await RetrieverClient(cliente_id, self._retriever).call("delete_all")
        async with self._sessions() as session:
            deleted = await knowledge_db.delete_all(session, cliente_id)
            await session.commit()
        log.info("knowledge deleted", extra={"cliente_id": cliente_id, "documents": deleted})
        return deleted
