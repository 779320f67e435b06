"""Per-cliente opening hours: is the business open now, since when closed, when does it open.

Stored as JSON, for example::

    {"timezone": "America/Sao_Paulo",
     "weekly": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "12:00"], ["13:00", "18:00"]]}}

Days are `mon` … `sun`; a missing day is closed all day. Times are "HH:MM" wall-clock time in the
schedule's zone; an interval may end at "24:00", and one whose end is not after its start
(["22:00", "02:00"]) runs past midnight into the next day and belongs to the day it starts on.

Wall-clock times become instants through `zoneinfo`, so DST is handled the PEP 495 way: a time
skipped by a spring-forward gap is read with the offset before the gap (01:30 in a 01:00→02:00
gap is 02:30 new time), and a repeated time in a fall-back fold means its first occurrence.
Instants are returned in UTC, which is safe to compare and to store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MINUTES_PER_DAY = 24 * 60
# How far `closed_since` looks back and `next_opening` looks ahead: a week plus a DST hour.
SEARCH_WINDOW = timedelta(days=8)

_TIME = re.compile(r"(\d{2}):(\d{2})")


@dataclass(frozen=True, order=True)
class OpenInterval:
    """Open from `start_min` to `end_min` minutes after local midnight of the day it belongs to.

    `end_min` > 1440 means the interval runs into the next day (["22:00", "02:00"] is 1320–1560).
    """

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_min < MINUTES_PER_DAY:
            raise ValueError("start_min must be in [0, 1440)")
        whole_day = (self.start_min, self.end_min) == (0, MINUTES_PER_DAY)
        if not (whole_day or self.start_min < self.end_min < self.start_min + MINUTES_PER_DAY):
            raise ValueError("end_min must be after start_min and less than a day later")

    def to_json(self) -> list[str]:
        """The ["HH:MM", "HH:MM"] form `BusinessHours.parse` reads."""
        end = self.end_min if self.end_min == MINUTES_PER_DAY else self.end_min % MINUTES_PER_DAY
        return [_format_minutes(self.start_min), _format_minutes(end)]


@dataclass(frozen=True)
class BusinessHours:
    """A weekly schedule in one IANA time zone; `weekly[i]` holds day `DAYS[i]`'s intervals."""

    timezone: str
    weekly: tuple[tuple[OpenInterval, ...], ...]

    def __post_init__(self) -> None:
        if len(self.weekly) != len(DAYS):
            raise ValueError("weekly must hold one tuple of intervals per day, Monday first")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> BusinessHours:
        """A validated schedule from its JSON form; `ValueError` says what an operator must fix."""
        if not isinstance(data, Mapping):
            raise ValueError("business hours must be an object with 'timezone' and 'weekly'")
        unknown = sorted(set(data) - {"timezone", "weekly"})
        if unknown:
            raise ValueError(f"unknown business hours keys: {', '.join(map(repr, unknown))}")
        if "timezone" not in data or "weekly" not in data:
            raise ValueError("business hours need both 'timezone' and 'weekly'")
        timezone = data["timezone"]
        _zone(timezone)
        weekly = data["weekly"]
        if not isinstance(weekly, Mapping):
            raise ValueError("'weekly' must be an object mapping days (mon … sun) to intervals")
        for day in weekly:
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}: use {', '.join(DAYS)}")
        days = tuple(_parse_day(day, weekly.get(day, [])) for day in DAYS)
        _check_spill_over(days)
        return cls(timezone=timezone, weekly=days)

    def to_json(self) -> dict[str, Any]:
        """The JSON form `parse` reads back into an equal schedule (closed days are left out)."""
        return {
            "timezone": self.timezone,
            "weekly": {
                day: [interval.to_json() for interval in intervals]
                for day, intervals in zip(DAYS, self.weekly, strict=True)
                if intervals
            },
        }

    def is_open(self, at: datetime) -> bool:
        """Whether the business is open at the aware instant `at`."""
        at = _as_utc(at)
        return any(start <= at < end for start, end in self._open_periods(at))

    def closed_since(self, at: datetime) -> datetime | None:
        """When the closed period containing `at` began (UTC), or None if open at `at`.

        That is the end of the last open period before `at`; None as well if there was none in
        the 8 days before `at` (an empty schedule). One closed period has one value, so it can
        key an out-of-office reply that is sent once per closed period.
        """
        at = _as_utc(at)
        ends = []
        for start, end in self._open_periods(at):
            if start <= at < end:
                return None
            if at - SEARCH_WINDOW <= end <= at:
                ends.append(end)
        return max(ends, default=None)

    def next_opening(self, at: datetime) -> datetime | None:
        """When the next open period after `at` starts (UTC), or None if none within 8 days."""
        at = _as_utc(at)
        starts = [s for s, _ in self._open_periods(at) if at < s <= at + SEARCH_WINDOW]
        return min(starts, default=None)

    def _open_periods(self, at: datetime) -> list[tuple[datetime, datetime]]:
        """Open periods (UTC, merged where they touch) around `at`, beyond the search window."""
        zone = _zone(self.timezone)
        today = at.astimezone(zone).date()
        periods: list[tuple[datetime, datetime]] = []
        for offset in range(-SEARCH_WINDOW.days - 2, SEARCH_WINDOW.days + 2):
            day = today + timedelta(days=offset)
            for interval in self.weekly[day.weekday()]:
                start = _instant(day, interval.start_min, zone)
                end = _instant(day, interval.end_min, zone)
                if start < end:  # a spring-forward gap can leave a short interval empty
                    periods.append((start, end))
        periods.sort()
        merged: list[tuple[datetime, datetime]] = []
        for start, end in periods:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError("'timezone' must be an IANA time zone name such as 'America/Sao_Paulo'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a folder like "America"
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as 'America/Sao_Paulo'"
        ) from e


