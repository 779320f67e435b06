"""Opening hours (engine/business_hours.py): open now, closed since when, opening when.

Dates are chosen by weekday: 2025-06-02 and 2025-07-07 are Mondays in São Paulo's and Lisbon's
summer, 2025-01-06 a Monday in Lisbon's winter. São Paulo is UTC-3 all year; Lisbon is UTC+0 in
winter and UTC+1 in summer (clocks change on 2025-03-30 at 01:00 UTC and 2025-10-26 at 01:00 UTC).
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.core.business_hours import DAYS, BusinessHours, OpenInterval

SAO_PAULO = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        "mon": [["09:00", "18:00"]],
        "tue": [["09:00", "12:00"], ["13:00", "18:00"]],
        # wed: closed all day
        "thu": [["09:00", "18:00"]],
        "fri": [["18:00", "02:00"]],  # until 02:00 on Saturday
        "sat": [["09:00", "13:00"]],
        "sun": [["20:00", "24:00"]],
    },
}
LISBON_WEEKDAYS = {
    "timezone": "Europe/Lisbon",
    "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}
ALWAYS_OPEN = {"timezone": "UTC", "weekly": {day: [["00:00", "24:00"]] for day in DAYS}}
NEVER_OPEN: dict[str, Any] = {"timezone": "UTC", "weekly": {}}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hours(data: dict[str, Any]) -> BusinessHours:
    return BusinessHours.parse(data)


# --------------------------------------------------------------------------- is_open

IS_OPEN_CASES = [
    # São Paulo: local time is UTC-3.
    pytest.param(SAO_PAULO, "2025-06-02 12:00", True, id="sp-mon-opens-at-09-local"),
    pytest.param(SAO_PAULO, "2025-06-02 11:59", False, id="sp-mon-08-59-local-closed"),
    pytest.param(SAO_PAULO, "2025-06-02 20:59", True, id="sp-mon-17-59-local-open"),
    pytest.param(SAO_PAULO, "2025-06-02 21:00", False, id="sp-mon-closes-at-18-local"),
    pytest.param(SAO_PAULO, "2025-06-03 02:00", False, id="sp-utc-tuesday-is-monday-night"),
    pytest.param(SAO_PAULO, "2025-06-03 15:30", False, id="sp-tue-lunch-break-closed"),
    pytest.param(SAO_PAULO, "2025-06-03 16:00", True, id="sp-tue-reopens-after-lunch"),
    pytest.param(SAO_PAULO, "2025-06-04 15:00", False, id="sp-wed-missing-day-closed"),
    pytest.param(SAO_PAULO, "2025-06-06 21:00", True, id="sp-fri-evening-opens"),
    pytest.param(SAO_PAULO, "2025-06-07 01:00", True, id="sp-utc-saturday-is-friday-22"),
    pytest.param(SAO_PAULO, "2025-06-07 04:59", True, id="sp-sat-01-59-belongs-to-friday"),
    pytest.param(SAO_PAULO, "2025-06-07 05:00", False, id="sp-sat-02-00-friday-closed"),
    pytest.param(SAO_PAULO, "2025-06-07 12:00", True, id="sp-sat-morning-open"),
    pytest.param(SAO_PAULO, "2025-06-07 16:00", False, id="sp-sat-13-00-closed"),
    pytest.param(SAO_PAULO, "2025-06-08 23:00", True, id="sp-sun-20-00-open"),
    pytest.param(SAO_PAULO, "2025-06-09 02:59", True, id="sp-sun-23-59-open-until-24"),
    pytest.param(SAO_PAULO, "2025-06-09 03:00", False, id="sp-24-00-is-monday-midnight"),
    # Lisbon summer (UTC+1): 09:00–18:00 local is 08:00–17:00 UTC.
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 07:59", False, id="lisbon-summer-before"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 08:00", True, id="lisbon-summer-opens-08-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 08:30", True, id="lisbon-summer-08-30-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 16:59", True, id="lisbon-summer-last-minute"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 17:00", False, id="lisbon-summer-closes-17-utc"),
    # Lisbon winter (UTC+0): 09:00–18:00 local is 09:00–18:00 UTC.
    pytest.param(LISBON_WEEKDAYS, "2025-01-06 08:30", False, id="lisbon-winter-08-30-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-06 09:00", True, id="lisbon-winter-opens-09-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-06 17:30", True, id="lisbon-winter-17-30-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-06 18:00", False, id="lisbon-winter-closes-18-utc"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-11 12:00", False, id="lisbon-saturday-closed"),
    pytest.param(ALWAYS_OPEN, "2025-06-04 00:00", True, id="always-open-at-midnight"),
    pytest.param(ALWAYS_OPEN, "2025-06-04 13:37", True, id="always-open-midday"),
    pytest.param(NEVER_OPEN, "2025-06-04 13:37", False, id="empty-schedule-never-open"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), IS_OPEN_CASES)
def test_is_open_reads_the_schedule_in_its_own_time_zone(
    schedule: dict[str, Any], at: str, expected: bool
) -> None:
    assert hours(schedule).is_open(utc(at)) is expected


def test_the_same_instant_is_open_or_closed_whatever_zone_it_is_given_in() -> None:
    schedule = hours(SAO_PAULO)
    instant = datetime(2025, 6, 2, 9, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))

    assert schedule.is_open(instant)
    assert schedule.is_open(instant.astimezone(ZoneInfo("Asia/Tokyo")))
    assert not schedule.is_open(instant - timedelta(seconds=1))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hours(SAO_PAULO).is_open(datetime(2025, 6, 2, 12, 0))


# --------------------------------------------------------------------------- closed_since

CLOSED_SINCE_CASES = [
    pytest.param(SAO_PAULO, "2025-06-02 12:00", None, id="open-has-no-closed-period"),
    pytest.param(SAO_PAULO, "2025-06-02 11:00", "2025-06-02 03:00", id="mon-morning-since-sun-24"),
    pytest.param(SAO_PAULO, "2025-06-03 15:30", "2025-06-03 15:00", id="lunch-since-12-local"),
    pytest.param(SAO_PAULO, "2025-06-04 15:00", "2025-06-03 21:00", id="closed-day-since-tue-18"),
    pytest.param(SAO_PAULO, "2025-06-06 20:00", "2025-06-05 21:00", id="fri-afternoon-since-thu"),
    pytest.param(SAO_PAULO, "2025-06-07 05:00", "2025-06-07 05:00", id="at-the-closing-instant"),
    pytest.param(SAO_PAULO, "2025-06-07 08:00", "2025-06-07 05:00", id="after-midnight-interval"),
    pytest.param(SAO_PAULO, "2025-06-08 12:00", "2025-06-07 16:00", id="sunday-since-sat-13"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-07 20:00", "2025-07-07 17:00", id="lisbon-summer"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-06 20:00", "2025-01-06 18:00", id="lisbon-winter"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-13 12:00", "2025-07-11 17:00", id="lisbon-weekend"),
    pytest.param(ALWAYS_OPEN, "2025-06-04 00:00", None, id="always-open"),
    pytest.param(NEVER_OPEN, "2025-06-04 00:00", None, id="never-open-in-the-last-8-days"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), CLOSED_SINCE_CASES)
def test_closed_since_is_the_end_of_the_last_open_period(
    schedule: dict[str, Any], at: str, expected: str | None
) -> None:
    assert hours(schedule).closed_since(utc(at)) == (utc(expected) if expected else None)


def test_closed_since_is_the_same_for_every_instant_of_one_closed_period() -> None:
    schedule = hours(SAO_PAULO)
    at, reopening = utc("2025-06-03 21:00"), utc("2025-06-05 12:00")  # Tue 18:00 → Thu 09:00

    seen = set()
    while at < reopening:
        seen.add(schedule.closed_since(at))
        at += timedelta(minutes=17)

    assert seen == {utc("2025-06-03 21:00")}
    assert schedule.closed_since(reopening) is None


def test_closed_since_and_next_opening_are_utc() -> None:
    schedule = hours(SAO_PAULO)
    at = datetime(2025, 6, 4, 12, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))

    assert schedule.closed_since(at) == utc("2025-06-03 21:00")
    assert schedule.closed_since(at).tzinfo is UTC  # type: ignore[union-attr]
    assert schedule.next_opening(at).tzinfo is UTC  # type: ignore[union-attr]


# --------------------------------------------------------------------------- next_opening

NEXT_OPENING_CASES = [
    pytest.param(SAO_PAULO, "2025-06-02 11:00", "2025-06-02 12:00", id="later-the-same-day"),
    pytest.param(SAO_PAULO, "2025-06-02 12:00", "2025-06-03 12:00", id="open-now-means-the-next"),
    pytest.param(SAO_PAULO, "2025-06-03 15:30", "2025-06-03 16:00", id="after-lunch"),
    pytest.param(SAO_PAULO, "2025-06-04 15:00", "2025-06-05 12:00", id="skips-closed-day"),
    pytest.param(SAO_PAULO, "2025-06-06 20:00", "2025-06-06 21:00", id="friday-evening"),
    pytest.param(SAO_PAULO, "2025-06-07 16:00", "2025-06-08 23:00", id="sunday-evening"),
    pytest.param(SAO_PAULO, "2025-06-08 23:30", "2025-06-09 12:00", id="wraps-to-monday"),
    pytest.param(LISBON_WEEKDAYS, "2025-07-11 18:00", "2025-07-14 08:00", id="lisbon-summer"),
    pytest.param(LISBON_WEEKDAYS, "2025-01-10 18:00", "2025-01-13 09:00", id="lisbon-winter"),
    pytest.param(ALWAYS_OPEN, "2025-06-04 00:00", None, id="always-open-never-opens-again"),
    pytest.param(NEVER_OPEN, "2025-06-04 00:00", None, id="never-open"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), NEXT_OPENING_CASES)
def test_next_opening_is_the_start_of_the_next_open_period(
    schedule: dict[str, Any], at: str, expected: str | None
) -> None:
    assert hours(schedule).next_opening(utc(at)) == (utc(expected) if expected else None)


def test_a_week_with_one_opening_is_found_a_week_ahead() -> None:
    schedule = hours({"timezone": "UTC", "weekly": {"mon": [["09:00", "10:00"]]}})

    assert schedule.next_opening(utc("2025-06-02 09:00")) == utc("2025-06-09 09:00")
    assert schedule.closed_since(utc("2025-06-09 08:59")) == utc("2025-06-02 10:00")


def test_intervals_that_touch_across_midnight_are_one_open_period() -> None:
    schedule = hours(
        {"timezone": "UTC", "weekly": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]}}
    )

    assert schedule.is_open(utc("2025-06-03 00:00"))
    assert schedule.next_opening(utc("2025-06-02 23:00")) == utc("2025-06-09 22:00")
    assert schedule.closed_since(utc("2025-06-03 07:00")) == utc("2025-06-03 06:00")


# --------------------------------------------------------------------------- DST

DST_CASES = [
    # Saturday 22:00 → Sunday 03:00 Lisbon time, on the nights the clocks change.
    pytest.param("2025-03-29 22:00", "2025-03-30 02:00", id="spring-forward-night-is-4h"),
    pytest.param("2025-10-25 21:00", "2025-10-26 03:00", id="fall-back-night-is-6h"),
]


@pytest.mark.parametrize(("opens", "closes"), DST_CASES)
def test_an_interval_over_a_clock_change_keeps_its_wall_clock_times(
    opens: str, closes: str
) -> None:
    schedule = hours({"timezone": "Europe/Lisbon", "weekly": {"sat": [["22:00", "03:00"]]}})

    assert schedule.next_opening(utc(opens) - timedelta(hours=1)) == utc(opens)
    assert schedule.is_open(utc(opens))
    assert schedule.is_open(utc(closes) - timedelta(seconds=1))
    assert not schedule.is_open(utc(closes))
    assert schedule.closed_since(utc(closes) + timedelta(hours=5)) == utc(closes)


@pytest.mark.parametrize(
    ("interval", "expected_opening"),
    [
        # 01:30 does not exist on 2025-03-30: read with the old offset, it is 02:30 WEST.
        pytest.param(["01:30", "04:00"], "2025-03-30 01:30", id="time-skipped-by-the-gap"),
        # 01:30 happens twice on 2025-10-26: the first time (WEST) is meant.
        pytest.param(["01:30", "04:00"], "2025-10-26 00:30", id="repeated-time-first-one"),
    ],
)
def test_times_in_a_dst_gap_or_fold_follow_pep_495(
    interval: list[str], expected_opening: str
) -> None:
    schedule = hours({"timezone": "Europe/Lisbon", "weekly": {"sun": [interval]}})
    night_before = utc(expected_opening).replace(hour=0, minute=0) - timedelta(hours=1)

    assert schedule.next_opening(night_before) == utc(expected_opening)


# --------------------------------------------------------------------------- properties


def random_schedule(rng: random.Random, timezone: str | None = None) -> BusinessHours:
    """A valid random schedule on a 30-minute grid, some days crossing midnight."""
    while True:
        weekly: dict[str, list[list[str]]] = {}
        for day in DAYS:
            if rng.random() < 0.25:
                continue
            marks = sorted(rng.sample(range(0, 49), rng.choice([2, 2, 4])))
            pairs = [marks[i : i + 2] for i in range(0, len(marks), 2)]
            if rng.random() < 0.3:  # last interval runs past midnight
                pairs[-1][1] = rng.randrange(0, pairs[-1][0] + 1)
            weekly[day] = [
                [f"{a // 2:02d}:{a % 2 * 30:02d}", f"{b // 2:02d}:{b % 2 * 30:02d}"]
                for a, b in pairs
            ]
        zone = timezone or rng.choice(["UTC", "America/Sao_Paulo", "Europe/Lisbon"])
        try:
            return BusinessHours.parse({"timezone": zone, "weekly": weekly})
        except ValueError:  # ends where it starts, or spills into the next day's hours
            continue


def wall_clock_is_open(schedule: BusinessHours, at: datetime) -> bool:
    """An independent reading of the schedule on the local wall clock (no DST subtleties)."""
    local = at.astimezone(ZoneInfo(schedule.timezone))
    wall = local.replace(tzinfo=None)
    for day in (local.date(), local.date() - timedelta(days=1)):
        midnight = datetime.combine(day, datetime.min.time())
        for interval in schedule.weekly[day.weekday()]:
            start = midnight + timedelta(minutes=interval.start_min)
            end = midnight + timedelta(minutes=interval.end_min)
            if start <= wall < end:
                return True
    return False


def assert_consistent(schedule: BusinessHours, at: datetime) -> None:
    """is_open, closed_since and next_opening describe one and the same timeline."""
    tick = timedelta(microseconds=1)
    is_open = schedule.is_open(at)
    closed_since = schedule.closed_since(at)
    next_opening = schedule.next_opening(at)

    if is_open:
        assert closed_since is None
    elif closed_since is not None:
        assert closed_since <= at
        assert schedule.is_open(closed_since - tick)
        assert not schedule.is_open(closed_since)
        assert schedule.next_opening(closed_since - tick) in (None, next_opening)
    if next_opening is not None:
        assert at < next_opening <= at + timedelta(days=8)
        assert schedule.is_open(next_opening)
        assert not schedule.is_open(next_opening - tick)
        if not is_open:
            assert schedule.closed_since(next_opening - tick) == closed_since
    if not any(schedule.weekly):
        assert (is_open, closed_since, next_opening) == (False, None, None)
    elif not is_open:  # the week repeats, so a closed business has closed and will open
        assert closed_since is not None
        assert next_opening is not None


@pytest.mark.parametrize("seed", range(40))
def test_random_schedules_agree_with_the_wall_clock_and_with_themselves(seed: int) -> None:
    rng = random.Random(seed)
    schedule = random_schedule(rng)

    for _ in range(25):
        at = utc("2025-01-01 00:00") + timedelta(minutes=rng.randrange(0, 60 * 24 * 365))

        if schedule.timezone != "Europe/Lisbon":  # no clock changes in 2025
            assert schedule.is_open(at) is wall_clock_is_open(schedule, at)
        assert_consistent(schedule, at)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("weekend", ["2025-03-29 00:00", "2025-10-25 00:00"])
def test_random_lisbon_schedules_stay_consistent_over_a_clock_change(
    seed: int, weekend: str
) -> None:
    schedule = random_schedule(random.Random(seed), timezone="Europe/Lisbon")

    for step in range(0, 2 * 24 * 60, 20):  # Saturday and Sunday (clocks change at 01:00 UTC)
        assert_consistent(schedule, utc(weekend) + timedelta(minutes=step))


# --------------------------------------------------------------------------- parse

PARSE_ERROR_CASES = [
    pytest.param([], "must be an object", id="not-an-object"),
    pytest.param({"timezone": "UTC"}, "need both 'timezone' and 'weekly'", id="missing-weekly"),
    pytest.param({"weekly": {}}, "need both 'timezone' and 'weekly'", id="missing-timezone"),
    pytest.param(
        {"timezone": "UTC", "weekly": {}, "holidays": []},
        "unknown business hours keys: 'holidays'",
        id="unknown-key",
    ),
    pytest.param(
        {"timezone": "Mars/Olympus", "weekly": {}},
        "unknown timezone 'Mars/Olympus': use an IANA name",
        id="unknown-timezone",
    ),
    pytest.param(
        {"timezone": "America", "weekly": {}}, "unknown timezone 'America'", id="zone-folder"
    ),
    pytest.param(
        {"timezone": "../etc/passwd", "weekly": {}}, "unknown timezone", id="zone-path-escape"
    ),
    pytest.param({"timezone": -3, "weekly": {}}, "must be an IANA time zone name", id="offset"),
    pytest.param({"timezone": "", "weekly": {}}, "must be an IANA time zone name", id="empty-tz"),
    pytest.param(
        {"timezone": "UTC", "weekly": [["09:00", "18:00"]]},
        "'weekly' must be an object",
        id="weekly-is-a-list",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"monday": []}},
        "unknown day 'monday': use mon, tue, wed, thu, fri, sat, sun",
        id="long-day-name",
    ),
    pytest.param({"timezone": "UTC", "weekly": {"Mon": []}}, "unknown day 'Mon'", id="capital"),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": "09:00-18:00"}},
        "mon: intervals must be a list of",
        id="day-is-a-string",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": {"start": "09:00"}}},
        "mon: intervals must be a list of",
        id="day-is-an-object",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": ["09:00", "18:00"]}},
        "mon interval 1: expected a \\[start, end\\] pair",
        id="missing-inner-list",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"tue": [["09:00", "12:00"], ["13:00"]]}},
        "tue interval 2: expected a \\[start, end\\] pair",
        id="pair-of-one",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "12:00", "18:00"]]}},
        "mon interval 1: expected a \\[start, end\\] pair",
        id="triple",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["9:00", "18:00"]]}},
        "mon interval 1: malformed time '9:00', use 'HH:MM' \\(24-hour clock\\)",
        id="one-digit-hour",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "18:60"]]}},
        "malformed time '18:60'",
        id="minute-60",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["25:00", "26:00"]]}},
        "malformed time '25:00'",
        id="hour-25",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "24:30"]]}},
        "malformed time '24:30'",
        id="past-24",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["09:00", 1800]]}},
        "malformed time 1800",
        id="number",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["9am", "6pm"]]}},
        "malformed time '9am'",
        id="am-pm",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"mon": [["24:00", "02:00"]]}},
        "mon interval 1: '24:00' can only end an interval",
        id="starts-at-24",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"wed": [["09:00", "09:00"]]}},
        "wed interval 1: starts and ends at 09:00; for a whole day use \\['00:00', '24:00'\\]",
        id="start-equals-end",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"wed": [["00:00", "00:00"]]}},
        "starts and ends at 00:00",
        id="midnight-to-midnight",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"tue": [["09:00", "13:00"], ["12:00", "18:00"]]}},
        "tue: intervals 09:00-13:00 and 12:00-18:00 overlap",
        id="overlap",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"tue": [["12:00", "18:00"], ["09:00", "13:00"]]}},
        "tue: intervals 09:00-13:00 and 12:00-18:00 overlap",
        id="overlap-out-of-order",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"tue": [["09:00", "12:00"], ["09:00", "12:00"]]}},
        "tue: intervals 09:00-12:00 and 09:00-12:00 overlap",
        id="duplicate",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"fri": [["18:00", "02:00"], ["23:00", "23:30"]]}},
        "fri: intervals 18:00-02:00 and 23:00-23:30 overlap",
        id="overlap-past-midnight",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"fri": [["22:00", "03:00"]], "sat": [["02:00", "05:00"]]}},
        "fri 22:00-03:00 runs into sat 02:00-05:00",
        id="spills-into-next-day",
    ),
    pytest.param(
        {"timezone": "UTC", "weekly": {"sun": [["22:00", "03:00"]], "mon": [["01:00", "05:00"]]}},
        "sun 22:00-03:00 runs into mon 01:00-05:00",
        id="sunday-spills-into-monday",
    ),
]


@pytest.mark.parametrize(("data", "message"), PARSE_ERROR_CASES)
def test_parse_refuses_bad_schedules_saying_what_to_fix(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessHours.parse(data)


def test_parse_normalizes_intervals_to_minutes_past_local_midnight() -> None:
    schedule = hours(SAO_PAULO)

    assert schedule.timezone == "America/Sao_Paulo"
    assert schedule.weekly == (
        (OpenInterval(540, 1080),),
        (OpenInterval(540, 720), OpenInterval(780, 1080)),
        (),
        (OpenInterval(540, 1080),),
        (OpenInterval(1080, 1560),),
        (OpenInterval(540, 780),),
        (OpenInterval(1200, 1440),),
    )


VALID_EDGE_CASES = [
    pytest.param({"mon": [["00:00", "24:00"]]}, id="whole-day"),
    pytest.param({"mon": [["09:00", "12:00"], ["12:00", "18:00"]]}, id="touching-intervals"),
    pytest.param({"fri": [["22:00", "02:00"]], "sat": [["02:00", "05:00"]]}, id="touching-days"),
    pytest.param({"mon": [["23:59", "23:58"]]}, id="almost-a-day-past-midnight"),
    pytest.param({"mon": [], "tue": []}, id="days-listed-but-closed"),
    pytest.param({"mon": (("09:00", "18:00"),)}, id="tuples-accepted"),
]


@pytest.mark.parametrize("weekly", VALID_EDGE_CASES)
def test_edge_schedules_are_valid_and_round_trip(weekly: dict[str, Any]) -> None:
    schedule = hours({"timezone": "UTC", "weekly": weekly})

    assert BusinessHours.parse(schedule.to_json()) == schedule


def test_an_interval_ending_at_00_00_means_24_00() -> None:
    ending_at_midnight = hours({"timezone": "UTC", "weekly": {"sun": [["20:00", "00:00"]]}})

    assert ending_at_midnight == hours({"timezone": "UTC", "weekly": {"sun": [["20:00", "24:00"]]}})
    assert ending_at_midnight.to_json()["weekly"] == {"sun": [["20:00", "24:00"]]}


@pytest.mark.parametrize("data", [SAO_PAULO, LISBON_WEEKDAYS, ALWAYS_OPEN, NEVER_OPEN])
def test_to_json_gives_back_the_stored_json(data: dict[str, Any]) -> None:
    schedule = hours(data)

    assert schedule.to_json() == data
    assert BusinessHours.parse(json.loads(json.dumps(schedule.to_json()))) == schedule


def test_to_json_sorts_intervals_and_drops_closed_days() -> None:
    schedule = hours(
        {"timezone": "UTC", "weekly": {"wed": [], "tue": [["13:00", "18:00"], ["09:00", "12:00"]]}}
    )

    assert schedule.to_json() == {
        "timezone": "UTC",
        "weekly": {"tue": [["09:00", "12:00"], ["13:00", "18:00"]]},
    }


@pytest.mark.parametrize("seed", range(20))
def test_random_schedules_round_trip_through_json(seed: int) -> None:
    schedule = random_schedule(random.Random(seed))

    assert BusinessHours.parse(json.loads(json.dumps(schedule.to_json()))) == schedule


def test_schedules_are_immutable_and_hashable() -> None:
    schedule = hours(SAO_PAULO)

    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.timezone = "UTC"  # type: ignore[misc]
    assert hash(schedule) == hash(hours(SAO_PAULO))


@pytest.mark.parametrize(
    ("start_min", "end_min"),
    [(-1, 60), (1440, 1500), (600, 600), (600, 500), (600, 2040)],
)
def test_open_intervals_refuse_impossible_minutes(start_min: int, end_min: int) -> None:
    with pytest.raises(ValueError):
        OpenInterval(start_min=start_min, end_min=end_min)


def test_a_schedule_needs_seven_days() -> None:
    with pytest.raises(ValueError, match="one tuple of intervals per day"):
        BusinessHours(timezone="UTC", weekly=((),) * 6)
