"""What a cliente's retriever actor holds: its Chroma store, a small PostgreSQL pool, the hybrid
search and the ingestion over them (built here so the actor module stays cheap to import)."""

from __future__ import annotations

import asyncio

from engine.adapters.chroma import ChromaStore
from engine.db import knowledge as knowledge_db
from engine.db.session import create_engine, session_factory
from engine.services.ingestion import Embed, Ingestion
from engine.services.retrieval import HybridSearch


class TenantKnowledge:
    def __init__(
        self,
        cliente_id: int,
        *,
        collection: str,
        chroma_dir: str | None,
        chroma_url: str | None,
        database_url: str,
        db_pool_size: int,
        embed: Embed,
    ):
        self._cliente_id = cliente_id
        store = ChromaStore.open(collection, chroma_dir=chroma_dir, chroma_url=chroma_url)
        self._store = store
        self._engine = create_engine(database_url, pool_size=db_pool_size)
        self._sessions = session_factory(self._engine)
        self.search = HybridSearch(cliente_id, sessions=self._sessions, store=store, embed=embed)
        self.ingestion = Ingestion(cliente_id, sessions=self._sessions, store=store, embed=embed)

    async def processing(self) -> list[int]:
        """This cliente's documents still PROCESSANDO (to resume)."""
        async with self._sessions() as session:
            return await knowledge_db.processing(session, self._cliente_id)

    async def vector_count(self) -> int:
        return await asyncio.to_thread(self._store.count)

    async def close(self) -> None:
        await self._engine.dispose()
