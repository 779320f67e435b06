"""Hybrid search over one cliente's knowledge, run inside its retriever actor.

Dense: the question's embedding against the cliente's Chroma collection. Lexical: BM25 over the
cliente's chunks in PostgreSQL (`engine.db.chunks`). The two rankings are fused by reciprocal
rank (`engine.core.fusion`); measured in `bench/retrieval.py` (README, "Retrieval"). Only chunks
PostgreSQL still serves (their document PRONTO) come back, with the signals the relevance
threshold reads (`similarity`, `coverage`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters.chroma import ChromaStore
from engine.core.fusion import reciprocal_rank_fusion
from engine.core.prompt import Passage
from engine.db import chunks as chunks_db

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

# Candidates each side contributes to the fusion: deep enough that a chunk ranked low by one
# side but high by the other is still seen, small enough to stay a few milliseconds.
CANDIDATES_MIN = 20
CANDIDATES_PER_RESULT = 5


class HybridSearch:
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

    async def search(self, question: str, k: int) -> list[Passage]:
        """The `k` passages that best answer `question`, best first."""
        if not question.strip() or k <= 0:
            return []
        depth = max(CANDIDATES_MIN, CANDIDATES_PER_RESULT * k)
        # The words need no embedding: their side runs while the question is embedded.
        lexical_side = asyncio.ensure_future(self._lexical(question, depth))
        try:
            [vector] = await self._embed([question])
            dense = await asyncio.to_thread(self._store.nearest, vector, depth)
            lexical = await lexical_side
        finally:
            lexical_side.cancel()  # a no-op once awaited; else the other side failed
        similarity = dict(dense)
        lexical_by_id = {hit.chunk_id: hit for hit in lexical}
        fused = reciprocal_rank_fusion(
            [[chunk_id for chunk_id, _ in dense], [hit.chunk_id for hit in lexical]]
        )
        # Every candidate is checked: some may belong to a document being deleted or replaced.
        candidates = [chunk_id for chunk_id, _ in fused]
        async with self._sessions() as session:
            rows = await chunks_db.served(session, self._cliente_id, candidates)
        chosen = [(chunk_id, score) for chunk_id, score in fused if chunk_id in rows][:k]
        missing = [chunk_id for chunk_id, _ in chosen if chunk_id not in similarity]
        if missing:  # found by words only: how close is it in meaning?
            similarity |= await asyncio.to_thread(self._store.similarities, vector, missing)
        passages = []
        for chunk_id, score in chosen:
            row, hit = rows[chunk_id], lexical_by_id.get(chunk_id)
            passages.append(
                Passage(
                    text=row.text,
                    document_id=row.document_id,
                    chunk_index=row.chunk_index,
                    title=row.title,
                    section=row.section,
                    chunk_id=chunk_id,
                    similarity=round(similarity.get(chunk_id, 0.0), 4),
                    coverage=round(hit.coverage if hit else 0.0, 4),
                    score=round(score, 6),
                )
            )
        return passages

    async def _lexical(self, question: str, depth: int) -> list[chunks_db.LexicalHit]:
        async with self._sessions() as session:
            return await chunks_db.lexical_search(session, self._cliente_id, question, limit=depth)
