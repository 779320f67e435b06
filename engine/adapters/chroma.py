"""One cliente's Chroma collection: open it (on disk or on a Chroma server), store, query, reset.

It holds vectors only, keyed by the chunk's PostgreSQL id (`chunk{id}`); the text, section and
whether a chunk is still knowledge live in PostgreSQL (`engine.db.chunks`).

Vectors are always computed by Conversa's own `Embedder`: Chroma's default embedding function
would try to download a model at run time. An on-disk store gets a directory of its own and must
be opened by one process only (the cliente's retriever actor): two processes writing one
PersistentClient path silently lose vectors. A Chroma server (`CHROMA_URL`) is safe from any
number of nodes.

A collection (and an on-disk directory) records the uuid of the cliente it was made for
(`clientes.uuid`). Names are by cliente id, and ids come back after a database reset or restore:
a store made for another uuid is dropped on open, so a new cliente never inherits old vectors.
A store that records no uuid (made before Conversa kept one) is adopted by the cliente that
opens it.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

OWNER_KEY = "cliente_uuid"  # in the collection's metadata, and the directory's marker file name


@dataclass
class ChromaStore:
    name: str
    client: Any
    collection: Any
    path: Path | None = None  # the on-disk store's directory
    replaced: bool = False  # a store made for another cliente uuid was dropped on open

    @classmethod
    def open(
        cls, name: str, *, chroma_dir: str | None, chroma_url: str | None, owner: str
    ) -> ChromaStore:
        """Open (or create) the store of the cliente whose uuid is `owner`."""
        import chromadb  # heavy: only a retriever's process loads it
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        path = None
        replaced = False
        if chroma_url:
            url = urlparse(chroma_url)
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=settings,
            )
        else:
            assert chroma_dir is not None, "an on-disk store needs a directory"
            path = Path(chroma_dir) / name
            replaced = _claim_directory(path, owner)
            client = chromadb.PersistentClient(path=str(path), settings=settings)
        collection, dropped = _owned_collection(client, name, owner)
        return cls(name, client, collection, path, replaced or dropped)

    def count(self) -> int:
        return int(self.collection.count())

    def nearest(self, vector: list[float], k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the `k` stored chunks closest to `vector`.
        Fewer when fewer are stored: Chroma 1.5 returns what it has (none for an empty
        collection), so no count first (a round trip to the store on every search)."""
        if k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector], n_results=k, include=["distances"]
        )
        return [
            (chunk_id_of(key), 1.0 - float(distance))
            for key, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def similarities(self, vector: list[float], chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of `vector` to each of these stored chunks (missing ones left out)."""
        if not chunk_ids:
            return {}
        stored = self.collection.get(ids=[key_of(i) for i in chunk_ids], include=["embeddings"])
        out = {}
        for key, embedding in zip(stored["ids"], stored["embeddings"], strict=True):
            dot = sum(a * b for a, b in zip(vector, embedding, strict=True))
            norm = math.sqrt(sum(a * a for a in vector) * sum(b * b for b in embedding)) or 1.0
            out[chunk_id_of(key)] = dot / norm
        return out

    def upsert(
        self,
        chunk_ids: list[int],
        vectors: list[list[float]],
        *,
        document_id: int,
        cliente_id: int,
    ) -> None:
        """Store chunk vectors under their PostgreSQL ids, so a retry overwrites."""
        self.collection.upsert(
            ids=[key_of(i) for i in chunk_ids],
            embeddings=vectors,
            metadatas=[{"document_id": document_id, "cliente_id": cliente_id} for _ in chunk_ids],
        )

    def delete_document(self, document_id: int) -> None:
        self.collection.delete(where={"document_id": document_id})

    def reset(self) -> None:
        """Drop the collection and start an empty one (`deletar_vectorstore_cliente`)."""
        owner = (self.collection.metadata or {}).get(OWNER_KEY)
        self.client.delete_collection(self.name)
        self.collection = _create(self.client, self.name, owner)

    def drop(self) -> None:
        """The cliente is being deleted: its collection and its directory go, nothing is left."""
        try:
            self.client.delete_collection(self.name)
        except Exception as e:  # already gone (a resumed deletion)
            log.info("collection already gone", extra={"collection": self.name, "error": repr(e)})
        if self.path is not None:
            self.client.clear_system_cache()
            shutil.rmtree(self.path, ignore_errors=True)


def key_of(chunk_id: int) -> str:
    return f"chunk{chunk_id}"


def chunk_id_of(key: str) -> int:
    return int(key.removeprefix("chunk"))


def _claim_directory(path: Path, owner: str) -> bool:
    """Make `path` the directory of `owner`'s store; True if another cliente's was removed."""
    marker = path / OWNER_KEY
    replaced = False
    if marker.exists() and marker.read_text().strip() != owner:
        from chromadb.api.client import SharedSystemClient

        log.warning("store made for another cliente uuid: dropped", extra={"path": str(path)})
        SharedSystemClient.clear_system_cache()  # a client of this process may hold its files
        shutil.rmtree(path)
        replaced = True
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text(owner)
    return replaced


def _owned_collection(client: Any, name: str, owner: str) -> tuple[Any, bool]:
    """The collection `name` of `owner` (created if missing); True if another uuid's was
    dropped first. One made before uuids were kept is adopted."""
    existing = {c.name if hasattr(c, "name") else str(c) for c in client.list_collections()}
    if name not in existing:
        return _create(client, name, owner), False
    collection = client.get_collection(name, embedding_function=None)
    recorded = (collection.metadata or {}).get(OWNER_KEY)
    if recorded == owner:
        return collection, False
    if recorded is None:
        collection.modify(metadata={**(collection.metadata or {}), OWNER_KEY: owner})
        return collection, False
    log.warning("collection made for another cliente uuid: dropped", extra={"collection": name})
    client.delete_collection(name)
    return _create(client, name, owner), True


def _create(client: Any, name: str, owner: str | None) -> Any:
    return client.get_or_create_collection(
        name,
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={OWNER_KEY: owner} if owner else None,
    )
