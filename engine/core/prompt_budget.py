"""How much of a conversation goes into one prompt: the burst, memory and passages each get a
token budget, so a contact sending 64 KB messages cannot inflate every prompt (or the bill).

Tokens are estimated, not counted: one token per `CHARS_PER_TOKEN` characters. Real tokenizers
average ~4 characters per token on Portuguese and English prose; 3 over-estimates, so a prompt
that fits the estimate fits the model. Pure: no tokenizer, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from engine.core.prompt import Exchange, Passage

CHARS_PER_TOKEN = 3
ELLIPSIS = "…"

T = TypeVar("T")


@dataclass(frozen=True)
class PromptBudget:
    user_tokens: int  # the burst being answered
    memory_tokens: int  # every remembered exchange together
    passages_tokens: int  # every knowledge passage together


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)  # ceiling


def keep_head(text: str, max_tokens: int) -> str:
    """The start of `text` within `max_tokens`, cut at a word boundary when one is near, with an
    ellipsis saying something was cut."""
    limit = max(0, max_tokens) * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) * 3 // 4:  # do not lose more than a quarter to find a word boundary
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def keep_tail(text: str, max_tokens: int) -> str:
    """The end of `text` within `max_tokens` (a burst's latest messages are what to answer)."""
    limit = max(0, max_tokens) * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    cut = text[len(text) - (limit - len(ELLIPSIS)) :]
    space = cut.find(" ")
    if 0 <= space <= len(cut) // 4:
        cut = cut[space + 1 :]
    return ELLIPSIS + cut.lstrip()


def fit_memory(memory: Sequence[Exchange], max_tokens: int) -> list[Exchange]:
    """The most recent exchanges that fit together (oldest dropped first); one exchange larger
    than the whole budget is shortened, never allowed to push the others out by itself."""
    share = max(1, max_tokens // 2)  # half for what the customer wrote, half for the reply
    shortened = [
        Exchange(keep_tail(e.user_text, share), keep_head(e.reply_text, share)) for e in memory
    ]
    return _newest_within(
        shortened,
        max_tokens,
        lambda e: estimate_tokens(e.user_text) + estimate_tokens(e.reply_text),
    )


def fit_passages(passages: Sequence[Passage], max_tokens: int) -> list[Passage]:
    """The best passages, in order, that fit together; the first one that would cross the
    budget is shortened to what is left (a long passage still contributes its start)."""
    kept: list[Passage] = []
    left = max_tokens
    for passage in passages:
        cost = estimate_tokens(passage.text)
        if cost <= left:
            kept.append(passage)
            left -= cost
            continue
        head = keep_head(passage.text, left)
        if head:
            kept.append(replace(passage, text=head))
        break
    return kept


def fit_prompt(
    *,
    user_text: str,
    memory: Sequence[Exchange],
    passages: Sequence[Passage],
    budget: PromptBudget,
) -> tuple[str, list[Exchange], list[Passage]]:
    """What of the turn goes into the prompt, each part within its budget."""
    return (
        keep_tail(user_text, budget.user_tokens),
        fit_memory(memory, budget.memory_tokens),
        fit_passages(passages, budget.passages_tokens),
    )


def retrieval_query(text: str, max_tokens: int) -> str:
    """What of a burst is sent to the embedder and the lexical search: its latest words."""
    return keep_tail(text, max_tokens)


def _newest_within(items: Sequence[T], max_tokens: int, cost: Callable[[T], int]) -> list[T]:
    kept: list[T] = []
    left = max_tokens
    for item in reversed(items):
        spent = cost(item)
        if spent > left:
            break
        kept.append(item)
        left -= spent
    return kept[::-1]
