"""A circuit breaker: stop calling a service that keeps failing, probe it now and then.

One per Evolution base URL in each process that sends (a reply worker), shared by every
conversation: when Evolution is down, its owed parts wait in PostgreSQL instead of each
conversation's retries hammering it. Closed → (`failure_threshold` failures in a row) → open for
`cooldown_s` → half-open: one probe call; its success closes the circuit, its failure opens it
again. The clock is passed in (`now`, monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls wait until the cooldown ends
    HALF_OPEN = "half_open"  # one probe call is allowed


@dataclass
class CircuitBreaker:
    failure_threshold: int
    cooldown_s: float
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _probe_since: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cooldown_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s > 0")

    def state(self, now: float) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if now - self._opened_at < self.cooldown_s:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def allow(self, now: float) -> bool:
        """Whether a call may be made now; in half-open state the first caller is the probe (a
        probe that never reports, say its caller died, is replaced after another cooldown)."""
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        if self._probe_since is not None and now - self._probe_since < self.cooldown_s:
            return False
        self._probe_since = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_since = None

    def record_failure(self, now: float) -> None:
        self._failures += 1
        self._probe_since = None
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = now  # (re)open: a failed probe waits a whole cooldown again
