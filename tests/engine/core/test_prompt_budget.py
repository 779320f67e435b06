"""The prompt budget (engine/core/prompt_budget.py): a 64 KB burst, a long memory or long passages
never make a prompt larger than the budgets allow."""

from __future__ import annotations

import pytest

from engine.core.prompt import Exchange, Passage, build_chat_messages
from engine.core.prompt_budget import (
    CHARS_PER_TOKEN,
    ELLIPSIS,
    PromptBudget,
    estimate_tokens,
    fit_memory,
    fit_passages,
    fit_prompt,
    keep_head,
    keep_tail,
    retrieval_query,
)

BUDGET = PromptBudget(user_tokens=100, memory_tokens=200, passages_tokens=300)
WORDS_64KB = ("palavra " * 8192)[: 64 * 1024]


def _passage(text: str, index: int = 0) -> Passage:
    return Passage(text=text, document_id=1, chunk_index=index, title="doc")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abc", 1), ("abcd", 2), ("x" * 300, 100), (WORDS_64KB, 21846)],
)
def test_estimate_is_one_token_per_three_characters_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(
    ("text", "max_tokens", "expected"),
    [
        ("curto", 10, "curto"),
        ("x" * 30, 10, "x" * 30),  # exactly the budget: untouched
        ("um dois tres quatro cinco seis", 5, "um dois tres…"),  # 15 chars, cut at a space
        ("x" * 31, 10, "x" * 29 + ELLIPSIS),  # no space near: cut mid-word
        ("qualquer", 0, ""),
    ],
)
def test_keep_head(text: str, max_tokens: int, expected: str) -> None:
    assert keep_head(text, max_tokens) == expected


@pytest.mark.parametrize(
    ("text", "max_tokens", "expected"),
    [
        ("curto", 10, "curto"),
        ("um dois tres quatro cinco seis", 5, "…cinco seis"),  # cut at a space
        ("x" * 31, 10, ELLIPSIS + "x" * 29),
        ("qualquer", 0, ""),
    ],
)
def test_keep_tail(text: str, max_tokens: int, expected: str) -> None:
    assert keep_tail(text, max_tokens) == expected


@pytest.mark.parametrize("max_tokens", [1, 2, 7, 50, 333])
def test_what_is_kept_never_exceeds_the_budget(max_tokens: int) -> None:
    for cut in (keep_head, keep_tail):
        assert estimate_tokens(cut(WORDS_64KB, max_tokens)) <= max_tokens


def test_a_64kb_burst_keeps_its_latest_words_within_the_budget() -> None:
    burst = WORDS_64KB + "\nqual o horário de sábado?"

    user_text, _, _ = fit_prompt(user_text=burst, memory=[], passages=[], budget=BUDGET)

    assert len(user_text) <= BUDGET.user_tokens * CHARS_PER_TOKEN
    assert user_text.startswith(ELLIPSIS) and user_text.endswith("qual o horário de sábado?")


@pytest.mark.parametrize(
    ("sizes", "kept"),
    [
        pytest.param([10, 10, 10], [0, 1, 2], id="all-fit"),
        pytest.param([100, 40, 40], [1, 2], id="oldest-dropped"),
        pytest.param([10, 150, 60], [2], id="stops-at-the-first-that-does-not-fit"),
        pytest.param([10, 10, 5000], [2], id="a-huge-newest-is-shortened-not-dropped"),
    ],
)
def test_memory_keeps_the_newest_exchanges_that_fit(sizes: list[int], kept: list[int]) -> None:
    # Exchange i: user and reply texts of sizes[i] tokens each (the budget is 200, 100 a side).
    memory = [
        Exchange(f"{i}" + "u" * (3 * n - 1), f"{i}" + "r" * (3 * n - 1))
        for i, n in enumerate(sizes)
    ]

    fitted = fit_memory(memory, BUDGET.memory_tokens)

    assert [int(e.reply_text[0]) for e in fitted] == kept  # a reply keeps its start
    assert sum(estimate_tokens(e.user_text + e.reply_text) for e in fitted) <= 200


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        pytest.param([100, 100, 100], [100, 100, 100], id="all-fit"),
        pytest.param([200, 200, 50], [200, 100], id="second-shortened-third-dropped"),
        pytest.param([1000], [300], id="one-long-passage-keeps-its-start"),
        pytest.param([300, 10], [300], id="budget-spent"),
    ],
)
def test_passages_keep_the_best_first_within_the_budget(
    sizes: list[int], expected: list[int]
) -> None:
    passages = [_passage("p" * (3 * n), i) for i, n in enumerate(sizes)]

    fitted = fit_passages(passages, BUDGET.passages_tokens)

    assert [estimate_tokens(p.text) for p in fitted] == expected
    assert [p.chunk_index for p in fitted] == list(range(len(expected)))


def test_a_prompt_of_64kb_everything_stays_within_the_sum_of_the_budgets() -> None:
    user_text, memory, passages = fit_prompt(
        user_text=WORDS_64KB,
        memory=[Exchange(WORDS_64KB, WORDS_64KB)] * 10,
        passages=[_passage(WORDS_64KB, i) for i in range(4)],
        budget=BUDGET,
    )
    messages = build_chat_messages(
        persona="Loja", passages=passages, memory=memory, user_text=user_text
    )

    prompt_chars = sum(len(m["content"]) for m in messages)
    budget_chars = (BUDGET.user_tokens + BUDGET.memory_tokens + BUDGET.passages_tokens) * 3
    assert prompt_chars < budget_chars + 1000  # + the fixed grounding rule and labels


def test_the_retrieval_query_of_a_64kb_burst_is_its_latest_words() -> None:
    query = retrieval_query(WORDS_64KB + " troca de óleo", 20)

    assert len(query) <= 60 and query.endswith("troca de óleo")
