"""Burst policy: when a conversation answers, and how a burst becomes one user turn.

Trailing-edge debounce (each message pushes the answer back by `debounce_s`) with a hard cap
(`max_wait_s` from the first unanswered message) so a chatty customer still gets an answer.
Times are plain floats in one clock of the caller's choosing (monotonic in the actor).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class DebouncePolicy:
    debounce_s: float
    max_wait_s: float

    def __post_init__(self) -> None:
        if self.debounce_s < 0 or self.max_wait_s < 0:
            raise ValueError("debounce_s and max_wait_s must be >= 0")
        if self.max_wait_s < self.debounce_s:
            raise ValueError("max_wait_s must be >= debounce_s")

    def overridden(self, *, debounce_s: float | None, max_wait_s: float | None) -> DebouncePolicy:
        """A cliente's policy: its own values where it has them, these otherwise; the cap is
        never shorter than the debounce."""
        debounce = self.debounce_s if debounce_s is None else debounce_s
        max_wait = self.max_wait_s if max_wait_s is None else max_wait_s
        return DebouncePolicy(debounce, max(max_wait, debounce))

    def deadline(self, *, first_at: float, last_at: float) -> float:
        """When a burst whose first/last messages arrived at these times must be answered."""
        return min(last_at + self.debounce_s, first_at + self.max_wait_s)


@dataclass(frozen=True)
class PendingMessage:
    """An accepted, not yet answered customer message as the conversation actor holds it."""

    message_id: int  # messages.id in PostgreSQL
    text: str
    timestamp: int  # WhatsApp's messageTimestamp (epoch seconds)


def order_burst(messages: Iterable[PendingMessage]) -> list[PendingMessage]:
    """Messages in the order the customer wrote them; duplicates (same row) dropped.

    Webhooks arrive out of order (Evolution posts without awaiting, retries with back-off, and
    several ingress replicas submit concurrently), so order by WhatsApp's timestamp, then by the
    row id, which follows arrival for messages sent within the same second.
    """
    unique = {m.message_id: m for m in messages}
    return sorted(unique.values(), key=lambda m: (m.timestamp, m.message_id))


def merge_burst(messages: Iterable[PendingMessage]) -> str:
    """One user turn from a burst: texts in order, one per line (as Evolution's bots join them)."""
    return "\n".join(m.text for m in order_burst(messages))
