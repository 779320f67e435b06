"""The supervisor's retention step: delete what is older than the retention settings allow,
one batch per transaction, and log how much went."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from engine.config import Settings
from engine.core.retention import cutoff
from engine.db import retention as retention_db
from engine.db.session import create_engine, session_factory

log = logging.getLogger(__name__)

Prune = Callable[[AsyncSession, datetime, int], Awaitable[int]]


class Retention:
    def __init__(self, settings: Settings):
        assert settings.database_url
        self._message_days = settings.message_retention_days
        self._webhook_days = settings.processed_webhook_retention_days
        self._batch = settings.retention_batch_rows
        self._engine = create_engine(
            settings.database_url,
            pool_size=1,
            statement_timeout_s=settings.db_statement_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self._sessions = session_factory(self._engine)

    async def run_once(self, *, now: datetime | None = None) -> dict[str, int]:
        """Prune everything past its retention; returns the rows deleted per kind."""
        now = now or datetime.now(UTC)
        steps: list[tuple[str, datetime | None, Prune]] = [
            (
                "processed_webhooks",
                cutoff(now, self._webhook_days),
                retention_db.prune_processed_webhooks,
            ),
            ("conversations", cutoff(now, self._message_days), retention_db.prune_conversations),
            ("messages", cutoff(now, self._message_days), retention_db.prune_messages),
            ("turns", cutoff(now, self._message_days), retention_db.prune_turns),
        ]
        counts = {}
        for kind, before, prune in steps:
            if before is not None:
                counts[kind] = await self._in_batches(prune, before)
        if any(counts.values()):
            log.info("retention pass", extra=counts)
        return counts

    async def _in_batches(self, prune: Prune, before: datetime) -> int:
        total = 0
        while True:
            async with self._sessions() as session:
                deleted = await prune(session, before, self._batch)
                await session.commit()
            total += deleted
            if deleted < self._batch:
                return total
