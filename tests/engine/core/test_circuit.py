"""The circuit breaker in front of Evolution: open after failures in a row, one probe per
cooldown, closed again by a success."""

from __future__ import annotations

import pytest

from engine.core.circuit import CircuitBreaker, CircuitState


def test_closed_until_the_threshold_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10)
    for now in (1.0, 2.0):
        breaker.record_failure(now)
        assert breaker.allow(now)
    breaker.record_failure(3.0)
    assert breaker.state(3.0) is CircuitState.OPEN
    assert not breaker.allow(3.0) and not breaker.allow(12.9)


def test_a_success_resets_the_count_of_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10)
    breaker.record_failure(1.0)
    breaker.record_success()
    breaker.record_failure(2.0)
    assert breaker.state(2.0) is CircuitState.CLOSED


def test_after_the_cooldown_exactly_one_probe_goes_through() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    breaker.record_failure(0.0)
    assert breaker.state(10.0) is CircuitState.HALF_OPEN
    assert breaker.allow(10.0)  # the probe
    assert not breaker.allow(10.1) and not breaker.allow(19.0)  # everyone else waits for it


def test_a_successful_probe_closes_the_circuit() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    breaker.record_failure(0.0)
    assert breaker.allow(10.0)
    breaker.record_success()
    assert breaker.state(10.0) is CircuitState.CLOSED
    assert all(breaker.allow(10.0) for _ in range(5))


def test_a_failed_probe_opens_it_for_another_whole_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10)
    for now in (0.0, 0.1, 0.2):
        breaker.record_failure(now)
    assert breaker.allow(10.5)
    breaker.record_failure(11.0)  # one failure is enough once it has opened
    assert breaker.state(11.0) is CircuitState.OPEN
    assert not breaker.allow(20.9)
    assert breaker.allow(21.0)


def test_a_probe_that_never_reports_is_replaced_after_a_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    breaker.record_failure(0.0)
    assert breaker.allow(10.0)  # its caller dies without recording anything
    assert not breaker.allow(15.0)
    assert breaker.allow(20.0)


@pytest.mark.parametrize(("threshold", "cooldown_s"), [(0, 10.0), (3, 0.0), (3, -1.0)])
def test_refuses_impossible_settings(threshold: int, cooldown_s: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown_s)
