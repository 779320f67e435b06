"""A cliente's knowledge chunks in PostgreSQL: written at upload, embedded by its retriever, and
searched lexically with BM25 over a Portuguese full-text index.

PostgreSQL is the one source of truth for what is knowledge: a chunk is served (by either side of
the hybrid search) only while its row exists and its document is PRONTO. Every query is keyed by
cliente.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.chunking import Chunk
from engine.core.statuses import DocumentStatus
from engine.core.words import fold
from engine.db.models import KnowledgeChunk, KnowledgeDocument

TS_CONFIG = "portuguese"
# BM25's usual constants (Robertson & Zaragoza): term-frequency saturation and length norm.
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: int
    score: float  # BM25
    coverage: float  # IDF of the question's words this chunk has / IDF of all its words


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: int
    document_id: int
    chunk_index: int
    title: str
    section: str
    text: str


async def add_chunks(
    session: AsyncSession, cliente_id: int, document_id: int, chunks: Sequence[Chunk]
) -> int:
    """Write a document's chunks (not yet embedded); idempotent on (document, index)."""
    if not chunks:
        return 0
    rows = [
        {
            "cliente_id": cliente_id,
            "document_id": document_id,
            "chunk_index": index,
            "section": chunk.section[:300],
            "text": chunk.text,
            "tsv": func.to_tsvector(text(f"'{TS_CONFIG}'::regconfig"), fold(chunk.text)),
        }
        for index, chunk in enumerate(chunks)
    ]
    await session.execute(
        insert(KnowledgeChunk)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["document_id", "chunk_index"])
    )
    return len(rows)


async def unembedded(
    session: AsyncSession, document_id: int, *, limit: int
) -> list[tuple[int, str]]:
    """(chunk id, text) of a document's chunks still without a vector, in order."""
    rows = await session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.text)
        .where(KnowledgeChunk.document_id == document_id, KnowledgeChunk.embedded.is_(False))
        .order_by(KnowledgeChunk.chunk_index)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


async def mark_embedded(session: AsyncSession, chunk_ids: Sequence[int]) -> None:
    await session.execute(
        update(KnowledgeChunk).where(KnowledgeChunk.id.in_(chunk_ids)).values(embedded=True)
    )


async def count(session: AsyncSession, document_id: int) -> tuple[int, int]:
    """(embedded, total) chunks of a document."""
    row = (
        await session.execute(
            select(func.count().filter(KnowledgeChunk.embedded.is_(True)), func.count()).where(
                KnowledgeChunk.document_id == document_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def totals(session: AsyncSession, cliente_id: int) -> tuple[int, int]:
    """(chunks, of which embedded) of all of a cliente's documents."""
    row = (
        await session.execute(
            select(func.count(), func.count().filter(KnowledgeChunk.embedded.is_(True))).where(
                KnowledgeChunk.cliente_id == cliente_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def served(
    session: AsyncSession, cliente_id: int, chunk_ids: Sequence[int]
) -> dict[int, ChunkRow]:
    """The chunks among `chunk_ids` that are knowledge now: this cliente's, of a PRONTO document.
    A vector whose row is gone (its document deleted or replaced) is filtered out here."""
    if not chunk_ids:
        return {}
    rows = await session.execute(
        select(
            KnowledgeChunk.id,
            KnowledgeChunk.document_id,
            KnowledgeChunk.chunk_index,
            KnowledgeDocument.title,
            KnowledgeChunk.section,
            KnowledgeChunk.text,
        )
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(
            KnowledgeChunk.cliente_id == cliente_id,
            KnowledgeChunk.id.in_(chunk_ids),
            KnowledgeDocument.status == DocumentStatus.PRONTO,
        )
    )
    return {row[0]: ChunkRow(*row) for row in rows}


# BM25 in SQL: the question's lexemes OR-matched through the GIN index, then term frequency from
# each matching chunk's tsvector positions, IDF from how many of the cliente's served chunks hold
# each lexeme. A lexeme no chunk has still counts in the coverage's denominator (a question about
# something the documents never mention covers little).
_BM25 = text(
    f"""
WITH terms AS (
    SELECT DISTINCT lexeme FROM unnest(to_tsvector('{TS_CONFIG}'::regconfig, :question))
),
served AS (
    SELECT c.id, c.tsv, length(c.tsv) AS dl
    FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id
    WHERE c.cliente_id = :cliente_id AND d.status = 'PRONTO'
),
corpus AS (SELECT count(*) AS n, greatest(avg(dl), 1) AS avgdl FROM served),
query AS (
    SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS q FROM terms
),
hits AS (
    SELECT s.id, s.dl, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
    FROM served s CROSS JOIN query CROSS JOIN LATERAL unnest(s.tsv) AS u
    WHERE s.tsv @@ query.q AND u.lexeme IN (SELECT lexeme FROM terms)
),
idf AS (
    SELECT t.lexeme, ln(1 + (corpus.n - count(h.id) + 0.5) / (count(h.id) + 0.5)) AS idf
    FROM terms t CROSS JOIN corpus LEFT JOIN hits h ON h.lexeme = t.lexeme
    GROUP BY t.lexeme, corpus.n
),
total AS (SELECT greatest(sum(idf), 1e-9) AS idf FROM idf)
SELECT h.id,
       sum(idf.idf * h.tf * ({BM25_K1} + 1)
           / (h.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * h.dl / corpus.avgdl))) AS score,
       sum(idf.idf) / total.idf AS coverage
FROM hits h JOIN idf USING (lexeme) CROSS JOIN corpus CROSS JOIN total
GROUP BY h.id, total.idf
ORDER BY score DESC, h.id
LIMIT :limit
"""
)


async def lexical_search(
    session: AsyncSession, cliente_id: int, question: str, *, limit: int
) -> list[LexicalHit]:
    """The cliente's served chunks that share words with `question`, best BM25 first."""
    folded = fold(question)
    if not folded.strip() or limit <= 0:
        return []
    rows = await session.execute(
        _BM25, {"question": folded, "cliente_id": cliente_id, "limit": limit}
    )
    return [LexicalHit(int(r[0]), float(r[1]), float(r[2])) for r in rows]
