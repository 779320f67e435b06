"""Rate limits as GCRA (the generic cell rate algorithm): one number per limited key, its
*theoretical arrival time* (TAT). Pure: the clock is a parameter.

A rate of `per_s` requests a second with a `burst` allows `burst` requests at once, then one
every `1 / per_s` seconds. A request at `now` is allowed when `max(tat, now) - now` is at most the
tolerance `(burst - 1) / per_s`; it then moves the TAT on by one emission interval. A refused one
changes nothing and may retry after `max(tat, now) - tolerance - now` seconds.

`engine/db/rate_limits.py` runs exactly this as one atomic UPSERT, so every ingress replica
shares one TAT per key (tests check the SQL against these functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    per_s: float  # sustained requests per second
    burst: int  # requests allowed at once after a quiet period

    @classmethod
    def per_minute(cls, count: float, *, burst: int) -> Rate:
        return cls(count / 60.0, burst)

    @property
    def emission_s(self) -> float:
        return 1.0 / self.per_s

    @property
    def tolerance_s(self) -> float:
        return self.emission_s * (self.burst - 1)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    tat_s: float  # the key's TAT after this request
    retry_after_s: float  # 0 when allowed


def check(tat_s: float | None, now_s: float, rate: Rate) -> Verdict:
    """Whether one more request is allowed now, and the key's TAT afterwards."""
    start = now_s if tat_s is None else max(tat_s, now_s)
    if start - now_s > rate.tolerance_s:
        assert tat_s is not None
        return Verdict(False, tat_s, start - rate.tolerance_s - now_s)
    return Verdict(True, start + rate.emission_s, 0.0)


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a client told 0 would retry at once)."""
    return str(max(1, math.ceil(seconds)))
