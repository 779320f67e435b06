"""What a cliente's retriever actor holds: its Chroma store, a small PostgreSQL pool, the hybrid
search and the ingestion over them (built here so the actor module stays cheap to import).

The store is opened (`open`) only once the cliente's uuid is read from PostgreSQL: the store
records it, and one made for another cliente that had this id before is never served."""

from __future__ import annotations

import asyncio
import importlib
import logging

from engine.adapters.chroma import ChromaStore
from engine.db import clientes as clientes_db
from engine.db import knowledge as knowledge_db
from engine.db.session import create_engine, session_factory
from engine.services.ingestion import Embed, Ingestion
from engine.services.retrieval import HybridSearch

log = logging.getLogger(__name__)


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
        self._collection = collection
        self._chroma_dir = chroma_dir
        self._chroma_url = chroma_url
        self._embed = embed
        self._engine = create_engine(database_url, pool_size=db_pool_size)
        self._sessions = session_factory(self._engine)
        self._store: ChromaStore | None = None
        self._search: HybridSearch | None = None
        self._ingestion: Ingestion | None = None

    async def open(self) -> None:
        """Open the cliente's store as its current uuid's (NotFound: the cliente is gone)."""
        # Chroma's import takes most of a second: overlapped with the uuid's query.
        owner, _ = await asyncio.gather(
            self._owner(), asyncio.to_thread(importlib.import_module, "chromadb")
        )
        store = await asyncio.to_thread(
            ChromaStore.open,
            self._collection,
            chroma_dir=self._chroma_dir,
            chroma_url=self._chroma_url,
            owner=owner,
        )
        if store.replaced:
            log.warning(
                "vectors of a former cliente with this id dropped",
                extra={"cliente_id": self._cliente_id},
            )
        self._store = store
        self._search = HybridSearch(
            self._cliente_id, sessions=self._sessions, store=store, embed=self._embed
        )
        self._ingestion = Ingestion(
            self._cliente_id, sessions=self._sessions, store=store, embed=self._embed
        )

    async def _owner(self) -> str:
        async with self._sessions() as session:
            return str((await clientes_db.get_cliente(session, self._cliente_id)).uuid)

    @property
    def search(self) -> HybridSearch:
        assert self._search is not None, "open() first"
        return self._search

    @property
    def ingestion(self) -> Ingestion:
        assert self._ingestion is not None, "open() first"
        return self._ingestion

    async def processing(self) -> list[int]:
        """This cliente's documents still PROCESSANDO (to resume)."""
        async with self._sessions() as session:
            return await knowledge_db.processing(session, self._cliente_id)

    async def vector_count(self) -> int:
        assert self._store is not None, "open() first"
        return await asyncio.to_thread(self._store.count)

    async def drop(self) -> int:
        """The cliente is being deleted: its documents and chunks, its collection and its
        directory. Returns how many documents were deleted."""
        deleted = await self.ingestion.delete_all()
        assert self._store is not None
        await asyncio.to_thread(self._store.drop)
        return deleted

    async def close(self) -> None:
        await self._engine.dispose()
