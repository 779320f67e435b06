"""Day ranges of the tenant API's export and analytics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.core.history import MAX_RANGE_DAYS, DayRange
from engine.errors import InvalidInput


def test_a_day_range_covers_whole_days_in_its_timezone() -> None:
    days = DayRange.parse(date(2026, 12, 1), date(2026, 12, 2), "America/Sao_Paulo")
    start, end = days.bounds()
    assert start.astimezone(UTC) == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    assert days.days() == [date(2026, 12, 1), date(2026, 12, 2)]


@pytest.mark.parametrize(
    ("since", "until", "tz", "reason"),
    [
        (date(2026, 12, 2), date(2026, 12, 1), "UTC", "on or after"),
        (date(2025, 1, 1), date(2026, 12, 1), "UTC", f"{MAX_RANGE_DAYS} days"),
        (date(2026, 1, 1), date(2026, 1, 2), "Mars/Olympus", "IANA"),
        (date(2026, 1, 1), date(2026, 1, 2), "../../etc/passwd", "IANA"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(
    since: date, until: date, tz: str, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason):
        DayRange.parse(since, until, tz)
