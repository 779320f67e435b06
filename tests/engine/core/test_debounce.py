"""Burst policy (engine/debounce.py): when a conversation answers and how a burst becomes a turn."""

from __future__ import annotations

import dataclasses
import random

import pytest

from engine.core.debounce import (
    BurstMessage,
    DebouncePolicy,
    merge_burst,
    order_burst,
    search_ahead_at,
)

DEADLINE_CASES = [
    # debounce_s, max_wait_s, first_at, last_at, expected
    pytest.param(2.0, 12.0, 0.0, 0.0, 2.0, id="single-message"),
    pytest.param(2.0, 12.0, 0.0, 1.5, 3.5, id="trailing-edge-moves-with-last"),
    pytest.param(2.0, 12.0, 0.0, 5.0, 7.0, id="later-message-pushes-back"),
    pytest.param(2.0, 12.0, 0.0, 10.0, 12.0, id="trailing-edge-meets-cap"),
    pytest.param(2.0, 12.0, 0.0, 11.0, 12.0, id="capped-by-max-wait"),
    pytest.param(2.0, 12.0, 0.0, 60.0, 12.0, id="chatty-customer-capped"),
    pytest.param(2.0, 12.0, 1000.25, 1003.0, 1005.0, id="monotonic-clock-offset"),
    pytest.param(2.0, 12.0, 1000.0, 1011.5, 1012.0, id="offset-capped"),
    pytest.param(0.0, 0.0, 5.0, 5.0, 5.0, id="no-debounce-answers-at-once"),
    pytest.param(0.0, 10.0, 5.0, 7.0, 7.0, id="zero-debounce-answers-at-last"),
    pytest.param(3.0, 3.0, 0.0, 2.0, 3.0, id="equal-debounce-and-cap"),
    pytest.param(5.0, 20.0, 100.0, 110.0, 115.0, id="env-example"),
    pytest.param(5.0, 20.0, 100.0, 118.0, 120.0, id="env-example-capped"),
]


@pytest.mark.parametrize(("debounce", "max_wait", "first", "last", "expected"), DEADLINE_CASES)
def test_deadline_is_the_trailing_edge_capped_by_max_wait_from_the_first_message(
    debounce: float, max_wait: float, first: float, last: float, expected: float
) -> None:
    policy = DebouncePolicy(debounce_s=debounce, max_wait_s=max_wait)

    assert policy.deadline(first_at=first, last_at=last) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(50))
def test_deadline_is_never_after_the_cap_nor_the_trailing_edge(seed: int) -> None:
    rng = random.Random(seed)
    debounce = rng.uniform(0, 10)
    policy = DebouncePolicy(debounce_s=debounce, max_wait_s=debounce + rng.uniform(0, 30))
    first = rng.uniform(0, 1e6)
    last = first + rng.uniform(0, 60)

    deadline = policy.deadline(first_at=first, last_at=last)

    assert deadline <= first + policy.max_wait_s
    assert deadline <= last + policy.debounce_s
    assert deadline in (first + policy.max_wait_s, last + policy.debounce_s)


def test_each_new_message_pushes_the_deadline_back_until_the_cap() -> None:
    policy = DebouncePolicy(debounce_s=2.0, max_wait_s=12.0)
    arrivals = [0.0, 1.0, 2.5, 4.0, 6.0, 8.0, 9.9, 11.0]

    deadlines = [policy.deadline(first_at=0.0, last_at=t) for t in arrivals]

    assert deadlines == pytest.approx([2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 11.9, 12.0])
    assert deadlines == sorted(deadlines)


