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
INSERT_ROWS = 1000  # chunks per INSERT statement


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
    for start in range(0, len(rows), INSERT_ROWS):  # PostgreSQL takes at most 32,767 parameters
        await session.execute(
            insert(KnowledgeChunk)
            .values(rows[start : start + INSERT_ROWS])
            .on_conflict_do_nothing(index_elements=["document_id", "chunk_index"])
        )
    return len(rows)


async def unembedded(session: AsyncSession, document_id: int) -> list[tuple[int, str]]:
    """(chunk id, text) of a document's chunks still without a vector, in order."""
    rows = await session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.text)
        .where(KnowledgeChunk.document_id == document_id, KnowledgeChunk.embedded.is_(False))
        .order_by(KnowledgeChunk.chunk_index)
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


# BM25 in SQL, in steps that stay fast for thousands of chunks: (1) for each of the question's
# lexemes, the cliente's chunks holding it, through the GIN index (their count is its document
# frequency, hence its IDF); (2) the chunks of PRONTO documents ranked by the IDF they cover and
# the best CANDIDATES kept; (3) those few get exact BM25 from their tsvector's positions (term
# frequency) and stored length. A lexeme no chunk has still counts in the coverage's denominator:
# a question about something the documents never mention covers little.
CANDIDATES = 100
_BM25 = text(
    f"""
WITH terms AS (
    SELECT DISTINCT lexeme, to_tsquery('simple', quote_literal(lexeme)) AS q
    FROM unnest(to_tsvector('{TS_CONFIG}'::regconfig, :question))
),
matches AS (
    SELECT t.lexeme, m.id, m.document_id
    FROM terms t CROSS JOIN LATERAL (
        SELECT c.id, c.document_id FROM knowledge_chunks c
        WHERE c.cliente_id = :cliente_id AND c.tsv @@ t.q
    ) AS m
),
corpus AS (
    SELECT count(*) AS n, greatest(avg(lexemes), 1) AS avgdl
    FROM knowledge_chunks WHERE cliente_id = :cliente_id
),
idf AS (
    SELECT t.lexeme, ln(1 + (corpus.n - count(m.id) + 0.5) / (count(m.id) + 0.5)) AS idf
    FROM terms t CROSS JOIN corpus LEFT JOIN matches m ON m.lexeme = t.lexeme
    GROUP BY t.lexeme, corpus.n
),
total AS (SELECT greatest(sum(idf), 1e-9) AS idf FROM idf),
candidates AS (
    SELECT m.id, sum(idf.idf) AS covered
    FROM matches m JOIN idf USING (lexeme)
    WHERE m.document_id IN (
        SELECT id FROM knowledge_documents
        WHERE cliente_id = :cliente_id AND status = 'PRONTO'
    )
    GROUP BY m.id
    ORDER BY covered DESC, m.id
    LIMIT {CANDIDATES}
)
SELECT c.id,
       sum(idf.idf * u.tf * ({BM25_K1} + 1)
           / (u.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * c.lexemes / corpus.avgdl))) AS score,
       min(cand.covered) / min(total.idf) AS coverage
FROM candidates cand
JOIN knowledge_chunks c ON c.id = cand.id
CROSS JOIN LATERAL (
    SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf FROM unnest(c.tsv)
) AS u
JOIN idf ON idf.lexeme = u.lexeme
CROSS JOIN corpus CROSS JOIN total
GROUP BY c.id
ORDER BY score DESC, c.id
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
