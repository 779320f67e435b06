from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.config import Settings
from engine.core.retention import cutoff

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "before"),
    [(0, None), (1, NOW - timedelta(days=1)), (365, NOW - timedelta(days=365))],
)
def test_cutoff(days: int, before: datetime | None) -> None:
    assert cutoff(NOW, days) == before


@pytest.mark.parametrize("days", [1, 2])
def test_webhook_keys_are_kept_while_senders_retry(days: int) -> None:
    with pytest.raises(ValueError, match="PROCESSED_WEBHOOK_RETENTION_DAYS"):
        Settings(processed_webhook_retention_days=days)


@pytest.mark.parametrize("days", [0, 3, 90])
def test_webhook_key_retention_accepted(days: int) -> None:
    assert Settings(processed_webhook_retention_days=days).processed_webhook_retention_days == days