@pytest.mark.parametrize(
    ("debounce", "max_wait", "message"),
    [
        pytest.param(-0.1, 12.0, ">= 0", id="negative-debounce"),
        pytest.param(2.0, -1.0, ">= 0", id="negative-max-wait"),
        pytest.param(-2.0, -1.0, ">= 0", id="both-negative"),
        pytest.param(5.0, 4.0, "max_wait_s must be >= debounce_s", id="cap-below-debounce"),
        pytest.param(0.5, 0.0, "max_wait_s must be >= debounce_s", id="zero-cap"),
    ],
)
def test_invalid_policies_raise_value_error(debounce: float, max_wait: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DebouncePolicy(debounce_s=debounce, max_wait_s=max_wait)


@pytest.mark.parametrize(("debounce", "max_wait"), [(0.0, 0.0), (2.0, 2.0), (2.0, 12.0)])
def test_boundary_policies_are_valid(debounce: float, max_wait: float) -> None:
    policy = DebouncePolicy(debounce_s=debounce, max_wait_s=max_wait)

    assert (policy.debounce_s, policy.max_wait_s) == (debounce, max_wait)


def test_policy_is_immutable() -> None:
    policy = DebouncePolicy(debounce_s=2.0, max_wait_s=12.0)

    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_wait_s = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- bursts


def msg(message_id: int, text: str, timestamp: int) -> BurstMessage:
    return BurstMessage(message_id=message_id, text=text, timestamp=timestamp)


ORDER_CASES = [
    pytest.param([], [], id="empty"),
    pytest.param([msg(1, "oi", 100)], [1], id="single"),
    pytest.param([msg(1, "a", 100), msg(2, "b", 101), msg(3, "c", 102)], [1, 2, 3], id="sorted"),
    pytest.param(
        [msg(3, "c", 102), msg(1, "a", 100), msg(2, "b", 101)], [1, 2, 3], id="out-of-order"
    ),
    pytest.param(
        [msg(9, "primeira", 100), msg(4, "segunda", 101)],
        [9, 4],
        id="timestamp-beats-row-id",
    ),
    pytest.param(
        [msg(12, "b", 100), msg(11, "a", 100), msg(13, "c", 100)],
        [11, 12, 13],
        id="same-second-by-row-id",
    ),
    pytest.param(
        [msg(2, "b", 100), msg(1, "a", 100), msg(2, "b", 100), msg(1, "a", 100)],
        [1, 2],
        id="duplicates-dropped",
    ),
    pytest.param(
        [msg(5, "x", 200), msg(3, "y", 100), msg(5, "x", 200), msg(4, "z", 100)],
        [3, 4, 5],
        id="mixed",
    ),
]


@pytest.mark.parametrize(("messages", "expected_ids"), ORDER_CASES)
def test_order_burst_sorts_by_timestamp_then_row_id_and_drops_duplicates(
    messages: list[BurstMessage], expected_ids: list[int]
) -> None:
    assert [m.message_id for m in order_burst(messages)] == expected_ids


def test_order_burst_accepts_any_iterable_once() -> None:
    messages = (m for m in [msg(2, "b", 101), msg(1, "a", 100)])

    assert order_burst(messages) == [msg(1, "a", 100), msg(2, "b", 101)]


def test_order_burst_does_not_modify_its_input() -> None:
    messages = [msg(2, "b", 101), msg(1, "a", 100), msg(2, "b", 101)]
    before = list(messages)

    order_burst(messages)

    assert messages == before


@pytest.mark.parametrize("seed", range(30))
def test_order_burst_result_is_independent_of_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    burst = [msg(i, f"m{i}", 100 + rng.randint(0, 3)) for i in range(1, 12)]
    shuffled = burst + rng.sample(burst, k=4)  # Evolution retries: some arrive twice
    rng.shuffle(shuffled)

    assert order_burst(shuffled) == sorted(burst, key=lambda m: (m.timestamp, m.message_id))


MERGE_CASES = [
    pytest.param([], "", id="empty"),
    pytest.param([msg(1, "Oi", 100)], "Oi", id="single"),
    pytest.param(
        [msg(2, "quanto custa o plano anual?", 101), msg(1, "oi", 100)],
        "oi\nquanto custa o plano anual?",
        id="reordered",
    ),
    pytest.param(
        [msg(1, "oi", 100), msg(2, "tudo bem?", 100), msg(1, "oi", 100)],
        "oi\ntudo bem?",
        id="duplicate-once",
    ),
    pytest.param(
        [msg(1, "linha 1\nlinha 2", 100), msg(2, "linha 3", 101)],
        "linha 1\nlinha 2\nlinha 3",
        id="multiline-text-kept",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), MERGE_CASES)
def test_merge_burst_joins_texts_in_order_one_per_line(
    messages: list[BurstMessage], expected: str
) -> None:
    assert merge_burst(messages) == expected


ARRIVAL_CASES = [
    # accepted_at_s, wall_now_s, arrived (now = 100.0, max_wait 6.0)
    pytest.param(0.0, 5_000.0, 100.0, id="unknown acceptance: now"),
    pytest.param(5_000.0, 5_000.0, 100.0, id="accepted just now"),
    pytest.param(4_999.6, 5_000.0, 99.6, id="accepted 0.4 s ago (an actor's start)"),
    pytest.param(5_002.0, 5_000.0, 100.0, id="accepted in the future (clock skew): now"),
    pytest.param(4_000.0, 5_000.0, 94.0, id="older than the cap: clamped to it"),
]


@pytest.mark.parametrize(("accepted_at_s", "wall_now_s", "arrived"), ARRIVAL_CASES)
def test_a_message_arrived_when_the_ingress_accepted_it(
    accepted_at_s: float, wall_now_s: float, arrived: float
) -> None:
    policy = DebouncePolicy(debounce_s=2.0, max_wait_s=6.0)

    got = policy.arrived_at(now=100.0, accepted_at_s=accepted_at_s, wall_now_s=wall_now_s)

    assert got == pytest.approx(arrived)


def test_a_first_message_accepted_during_an_actors_start_is_answered_on_time() -> None:
    """The actor got the message 0.4 s after the ingress accepted it: the burst is due 0.4 s
    sooner in the actor's clock than if it counted from its own start."""
    policy = DebouncePolicy(debounce_s=1.0, max_wait_s=6.0)
    arrived = policy.arrived_at(now=50.0, accepted_at_s=999.6, wall_now_s=1_000.0)

    assert policy.deadline(first_at=arrived, last_at=arrived) == pytest.approx(50.6)


def test_a_burst_is_searched_ahead_shortly_before_it_is_due_not_while_the_customer_types() -> None:
    policy = DebouncePolicy(debounce_s=2.0, max_wait_s=8.0)
    deadline = policy.deadline(first_at=100.0, last_at=100.0)
    assert search_ahead_at(deadline, now=100.0, ahead_s=0.3) == pytest.approx(101.7)


def test_a_burst_due_sooner_than_the_search_ahead_is_searched_at_once() -> None:
    # A new chat's actor that restores its burst late in the window still gives it a head start.
    assert search_ahead_at(10.0, now=9.8, ahead_s=0.3) == 9.8


def test_a_burst_due_now_is_searched_by_its_turn() -> None:
    assert search_ahead_at(10.0, now=10.0, ahead_s=0.3) is None  # a cliente no longer served
    assert search_ahead_at(10.0, now=11.0, ahead_s=0.3) is None  # restored past its deadline
    assert search_ahead_at(10.0, now=5.0, ahead_s=0.0) is None  # turned off
