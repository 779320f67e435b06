"""Queries about a cliente's knowledge documents (the text is kept here; vectors live in Chroma)."""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.statuses import DocumentStatus
from engine.db.models import KnowledgeDocument
from engine.errors import NotFound


async def add_document(
    session: AsyncSession, cliente_id: int, *, title: str, content_type: str, content: str
) -> tuple[KnowledgeDocument, bool]:
    """Store a document; an identical one already stored for this cliente is returned instead."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    existing = await session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.cliente_id == cliente_id, KnowledgeDocument.sha256 == digest
        )
    )
    if existing is not None and existing.status is not DocumentStatus.ERRO:
        return existing, False
    if existing is not None:  # a failed ingestion: try again with the same row
        existing.status = DocumentStatus.PROCESSANDO
        existing.error = None
        existing.chunks_done = 0
        await session.flush()
        return existing, True
    document = KnowledgeDocument(
        cliente_id=cliente_id,
        title=title,
        content_type=content_type,
        content=content,
        sha256=digest,
        size_bytes=len(content.encode()),
        status=DocumentStatus.PROCESSANDO,
    )
    session.add(document)
    await session.flush()
    await session.refresh(document)
    return document, True


async def set_progress(
    session: AsyncSession,
    document_id: int,
    *,
    chunks_done: int,
    chunks_total: int,
    status: DocumentStatus = DocumentStatus.PROCESSANDO,
    error: str | None = None,
) -> None:
    await session.execute(
        update(KnowledgeDocument)
        .where(KnowledgeDocument.id == document_id)
        .values(
            chunks_done=chunks_done,
            chunks_total=chunks_total,
            status=status,
            error=error,
            updated_at=func.now(),
        )
    )


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


async def delete_all(session: AsyncSession, cliente_id: int) -> int:
    result = await session.execute(
        delete(KnowledgeDocument).where(KnowledgeDocument.cliente_id == cliente_id)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # a CursorResult


async def delete_document(session: AsyncSession, cliente_id: int, document_id: int) -> None:
    await session.execute(
        delete(KnowledgeDocument).where(
            KnowledgeDocument.id == document_id, KnowledgeDocument.cliente_id == cliente_id
        )
    )
