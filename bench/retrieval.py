"""Retrieval quality on the pt-BR evaluation set (`bench/retrieval_data/`), per method and chunk
size, and the calibration of the "I don't know" threshold.

    .venv/bin/python bench/retrieval.py [--sizes 400,800,1200] [--json out.json]

Every business's documents are chunked by Conversa's own chunker (`chunk_document`, headings and
paragraphs, section title on each chunk) and embedded with the production model (multilingual
USE v3). For each customer question it ranks the business's chunks by:

- dense: cosine similarity to the question's embedding (exact; Chroma's HNSW is exact at this
  size);
- lexical (PostgreSQL BM25): Conversa's own SQL (`engine.db.chunks.lexical_search`) in a scratch
  database migrated by the Alembic scripts;
- lexical (PostgreSQL ts_rank_cd): PostgreSQL's built-in ranking over the same index;
- lexical (bm25s): a per-cliente in-memory BM25 index (`bm25s` + PyStemmer Portuguese), only if
  those packages are installed (they are not dependencies of Conversa);
- hybrid: reciprocal rank fusion (`engine.core.fusion`) of dense and a lexical ranking, with the
  candidate depth production uses.

A chunk is relevant when it contains the question's expected answer (`contains_answer`). It
prints hit@1, hit@4 and MRR (over the top 20) per method and chunk size, then calibrates the
relevance gate (`engine.core.relevance`) on the production configuration: for the in-scope
questions, the out-of-scope ones and the cross-tenant traps, the best passage's
`similarity + w × coverage` among the top 4 hybrid passages, and the (w, threshold) that best
separates "answer" (an in-scope question whose answer is in those 4 passages) from "hand off"
(out of scope, a cross-tenant trap, or an in-scope question retrieval missed), by balanced
accuracy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.retrieval_dataset import Business, contains_answer, load_retrieval_dataset  # noqa: E402
from engine.core.chunking import Chunk, chunk_document  # noqa: E402
from engine.core.fusion import reciprocal_rank_fusion  # noqa: E402
from engine.core.words import fold  # noqa: E402
from engine.services.retrieval import CANDIDATES_MIN  # noqa: E402

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEPTH = 20  # ranks looked at for MRR, and the candidates each side gives the fusion (production)
TOP_K = 4  # passages production gives the model (RETRIEVAL_TOP_K)
OVERLAP_RATIO = 0.15


@dataclass
class Corpus:
    """One business chunked at one size, with everything each method needs."""

    business: Business
    size: int
    chunks: list[Chunk]
    ids: list[int]  # knowledge_chunks ids, one per chunk
    vectors: np.ndarray  # (chunks, dim), L2-normalised
    cliente_id: int


@dataclass(frozen=True)
class Probe:
    """A question asked to one business: `answer` None when the documents cannot answer it."""

    text: str
    answer: str | None


# --------------------------------------------------------------------------- metrics


def ranks_of(ranking: Sequence[int], corpus: Corpus, answer: str) -> int | None:
    """1-based rank of the first relevant chunk in `ranking` (chunk positions), or None."""
    for rank, position in enumerate(ranking[:DEPTH], start=1):
        if contains_answer(corpus.chunks[position].text, answer):
            return rank
    return None


def summarize(found: list[int | None]) -> dict[str, float]:
    n = len(found)
    return {
        "hit@1": sum(1 for r in found if r == 1) / n,
        "hit@4": sum(1 for r in found if r is not None and r <= TOP_K) / n,
        "mrr": sum(1 / r for r in found if r is not None) / n,
    }


# --------------------------------------------------------------------------- methods


def dense_ranking(corpus: Corpus, question_vector: np.ndarray) -> tuple[list[int], np.ndarray]:
    similarities = corpus.vectors @ question_vector
    return list(np.argsort(-similarities, kind="stable")), similarities


async def pg_bm25(session: Any, corpus: Corpus, question: str) -> list[tuple[int, float, float]]:
    """(position, BM25 score, coverage) best first, through Conversa's production query."""
    from engine.db import chunks as chunks_db

    hits = await chunks_db.lexical_search(session, corpus.cliente_id, question, limit=DEPTH)
    position = {chunk_id: i for i, chunk_id in enumerate(corpus.ids)}
    return [(position[h.chunk_id], h.score, h.coverage) for h in hits]


