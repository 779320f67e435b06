"""Reciprocal rank fusion: one ranking out of several (dense and lexical), by rank alone.

Scores from different retrievers are not comparable (a cosine similarity, a BM25 sum), ranks
are. RRF (Cormack, Clarke & Büttcher, 2009) gives each item Σ 1 / (k + rank) over the rankings
it appears in; k = 60 is the paper's value and damps the weight of the very first places.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

RRF_K = 60

T = TypeVar("T", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[T, float]]:
    """Items of all `rankings` (best first, no duplicates within one) ordered by fused score,
    best first; ties keep the order in which items were first seen."""
    if weights is not None and len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[T, float] = {}
    for position, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[position]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
