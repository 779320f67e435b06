"""Whether what was retrieved can answer the question at all, or the bot should say it does not
know and hand the chat to a human.

Each passage carries two signals: `similarity`, the cosine between the question's and the
passage's embeddings, and `coverage`, the share of the question's informative words (weighted by
their rarity in the cliente's documents, BM25's IDF) that the passage contains. A question is
answerable when some passage has `similarity + coverage_weight × coverage >= min_score`. The two
numbers are calibrated on the evaluation set by `bench/retrieval.py` (README, "Retrieval").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.core.extractive import terms_of


class Scored(Protocol):
    @property
    def similarity(self) -> float: ...

    @property
    def coverage(self) -> float: ...


# The lowest score there is (cosine -1, no coverage), also the score of "nothing retrieved": a
# minimum at or below it turns the gate off, so the model answers even with no passage.
SCORE_FLOOR = -1.0


@dataclass(frozen=True)
class RelevancePolicy:
    min_score: float
    coverage_weight: float = 0.0

    def score(self, passage: Scored) -> float:
        return passage.similarity + self.coverage_weight * passage.coverage

    def best_score(self, passages: Sequence[Scored]) -> float:
        return max((self.score(p) for p in passages), default=SCORE_FLOOR)

    def answerable(self, passages: Sequence[Scored]) -> bool:
        """True when at least one passage is relevant enough to answer from (always, when the
        minimum is at the floor: the gate is off)."""
        return self.best_score(passages) >= self.min_score


def hands_off(question: str, passages: Sequence[Scored], policy: RelevancePolicy) -> bool:
    """Whether the bot should say it does not know and call a human: the question asks about
    something (it has informative words; "oi", "obrigado" do not) and no passage is relevant
    enough to answer it."""
    return bool(terms_of(question)) and not policy.answerable(passages)