async def pg_ts_rank(session: Any, corpus: Corpus, question: str) -> list[int]:
    from sqlalchemy import text

    rows = await session.execute(
        text(
            """
            WITH q AS (SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS q
                       FROM unnest(to_tsvector('portuguese', :question)))
            SELECT c.id FROM knowledge_chunks c, q
            WHERE c.cliente_id = :cliente_id AND c.tsv @@ q.q
            ORDER BY ts_rank_cd(c.tsv, q.q) DESC, c.id LIMIT :limit
            """
        ),
        {"question": fold(question), "cliente_id": corpus.cliente_id, "limit": DEPTH},
    )
    position = {chunk_id: i for i, chunk_id in enumerate(corpus.ids)}
    return [position[row[0]] for row in rows]


class Bm25s:
    """bm25s over the folded, Portuguese-stemmed chunk texts (None when not installed)."""

    def __init__(self, corpus: Corpus):
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("portuguese")
        self._retriever = bm25s.BM25()
        texts = [fold(c.text) for c in corpus.chunks]
        self._retriever.index(
            bm25s.tokenize(texts, stopwords="pt", stemmer=self._stemmer, show_progress=False),
            show_progress=False,
        )
        self._n = len(texts)

    def rank(self, question: str) -> list[int]:
        tokens = self._bm25s.tokenize(
            [fold(question)], stopwords="pt", stemmer=self._stemmer, show_progress=False
        )
        if not tokens.vocab:
            return []
        results, scores = self._retriever.retrieve(
            tokens, k=min(DEPTH, self._n), show_progress=False
        )
        return [int(p) for p, s in zip(results[0], scores[0], strict=True) if s > 0]


def bm25s_available() -> bool:
    try:
        import bm25s  # noqa: F401
        import Stemmer  # noqa: F401
    except ImportError:
        return False
    return True


def score_fusion(
    dense: list[int], similarity: np.ndarray, bm25: list[tuple[int, float, float]]
) -> list[int]:
    """The alternative to RRF measured beside it: 0.5 × cosine + 0.5 × BM25 / the query's best
    BM25, over the same candidates (tuned on this set, so its small gain may not generalise)."""
    top = max((score for _, score, _ in bm25), default=1.0) or 1.0
    lexical = {p: score / top for p, score, _ in bm25}
    candidates = set(dense[:CANDIDATES_MIN]) | set(lexical)
    return sorted(candidates, key=lambda p: (-(0.5 * similarity[p] + 0.5 * lexical.get(p, 0.0)), p))


def fuse(*rankings: Sequence[int]) -> list[int]:
    return [p for p, _ in reciprocal_rank_fusion([list(r[:CANDIDATES_MIN]) for r in rankings])]


# --------------------------------------------------------------------------- setup


async def store_corpus(
    sessions: Any, corpus_chunks: list[Chunk], business: Business
) -> tuple[int, list[int]]:
    """A cliente with one PRONTO document holding these chunks; (cliente id, chunk ids)."""
    from sqlalchemy import select

    from engine.core.statuses import ClienteStatus, DocumentStatus
    from engine.db import chunks as chunks_db
    from engine.db.models import Cliente, KnowledgeChunk, KnowledgeDocument

    async with sessions() as session:
        cliente = Cliente(nome=business.name, status=ClienteStatus.ATIVO)
        session.add(cliente)
        await session.flush()
        document = KnowledgeDocument(
            cliente_id=cliente.id,
            title=business.slug,
            content_type="markdown",
            content="",
            sha256=f"{business.slug}-{len(corpus_chunks)}-{cliente.id}",
            size_bytes=0,
            status=DocumentStatus.PRONTO,
            chunks_total=len(corpus_chunks),
        )
        session.add(document)
        await session.flush()
        await chunks_db.add_chunks(session, cliente.id, document.id, corpus_chunks)
        ids = list(
            await session.scalars(
                select(KnowledgeChunk.id)
                .where(KnowledgeChunk.document_id == document.id)
                .order_by(KnowledgeChunk.chunk_index)
            )
        )
        await session.commit()
        return cliente.id, ids


