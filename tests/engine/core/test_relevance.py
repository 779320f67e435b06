"""The "I don't know" gate (engine/core/relevance.py)."""

from __future__ import annotations

import pytest

from engine.core.prompt import Passage
from engine.core.relevance import SCORE_FLOOR, RelevancePolicy, hands_off

POLICY = RelevancePolicy(min_score=0.39, coverage_weight=0.5)


def passage(similarity: float, coverage: float) -> Passage:
    return Passage("texto", 1, 0, similarity=similarity, coverage=coverage)


@pytest.mark.parametrize(
    ("passages", "answerable"),
    [
        pytest.param([passage(0.40, 0.0)], True, id="close-in-meaning"),
        pytest.param([passage(0.20, 0.4)], True, id="shares-the-rare-words"),
        pytest.param([passage(0.20, 0.3), passage(0.1, 0.2)], False, id="neither"),
        pytest.param([passage(0.1, 0.0), passage(0.3, 0.2)], True, id="any-passage-counts"),
        pytest.param([], False, id="nothing-retrieved"),
    ],
)
def test_a_question_is_answerable_when_some_passage_scores_enough(
    passages: list[Passage], answerable: bool
) -> None:
    assert POLICY.answerable(passages) is answerable


def test_a_question_about_something_the_documents_lack_is_handed_off() -> None:
    assert hands_off("vcs vendem pneu de carro?", [passage(0.15, 0.1)], POLICY)


def test_small_talk_is_never_handed_off_even_with_nothing_retrieved() -> None:
    for message in ("oi", "Bom dia!", "obrigado", "ok blz"):
        assert not hands_off(message, [], POLICY), message


def test_a_minimum_at_the_floor_turns_the_gate_off_even_with_nothing_retrieved() -> None:
    off = RelevancePolicy(min_score=SCORE_FLOOR, coverage_weight=0.5)
    assert off.answerable([])
    assert not hands_off("vcs vendem pneu?", [passage(-0.5, 0.0)], off)
