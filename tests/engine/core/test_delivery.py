"""The delivery rules: backoff with jitter, what each attempt's outcome leads to, giving up."""

from __future__ import annotations

import random

import pytest

from engine.core.delivery import (
    NextStep,
    RetryPolicy,
    SendOutcome,
    after_attempt,
    compute_backoff_s,
    give_up_reason,
)
from engine.core.statuses import MessageStatus

POLICY = RetryPolicy(
    backoff_base_s=2.0, backoff_max_s=60.0, max_attempts=5, max_age_s=3600.0, echo_window_s=30.0
)


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected_s"),
    [
        (1, 0.0, 1.0),  # base 2 s: between 1 and 2
        (1, 0.5, 1.5),
        (1, 0.999, 1.999),
        (2, 0.0, 2.0),  # 4 s
        (3, 0.0, 4.0),  # 8 s
        (5, 0.0, 16.0),  # 32 s
        (6, 0.0, 30.0),  # 64 s capped at 60
        (6, 0.5, 45.0),
        (50, 0.0, 30.0),  # far past the cap: still the cap
        (10_000, 0.999, 59.97),  # no overflow however many attempts
    ],
)
def test_backoff_doubles_per_attempt_up_to_the_cap_with_equal_jitter(
    attempts: int, jitter: float, expected_s: float
) -> None:
    backoff = compute_backoff_s(attempts, base_s=2.0, max_s=60.0, jitter=jitter)
    assert backoff == pytest.approx(expected_s)


@pytest.mark.parametrize("seed", range(20))
def test_backoff_is_never_less_than_half_nor_more_than_the_uncapped_value(seed: int) -> None:
    rng = random.Random(seed)
    for attempts in range(1, 12):
        full = min(120.0, 0.5 * 2 ** (attempts - 1))
        backoff = compute_backoff_s(attempts, base_s=0.5, max_s=120.0, jitter=rng.random())
        assert full / 2 <= backoff <= full


def test_backoff_grows_with_the_attempts_for_the_same_jitter() -> None:
    waits = [compute_backoff_s(n, base_s=1.0, max_s=1000.0, jitter=0.3) for n in range(1, 10)]
    assert waits == sorted(waits) and len(set(waits)) == len(waits)


@pytest.mark.parametrize(
    ("attempts", "jitter"), [(0, 0.0), (-1, 0.0), (1, 1.0), (1, -0.1)], ids=str
)
def test_backoff_refuses_impossible_arguments(attempts: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        compute_backoff_s(attempts, base_s=1.0, max_s=10.0, jitter=jitter)


@pytest.mark.parametrize(
    ("outcome", "attempts", "owed_s", "expected"),
    [
        (SendOutcome.DELIVERED, 1, 0.0, NextStep(MessageStatus.ENVIADA)),
        # A late success after many attempts is still a success.
        (SendOutcome.DELIVERED, 5, 5000.0, NextStep(MessageStatus.ENVIADA)),
        # Unknown: wait for the echo, do not resend yet, whatever the count.
        (SendOutcome.UNKNOWN, 1, 0.0, NextStep(MessageStatus.INCERTA, retry_in_s=30.0)),
        (SendOutcome.UNKNOWN, 5, 0.0, NextStep(MessageStatus.INCERTA, retry_in_s=30.0)),
        # Nothing sent: back off (2 s × 2^(n-1), half to all of it; jitter 0 → half).
        (SendOutcome.RETRYABLE, 1, 0.0, NextStep(MessageStatus.PENDENTE, retry_in_s=1.0)),
        (SendOutcome.RETRYABLE, 3, 10.0, NextStep(MessageStatus.PENDENTE, retry_in_s=4.0)),
    ],
)
def test_outcome_table(
    outcome: SendOutcome, attempts: int, owed_s: float, expected: NextStep
) -> None:
    assert (
        after_attempt(outcome, attempts=attempts, owed_s=owed_s, policy=POLICY, jitter=0.0)
        == expected
    )


def test_a_refusal_is_dead_lettered_at_once_with_evolutions_answer() -> None:
    step = after_attempt(
        SendOutcome.REFUSED,
        attempts=1,
        owed_s=0.0,
        policy=POLICY,
        jitter=0.0,
        error="Evolution answered 401",
    )
    assert step.status is MessageStatus.FALHOU and step.retry_in_s is None
    assert step.reason == "refused by Evolution: Evolution answered 401"


@pytest.mark.parametrize(
    ("attempts", "owed_s", "why"),
    [(5, 10.0, "after 5 attempts"), (2, 3600.0, "SEND_RETRY_MAX_S"), (9, 9999.0, "9 attempts")],
)
def test_a_retryable_failure_is_given_up_after_the_last_attempt_or_the_maximum_age(
    attempts: int, owed_s: float, why: str
) -> None:
    step = after_attempt(
        SendOutcome.RETRYABLE,
        attempts=attempts,
        owed_s=owed_s,
        policy=POLICY,
        jitter=0.5,
        error="Evolution answered 500",
    )
    assert step.status is MessageStatus.FALHOU
    assert step.reason is not None and why in step.reason and "500" in step.reason


@pytest.mark.parametrize(
    ("attempts", "unconfirmed", "owed_s", "gives_up"),
    [
        (0, 0, 0.0, False),
        (4, 2, 3599.0, False),
        (5, 0, 0.0, True),  # max_attempts
        (0, 0, 3600.0, True),  # max_age_s
        (3, 3, 10.0, True),  # max_unconfirmed: a fourth copy might reach the customer
    ],
)
def test_give_up_reason_before_a_new_attempt(
    attempts: int, unconfirmed: int, owed_s: float, gives_up: bool
) -> None:
    reason = give_up_reason(
        attempts=attempts, unconfirmed=unconfirmed, owed_s=owed_s, policy=POLICY
    )
    assert (reason is not None) is gives_up


def test_parts_sent_without_confirmation_are_given_up_with_a_warning_to_check_first() -> None:
    reason = give_up_reason(attempts=3, unconfirmed=3, owed_s=100.0, policy=POLICY)
    assert reason is not None and "may have reached the customer" in reason


@pytest.mark.parametrize(
    "fields",
    [
        {"backoff_base_s": 0.0},
        {"backoff_max_s": 1.0},  # below the base
        {"max_attempts": 0},
        {"max_age_s": 0.0},
        {"echo_window_s": -1.0},
        {"max_unconfirmed": 0},
    ],
)
def test_policy_refuses_impossible_settings(fields: dict[str, float]) -> None:
    values = {
        "backoff_base_s": 2.0,
        "backoff_max_s": 60.0,
        "max_attempts": 5,
        "max_age_s": 3600.0,
        "echo_window_s": 30.0,
        **fields,
    }
    with pytest.raises(ValueError):
        RetryPolicy(**values)  # type: ignore[arg-type]
