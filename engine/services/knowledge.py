"""A cliente's knowledge as the operator API sees it: upload (convert, chunk, store, hand to the
cliente's retriever), wait for it, delete one document or all of them, and the supervisor's pass
over ingestions that stopped making progress.

The ingress replica that received an upload only writes rows: the embedding runs in the cliente's
retriever actor (`engine.actors.retriever`), so a replica restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.actors.retriever import DeleteOutcome, RetrieverClient, RetrieverConfig
from engine.adapters.documents import to_markdown
from engine.core.chunking import chunk_document
from engine.core.formats import detect_format, supported_types
from engine.core.prompt import Passage
from engine.core.statuses import DocumentStatus
from engine.db import clientes as clientes_db
from engine.db import knowledge as knowledge_db
from engine.db.models import KnowledgeDocument
from engine.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)

WAIT_POLL_S = 0.2
WAIT_TIMEOUT_S = 600.0  # ?wait=true: longest an upload request waits for its document
PREVIEW_TIMEOUT_S = 30.0  # a test question waits this long per attempt for the retriever


class Knowledge:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retriever: RetrieverConfig,
        *,
        chunk_size: int,
        chunk_overlap: int,
        max_upload_bytes: int,
    ):
        self._sessions = sessions
        self._retriever = retriever
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap
        self.max_upload_bytes = max_upload_bytes

    def retriever(self, cliente_id: int) -> RetrieverClient:
        return RetrieverClient(cliente_id, self._retriever)

    async def upload(
        self, session: AsyncSession, cliente_id: int, *, title: str, content_type: str, raw: bytes
    ) -> tuple[KnowledgeDocument, bool]:
        """Convert and chunk an upload, store it with its chunks (committed), and ask the
        cliente's retriever to embed it. Returns (document, whether it is new work)."""
        fmt = detect_format(content_type, title)
        if fmt is None:
            raise UnsupportedMediaType(
                f"cannot read {content_type or 'an untyped body'!r}; supported: {supported_types()}"
            )
        if len(raw) > self.max_upload_bytes:
            raise PayloadTooLarge(
                f"document is {len(raw)} bytes, over the {self.max_upload_bytes}-byte limit "
                "(MAX_UPLOAD_BYTES); split it"
            )
        markdown = await asyncio.to_thread(to_markdown, raw, fmt)
        chunks = chunk_document(markdown, size=self._chunk_size, overlap=self._chunk_overlap)
        if not chunks:
            raise InvalidInput("document is empty")
        document, needs_ingest = await knowledge_db.add_document(
            session,
            cliente_id,
            title=title,
            content_type=fmt.value,
            content=markdown,
            chunks=chunks,
        )
        await session.commit()
        if needs_ingest:
            context = {"cliente_id": cliente_id, "document_id": document.id, "chunks": len(chunks)}
            try:
                await self.retriever(cliente_id).call("ingest", document.id)
                log.info("document stored; ingestion started", extra=context)
            except Exception:  # stored: the supervisor's stalled-ingestion pass will start it
                log.exception(
                    "document stored; its retriever could not be reached, ingestion will be "
                    "resumed by recovery",
                    extra=context,
                )
        return document, needs_ingest

    async def receive(
        self,
        cliente_id: int,
        *,
        title: str,
        content_type: str,
        raw: bytes,
        wait: bool,
    ) -> tuple[KnowledgeDocument, bool]:
        """An upload from the operator API, `/v1` or the console: stored and handed to the
        cliente's retriever (`upload`), then, with `wait`, waited for. Returns the document as
        it is now (progress is written by the retriever) and whether it is ready."""
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            document, needs_ingest = await self.upload(
                session, cliente_id, title=title, content_type=content_type, raw=raw
            )
            document_id = document.id
        if needs_ingest and wait:
            await self.wait_ready(cliente_id, document_id, timeout_s=WAIT_TIMEOUT_S)
        async with self._sessions() as session:
            current = await knowledge_db.get_document(session, cliente_id, document_id)
        return current, not needs_ingest or wait

    async def wait_ready(self, cliente_id: int, document_id: int, *, timeout_s: float) -> None:
        """Poll until the document is no longer PROCESSANDO (or `timeout_s` passes)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            async with self._sessions() as session:
                try:
                    document = await knowledge_db.get_document(session, cliente_id, document_id)
                except NotFound:
                    return
                if document.status is not DocumentStatus.PROCESSANDO:
                    return
            await asyncio.sleep(WAIT_POLL_S)

    async def delete_document(self, cliente_id: int, document_id: int) -> None:
        deleted = await self.retriever(cliente_id).call("delete_document", document_id)
        if not deleted:
            raise NotFound(f"document {document_id} does not exist for cliente {cliente_id}")

    async def deletar_vectorstore_cliente(self, cliente_id: int, *, force: bool = False) -> int:
        """Delete all of a cliente's knowledge: documents, chunks and its Chroma collection.
        Refuses while documents are being ingested unless `force` (which stops them)."""
        outcome: DeleteOutcome = await self.retriever(cliente_id).call("delete_all", force)
        if outcome.busy:
            raise Conflict(
                f"documents {list(outcome.busy)} are still being ingested; wait for them, "
                "or delete with force=true to stop them"
            )
        return outcome.deleted

    async def preview(self, cliente_id: int, question: str, *, k: int) -> list[Passage]:
        """The passages a reply to `question` would be given, best first, exactly as the reply
        pipeline asks the cliente's retriever for them (a test question from the console)."""
        question = question.strip()
        if not question:
            raise InvalidInput("question is empty")
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
        found: list[Passage] = await self.retriever(cliente_id).call(
            "search", question, k, timeout_s=PREVIEW_TIMEOUT_S
        )
        return found


async def resume_stalled_ingestion(
    sessions: async_sessionmaker[AsyncSession], retriever: RetrieverConfig, *, quiet_s: float
) -> int:
    """Ask the retriever of every cliente with an ingestion that made no progress for `quiet_s`
    (its retriever died, or was reaped while it waited) to resume it; returns how many clientes.
    Each resumed run counts as an attempt: a document that keeps failing ends in ERRO."""
    async with sessions() as session:
        stalled = await knowledge_db.stalled(session, quiet_s=quiet_s)
    clientes = sorted({s.cliente_id for s in stalled})
    for cliente_id in clientes:
        log.warning("resuming stalled ingestion", extra={"cliente_id": cliente_id})
        try:
            await RetrieverClient(cliente_id, retriever).call("resume")
        except Exception:  # the next pass tries again
            log.exception("could not resume ingestion", extra={"cliente_id": cliente_id})
    return len(clientes)
