"""GCRA rate math (engine/core/rate_limit.py)."""

from __future__ import annotations

import pytest

from engine.core.rate_limit import Rate, check, retry_after_header

PER_S_1_BURST_3 = Rate(per_s=1.0, burst=3)


def _run(times_s: list[float], rate: Rate) -> list[bool]:
    tat: float | None = None
    allowed = []
    for now in times_s:
        verdict = check(tat, now, rate)
        tat = verdict.tat_s
        allowed.append(verdict.allowed)
    return allowed


@pytest.mark.parametrize(
    ("times_s", "allowed"),
    [
        pytest.param([0, 0, 0], [True] * 3, id="a-burst-at-once"),
        pytest.param([0, 0, 0, 0], [True] * 3 + [False], id="one-past-the-burst"),
        pytest.param([0, 0, 0, 0, 1], [True] * 3 + [False, True], id="one-back-per-interval"),
        pytest.param([0, 0, 0, 0.5], [True] * 3 + [False], id="not-before-the-interval"),
        pytest.param([0, 1, 2, 3, 4, 5], [True] * 6, id="the-sustained-rate-never-refused"),
        pytest.param([0, 0, 0, 10, 10, 10, 10], [True] * 3 + [True] * 3 + [False], id="refills"),
    ],
)
def test_gcra_allows_the_burst_then_the_rate(times_s: list[float], allowed: list[bool]) -> None:
    assert _run(times_s, PER_S_1_BURST_3) == allowed


def test_a_refusal_says_when_to_retry_and_changes_nothing() -> None:
    tat = None
    for _ in range(3):
        tat = check(tat, 100.0, PER_S_1_BURST_3).tat_s

    refused = check(tat, 100.25, PER_S_1_BURST_3)

    assert not refused.allowed and refused.tat_s == tat
    assert refused.retry_after_s == pytest.approx(0.75)
    assert check(tat, 100.25 + refused.retry_after_s, PER_S_1_BURST_3).allowed


@pytest.mark.parametrize(
    ("count", "burst", "per_s", "tolerance_s"),
    [(60, 1, 1.0, 0.0), (120, 60, 2.0, 29.5), (5, 20, 1 / 12, 228.0)],
)
def test_per_minute(count: float, burst: int, per_s: float, tolerance_s: float) -> None:
    rate = Rate.per_minute(count, burst=burst)

    assert rate.per_s == pytest.approx(per_s)
    assert rate.tolerance_s == pytest.approx(tolerance_s)


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2")])
def test_retry_after_is_whole_seconds_never_zero(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
