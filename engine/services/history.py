"""A cliente's history for the tenant API: the export, streamed as JSONL or CSV, and analytics."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core.history import EXPORT_FIELDS, DayRange, DayStats
from engine.db import clientes as clientes_db
from engine.db import history as history_db


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        return "application/x-ndjson" if self is ExportFormat.JSONL else "text/csv"


async def export(
    sessions: async_sessionmaker[AsyncSession],
    cliente_id: int,
    days: DayRange,
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    """The cliente's messages in `days`, one line each, produced while the rows are read."""
    async with sessions() as session:
        await clientes_db.get_cliente(session, cliente_id)
        if fmt is ExportFormat.CSV:
            yield _csv_line(EXPORT_FIELDS)
        async for row in history_db.stream_export(session, cliente_id, days):
            values = {name: _plain(row[name]) for name in EXPORT_FIELDS}
            if fmt is ExportFormat.JSONL:
                yield (json.dumps(values, ensure_ascii=False) + "\n").encode()
            else:
                yield _csv_line(values[name] for name in EXPORT_FIELDS)


async def analytics(
    sessions: async_sessionmaker[AsyncSession], cliente_id: int, days: DayRange
) -> list[DayStats]:
    async with sessions() as session:
        await clientes_db.get_cliente(session, cliente_id)
        return await history_db.analytics(session, cliente_id, days)


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def _csv_line(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue().encode()
