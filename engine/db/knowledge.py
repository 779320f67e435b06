"""Queries about a cliente's knowledge documents (the converted text and ingestion progress are
kept here; chunks in `engine.db.chunks`; vectors in Chroma)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.chunking import Chunk
from engine.core.statuses import DocumentStatus
from engine.db import chunks as chunks_db
from engine.db.models import KnowledgeDocument
from engine.errors import NotFound


@dataclass(frozen=True)
class Stalled:
    cliente_id: int
    document_id: int


async def add_document(
    session: AsyncSession,
    cliente_id: int,
    *,
    title: str,
    content_type: str,
    content: str,
    chunks: Sequence[Chunk],
) -> tuple[KnowledgeDocument, bool]:
    """Store a converted document and its chunks (PROCESSANDO until its retriever embedded them).
    An identical text already stored for this cliente is returned instead (and retried if its
    ingestion failed). Returns (document, whether it needs ingesting)."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    existing = await session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.cliente_id == cliente_id, KnowledgeDocument.sha256 == digest
        )
    )
    if existing is not None and existing.status is not DocumentStatus.ERRO:
        return existing, False
    if existing is not None:  # a failed ingestion: try again with the same row and chunks
        existing.status = DocumentStatus.PROCESSANDO
        existing.error = None
        existing.attempts = 0
        existing.updated_at = func.now()
        await session.flush()
        await session.refresh(existing)
        return existing, True
    document = KnowledgeDocument(
        cliente_id=cliente_id,
        title=title,
        content_type=content_type,
        content=content,
        sha256=digest,
        size_bytes=len(content.encode()),
        status=DocumentStatus.PROCESSANDO,
        chunks_total=len(chunks),
    )
    session.add(document)
    await session.flush()
    await chunks_db.add_chunks(session, cliente_id, document.id, chunks)
    await session.refresh(document)
    return document, True


async def start_attempt(session: AsyncSession, document_id: int) -> int | None:
    """Count one more ingestion run of a PROCESSANDO document; None if it is not (any more)."""
    result = await session.execute(
        update(KnowledgeDocument)
        .where(
            KnowledgeDocument.id == document_id,
            KnowledgeDocument.status == DocumentStatus.PROCESSANDO,
        )
        .values(attempts=KnowledgeDocument.attempts + 1, updated_at=func.now())
        .returning(KnowledgeDocument.attempts)
    )
    return result.scalar_one_or_none()


async def set_progress(
    session: AsyncSession,
    document_id: int,
    *,
    chunks_done: int,
    status: DocumentStatus = DocumentStatus.PROCESSANDO,
    error: str | None = None,
) -> bool:
    """Record progress (also the ingestion's heartbeat); False if the document is gone or no
    longer PROCESSANDO (deleted or finished by someone else): the caller stops."""
    result = await session.execute(
        update(KnowledgeDocument)
        .where(
            KnowledgeDocument.id == document_id,
            KnowledgeDocument.status == DocumentStatus.PROCESSANDO,
        )
        .values(chunks_done=chunks_done, status=status, error=error, updated_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult


async def replaced_by(session: AsyncSession, document_id: int) -> list[int]:
    """Older documents of the same cliente with the same title as this one (what it replaces)."""
    newer = await session.get(KnowledgeDocument, document_id)
    if newer is None:
        return []
    rows = await session.scalars(
        select(KnowledgeDocument.id).where(
            KnowledgeDocument.cliente_id == newer.cliente_id,
            KnowledgeDocument.title == newer.title,
            KnowledgeDocument.id < document_id,
        )
    )
    return list(rows)


async def processing(session: AsyncSession, cliente_id: int) -> list[int]:
    rows = await session.scalars(
        select(KnowledgeDocument.id)
        .where(
            KnowledgeDocument.cliente_id == cliente_id,
            KnowledgeDocument.status == DocumentStatus.PROCESSANDO,
        )
        .order_by(KnowledgeDocument.id)
    )
    return list(rows)


async def stalled(session: AsyncSession, *, quiet_s: float) -> list[Stalled]:
    """PROCESSANDO documents whose ingestion has shown no progress for `quiet_s`."""
    rows = await session.execute(
        select(KnowledgeDocument.cliente_id, KnowledgeDocument.id).where(
            KnowledgeDocument.status == DocumentStatus.PROCESSANDO,
            KnowledgeDocument.updated_at < func.now() - timedelta(seconds=quiet_s),
        )
    )
    return [Stalled(row[0], row[1]) for row in rows]


async def get_document(
    session: AsyncSession, cliente_id: int, document_id: int
) -> KnowledgeDocument:
    document = await session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.id == document_id, KnowledgeDocument.cliente_id == cliente_id
        )
    )
    if document is None:
        raise NotFound(f"document {document_id} does not exist for cliente {cliente_id}")
    return document


async def list_documents(session: AsyncSession, cliente_id: int) -> list[KnowledgeDocument]:
    rows = await session.scalars(
        select(KnowledgeDocument)
        .where(KnowledgeDocument.cliente_id == cliente_id)
        .order_by(KnowledgeDocument.id)
    )
    return list(rows)


async def delete_document(session: AsyncSession, cliente_id: int, document_id: int) -> bool:
    """Delete one document and (cascade) its chunks; False if it was not there."""
    result = await session.execute(
        delete(KnowledgeDocument).where(
            KnowledgeDocument.id == document_id, KnowledgeDocument.cliente_id == cliente_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult


async def delete_all(session: AsyncSession, cliente_id: int) -> int:
    result = await session.execute(
        delete(KnowledgeDocument).where(KnowledgeDocument.cliente_id == cliente_id)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # a CursorResult
