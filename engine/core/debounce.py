"""Burst policy: when a conversation answers, and how a burst becomes one user turn.

Trailing-edge debounce (each message pushes the answer back by `debounce_s`) with a hard cap
(`max_wait_s` from the first unanswered message) so a chatty customer still gets an answer.
Times are plain floats in one clock of the caller's choosing (monotonic in the actor).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def search_ahead_at(deadline: float, *, now: float, ahead_s: float) -> float | None:
    """When to search for the passages of a burst due at `deadline`: `ahead_s` before it (the
    search, ~15 ms on a quiet node and a few hundred under load, is then done when the turn
    begins), or now if it is due sooner (a new chat's actor that started late in the window);
    None when it is due now, or `ahead_s` is 0 (its turn searches as it begins)."""
    if ahead_s <= 0 or deadline <= now:
        return None
    return max(now, deadline - ahead_s)


@dataclass(frozen=True)
class DebouncePolicy:
    debounce_s: float
    max_wait_s: float

    def __post_init__(self) -> None:
        if self.debounce_s < 0 or self.max_wait_s < 0:
            raise ValueError("debounce_s and max_wait_s must be >= 0")
        if self.max_wait_s < self.debounce_s:
            raise ValueError("max_wait_s must be >= debounce_s")

    def arrived_at(self, *, now: float, accepted_at_s: float, wall_now_s: float) -> float:
        """When a message accepted at `accepted_at_s` (epoch s; 0 = unknown) arrived, in the
        caller's clock (`now`, read at wall time `wall_now_s`): the debounce counts from the
        ingress's acceptance, so an actor's start-up overlaps the customer's typing. An age
        below zero or past the cap (clocks that disagree or jumped) is clamped."""
        if not accepted_at_s:
            return now
        return now - min(max(wall_now_s - accepted_at_s, 0.0), self.max_wait_s)

    def deadline(self, *, first_at: float, last_at: float) -> float:
        """When a burst whose first/last messages arrived at these times must be answered."""
        return min(last_at + self.debounce_s, first_at + self.max_wait_s)


@dataclass(frozen=True)
class BurstMessage:
    """An accepted, not yet answered customer message: what an actor holds and a turn reads."""

    message_id: int  # messages.id in PostgreSQL
    text: str  # empty for media the bot cannot read
    message_type: str | None = None
    timestamp: int = 0  # WhatsApp's messageTimestamp (epoch seconds)
    # When the ingress accepted it (epoch seconds; 0: unknown); restored from PostgreSQL, its
    # row's created_at. The debounce runs from here, so an actor's start-up overlaps the
    # customer's typing.
    accepted_at_s: float = 0.0


def order_burst(messages: Iterable[BurstMessage]) -> list[BurstMessage]:
    """Messages in the order the customer wrote them; duplicates (same row) dropped.

    Webhooks arrive out of order (Evolution posts without awaiting, retries with back-off, and
    several ingress replicas submit concurrently), so order by WhatsApp's timestamp, then by the
    row id, which follows arrival for messages sent within the same second.
    """
    unique = {m.message_id: m for m in messages}
    return sorted(unique.values(), key=lambda m: (m.timestamp, m.message_id))


def merge_burst(messages: Iterable[BurstMessage]) -> str:
    """One user turn from a burst: its texts in order, one per line (as Evolution's bots join
    them); media without text add nothing."""
    return "\n".join(m.text.strip() for m in order_burst(messages) if m.text.strip())
