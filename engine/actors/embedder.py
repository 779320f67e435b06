"""`Embedder`: the one actor per cluster that holds the embedding model for every cliente.

Conversation and retriever actors stay light by never loading a model; they ask this actor.
"""

from __future__ import annotations

import asyncio

import ray

from engine.adapters.embeddings import load_embeddings
from engine.config import EmbeddingModel
from engine.core.naming import EMBEDDER_NAME

BATCH = 8  # small batches so a query never waits long behind a document being ingested


@ray.remote(num_cpus=0, max_restarts=-1)  # stateless: restarted on another node if its dies
class Embedder:
    """One per cluster: holds the model once for every cliente's retriever."""

    def __init__(self, model: str):
        self._model = load_embeddings(EmbeddingModel(model))
        self._lock = asyncio.Lock()  # one forward pass at a time: numpy already uses both cores

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            async with self._lock:
                vectors += await asyncio.to_thread(self._model.embed, texts[start : start + BATCH])
        return vectors


def embedder_handle(*, model: EmbeddingModel, namespace: str) -> ray.actor.ActorHandle:
    return Embedder.options(  # type: ignore[attr-defined]
        name=EMBEDDER_NAME, namespace=namespace, lifetime="detached", get_if_exists=True
    ).remote(model.value)
