"""One cliente's Chroma collection: open it (on disk or on a Chroma server), store, query, reset.

It holds vectors only, keyed by the chunk's PostgreSQL id (`chunk{id}`); the text, section and
whether a chunk is still knowledge live in PostgreSQL (`engine.db.chunks`).

Vectors are always computed by Conversa's own `Embedder`: Chroma's default embedding function
would try to download a model at run time. An on-disk store gets a directory of its own and must
be opened by one process only (the cliente's retriever actor): two processes writing one
PersistentClient path silently lose vectors. A Chroma server (`CHROMA_URL`) is safe from any
number of nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


@dataclass
class ChromaStore:
    name: str
    client: Any
    collection: Any

    @classmethod
    def open(cls, name: str, *, chroma_dir: str | None, chroma_url: str | None) -> ChromaStore:
        import chromadb  # heavy: only a retriever's process loads it
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
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
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=settings)
        return cls(name, client, _get_or_create(client, name))

    def count(self) -> int:
        return int(self.collection.count())

    def nearest(self, vector: list[float], k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the `k` stored chunks closest to `vector`."""
        count = self.count()
        if count == 0 or k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector], n_results=min(k, count), include=["distances"]
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
        self.client.delete_collection(self.name)
        self.collection = _get_or_create(self.client, self.name)


def key_of(chunk_id: int) -> str:
    return f"chunk{chunk_id}"


def chunk_id_of(key: str) -> int:
    return int(key.removeprefix("chunk"))


def _get_or_create(client: Any, name: str) -> Any:
    return client.get_or_create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