def chunks_of(business: Business, size: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for document in business.documents:
        chunks += chunk_document(document.text, size=size, overlap=int(size * OVERLAP_RATIO))
    return chunks


def probes_of(business: Business) -> tuple[list[Probe], list[Probe]]:
    """(in-scope questions, questions it cannot answer: out of scope and cross-tenant traps)."""
    answerable = [Probe(q.q, q.expected.answer) for q in business.questions]
    unanswerable = [Probe(q, None) for q in business.out_of_scope]
    unanswerable += [Probe(t.q, None) for t in business.cross_tenant]
    return answerable, unanswerable


# --------------------------------------------------------------------------- run


async def run(sizes: list[int], database_url: str, production_size: int) -> dict[str, Any]:
    from engine.adapters.embeddings import Usem3Embeddings
    from engine.db.session import create_engine, session_factory

    dataset = load_retrieval_dataset()
    model = Usem3Embeddings()
    engine = create_engine(database_url, pool_size=2)
    sessions = session_factory(engine)
    with_bm25s = bm25s_available()
    embed_cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        todo = [t for t in texts if t not in embed_cache]
        for start in range(0, len(todo), 16):
            batch = todo[start : start + 16]
            for text, vector in zip(batch, model.embed(batch), strict=True):
                v = np.asarray(vector, dtype=np.float64)
                embed_cache[text] = v / (np.linalg.norm(v) or 1.0)
        return np.stack([embed_cache[t] for t in texts])

    results: dict[str, Any] = {"sizes": {}, "calibration": None, "counts": {}}
    signals: list[tuple[bool, list[tuple[float, float]]]] = []  # (answerable, top-4 signals)
    extractive: list[tuple[bool, int, int]] = []  # (answer in reply, reply chars, 2 chunks chars)
    started = time.monotonic()
    for size in sizes:
        found: dict[str, list[int | None]] = {}
        chunk_count = 0
        for business in dataset.businesses:
            chunks = chunks_of(business, size)
            chunk_count += len(chunks)
            cliente_id, ids = await store_corpus(sessions, chunks, business)
            corpus = Corpus(
                business, size, chunks, ids, embed([c.text for c in chunks]), cliente_id
            )
            sparse = Bm25s(corpus) if with_bm25s else None
            answerable, unanswerable = probes_of(business)
            vectors = embed([p.text for p in answerable + unanswerable])
            async with sessions() as session:
                for probe, vector in zip(answerable + unanswerable, vectors, strict=True):
                    dense, similarity = dense_ranking(corpus, vector)
                    bm25 = await pg_bm25(session, corpus, probe.text)
                    lexical = [p for p, _, _ in bm25]
                    rankings = {
                        "dense (USE v3)": dense,
                        "lexical: PostgreSQL BM25": lexical,
                        "lexical: PostgreSQL ts_rank_cd": await pg_ts_rank(
                            session, corpus, probe.text
                        ),
                        "hybrid: dense + PostgreSQL BM25 (RRF)": fuse(dense, lexical),
                    }
                    rankings["hybrid: score fusion 0.5 cos + 0.5 BM25/max"] = score_fusion(
                        dense, similarity, bm25
                    )
                    if sparse is not None:
                        bm25s_ranking = sparse.rank(probe.text)
                        rankings["lexical: bm25s"] = bm25s_ranking
                        rankings["hybrid: dense + bm25s (RRF)"] = fuse(dense, bm25s_ranking)
                    if probe.answer is not None:
                        for method, ranking in rankings.items():
                            found.setdefault(method, []).append(
                                ranks_of(ranking, corpus, probe.answer)
                            )
                    if size == production_size:
                        coverage = {p: c for p, _, c in bm25}
                        top = rankings["hybrid: dense + PostgreSQL BM25 (RRF)"][:TOP_K]
                        # Answerable from these passages: an in-scope question whose answer is
                        # in the top 4. A miss is better handed off than answered wrongly.
                        answerable_here = probe.answer is not None and any(
                            contains_answer(corpus.chunks[p].text, probe.answer) for p in top
                        )
                        signals.append(
                            (
                                answerable_here,
                                [(float(similarity[p]), coverage.get(p, 0.0)) for p in top],
                            )
                        )
                        if answerable_here:
                            assert probe.answer is not None
                            extractive.append(offline_check(corpus, top, probe))
        results["sizes"][size] = {m: summarize(f) for m, f in found.items()}
        results["counts"][size] = {
            "chunks": chunk_count,
            "questions": len(next(iter(found.values()))),
        }
    results["calibration"] = calibrate(signals)
    results["offline_reply"] = {
        "questions": len(extractive),
        "answer_in_reply": sum(ok for ok, _, _ in extractive) / max(len(extractive), 1),
        "mean_reply_chars": sum(n for _, n, _ in extractive) / max(len(extractive), 1),
        "mean_two_chunks_chars": sum(n for _, _, n in extractive) / max(len(extractive), 1),
    }
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    await engine.dispose()
    return results


def offline_check(corpus: Corpus, top: list[int], probe: Probe) -> tuple[bool, int, int]:
    """The extractive offline reply for a question whose answer is in its 4 passages: does the
    reply hold every word of the expected answer, and how long is it against the two whole
    chunks the old reply sent?"""
    from engine.core.prompt import OFFLINE_PREFIX, Passage, offline_reply

    passages = [
        Passage(corpus.chunks[p].text, None, p, section=corpus.chunks[p].section) for p in top
    ]
    reply = offline_reply(probe.text, passages).removeprefix(OFFLINE_PREFIX).strip()
    assert probe.answer is not None
    two_chunks = sum(len(corpus.chunks[p].text) for p in top[:2])
    # Word by word (folded): the reply re-renders table rows ("Sabor — Broto: R$ 40,00") and drops
    # Markdown, so the answer's exact characters may differ while all its words are there.
    words = set(re.findall(r"\w+", fold(reply)))
    held = all(w in words for w in re.findall(r"\w+", fold(probe.answer)))
    return held, len(reply), two_chunks


def calibrate(signals: list[tuple[bool, list[tuple[float, float]]]]) -> dict[str, Any]:
    """The (coverage weight, threshold) with the best balanced accuracy between answering the
    in-scope questions and handing off the others; ties go to the lower threshold."""
    table = []
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        scores = [
            (answerable, max((s + weight * c for s, c in top), default=-1.0))
            for answerable, top in signals
        ]
        positives = [s for a, s in scores if a]
        negatives = [s for a, s in scores if not a]
        best: dict[str, float] | None = None
        for threshold in sorted({round(s, 3) for _, s in scores}):
            answered = sum(1 for s in positives if s >= threshold) / len(positives)
            handed_off = sum(1 for s in negatives if s < threshold) / len(negatives)
            balanced = (answered + handed_off) / 2
            if best is None or balanced > best["balanced_accuracy"]:
                best = {
                    "coverage_weight": weight,
                    "threshold": threshold,
                    "in_scope_answered": answered,
                    "out_of_scope_handed_off": handed_off,
                    "balanced_accuracy": balanced,
                }
        assert best is not None
        table.append(best)
    chosen = max(table, key=lambda row: (row["balanced_accuracy"], -row["coverage_weight"]))
    return {
        "in_scope": sum(1 for a, _ in signals if a),
        "unanswerable": sum(1 for a, _ in signals if not a),
        "by_weight": table,
        "chosen": chosen,
    }


def print_report(results: dict[str, Any]) -> None:
    for size, counts in results["counts"].items():
        print(f"chunk size {size}: {counts['chunks']} chunks, {counts['questions']} questions")
    print()
    print("| method | chunk size | hit@1 | hit@4 | MRR |")
    print("|---|---|---|---|---|")
    for size, methods in results["sizes"].items():
        for method, m in methods.items():
            print(f"| {method} | {size} | {m['hit@1']:.2f} | {m['hit@4']:.2f} | {m['mrr']:.2f} |")
    calibration = results["calibration"]
    print()
    print(
        f"Relevance gate ({calibration['in_scope']} questions answerable from the top 4, "
        f"{calibration['unanswerable']} out of scope, cross-tenant or missed):"
    )
    print("| coverage weight | threshold | answerable answered | others handed off |")
    print("|---|---|---|---|")
    for row in calibration["by_weight"]:
        print(
            f"| {row['coverage_weight']} | {row['threshold']:.3f} | "
            f"{row['in_scope_answered']:.2f} | {row['out_of_scope_handed_off']:.2f} |"
        )
    chosen = calibration["chosen"]
    print(
        f"chosen: RELEVANCE_COVERAGE_WEIGHT={chosen['coverage_weight']} "
        f"RELEVANCE_MIN_SCORE={chosen['threshold']:.3f}"
    )
    offline = results["offline_reply"]
    print(
        f"extractive offline reply: holds every word of the expected answer for "
        f"{offline['answer_in_reply']:.2f}"
        f" of the {offline['questions']} questions whose answer is in the 4 passages; "
        f"{offline['mean_reply_chars']:.0f} characters on average "
        f"(the two whole chunks: {offline['mean_two_chunks_chars']:.0f})"
    )
    print(f"elapsed {results['elapsed_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="400,800,1200", help="chunk sizes, characters")
    parser.add_argument("--production-size", type=int, default=800, help="calibrated on this")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", SYSTEM_PG),
        help="server to create the scratch database in",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from engine.db import migrate
    from tests.support.postgres import create_database, drop_database

    sizes = [int(s) for s in args.sizes.split(",")]
    name, url = create_database(args.postgres_url, "bench_retrieval")
    try:
        migrate.upgrade(url)
        results = asyncio.run(run(sizes, url, args.production_size))
    finally:
        drop_database(args.postgres_url, name)
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
