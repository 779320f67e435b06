"""One cliente's Chroma collection: open it (on disk or on a Chroma server), store, query, reset.

Vectors are always computed by Conversa's own `Embedder`: Chroma's default embedding function
would try to download a model at run time. An on-disk store gets a directory of its own and must
be opened by one process only (the cliente's retriever actor): two processes writing one
PersistentClient path silently lose vectors. A Chroma server (`CHROMA_URL`) is safe from any
number of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engine.core.prompt import Passage


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

    def nearest(self, vector: list[float], k: int) -> list[Passage]:
        """The `k` stored chunks closest to `vector` (fewer if the collection holds fewer)."""
        count = self.count()
        if count == 0 or k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector],
            n_results=min(k, count),
            include=["documents", "metadatas", "distances"],
        )
        passages = []
        for text, meta, distance in zip(
            result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        ):
            meta = meta or {}
            passages.append(
                Passage(
                    text=text,
                    document_id=meta.get("document_id"),
                    chunk_index=int(meta.get("chunk", 0)),
                    distance=float(distance),
                )
            )
        return passages

    def upsert(
        self,
        document_id: int,
        chunks: list[str],
        vectors: list[list[float]],
        *,
        first_index: int,
        cliente_id: int,
    ) -> None:
        """Store chunks `first_index…` of a document; ids are stable, so a retry overwrites."""
        indexes = range(first_index, first_index + len(chunks))
        self.collection.upsert(
            ids=[f"doc{document_id}-chunk{i}" for i in indexes],
            documents=chunks,
            embeddings=vectors,
            metadatas=[
                {"document_id": document_id, "chunk": i, "cliente_id": cliente_id} for i in indexes
            ],
        )

    def delete_document(self, document_id: int) -> None:
        """Remove every chunk of one document."""
        self.collection.delete(where={"document_id": document_id})

    def reset(self) -> None:
        """Drop the collection and start an empty one (`deletar_vectorstore_cliente`)."""
        self.client.delete_collection(self.name)
        self.collection = _get_or_create(self.client, self.name)


def _get_or_create(client: Any, name: str) -> Any:
    return client.get_or_create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