def _parse_day(day: str, raw: object) -> tuple[OpenInterval, ...]:
    if not _is_list(raw):
        raise ValueError(f"{day}: intervals must be a list of [start, end] pairs")
    intervals = []
    for number, pair in enumerate(raw, start=1):
        where = f"{day} interval {number}"
        if not _is_list(pair) or len(pair) != 2:
            raise ValueError(f"{where}: expected a [start, end] pair such as ['09:00', '18:00']")
        start = _parse_minutes(pair[0], where=where, allow_24=False)
        end = _parse_minutes(pair[1], where=where, allow_24=True)
        if start == end:
            raise ValueError(
                f"{where}: starts and ends at {pair[0]}; for a whole day use ['00:00', '24:00']"
            )
        if end <= start:  # runs past midnight into the next day
            end += MINUTES_PER_DAY
        intervals.append(OpenInterval(start_min=start, end_min=end))
    intervals.sort()
    for earlier, later in pairwise(intervals):
        if later.start_min < earlier.end_min:
            raise ValueError(
                f"{day}: intervals {_describe(earlier)} and {_describe(later)} overlap"
            )
    return tuple(intervals)


def _check_spill_over(days: tuple[tuple[OpenInterval, ...], ...]) -> None:
    """Reject an interval past midnight that runs into the next day's first opening."""
    for index, intervals in enumerate(days):
        next_index = (index + 1) % len(DAYS)
        for interval in intervals:
            spill_min = interval.end_min - MINUTES_PER_DAY
            for other in days[next_index]:
                if other.start_min < spill_min:
                    raise ValueError(
                        f"{DAYS[index]} {_describe(interval)} runs into "
                        f"{DAYS[next_index]} {_describe(other)}"
                    )


def _parse_minutes(raw: object, *, where: str, allow_24: bool) -> int:
    match = _TIME.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise ValueError(f"{where}: malformed time {raw!r}, use 'HH:MM' (24-hour clock)")
    hours, minutes = int(match[1]), int(match[2])
    if (hours, minutes) == (24, 0):
        if not allow_24:
            raise ValueError(f"{where}: '24:00' can only end an interval")
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"{where}: malformed time {raw!r}, use 'HH:MM' (24-hour clock)")
    return hours * 60 + minutes


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _describe(interval: OpenInterval) -> str:
    start, end = interval.to_json()
    return f"{start}-{end}"


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    return at.astimezone(UTC)


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `minutes` after midnight of `day` (may be a later day)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(UTC)
