"""Retention: how old a row may get before the supervisor's pass deletes it. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta


def cutoff(now: datetime, days: int) -> datetime | None:
    """Rows older than the returned instant are pruned; None: `days` is 0, keep forever."""
    return now - timedelta(days=days) if days > 0 else None
