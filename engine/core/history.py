"""A cliente's history as the tenant API reads it: date ranges in the cliente's timezone, the
conversation filters, what one exported message holds, and one day of analytics. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import InvalidInput

MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class DayRange:
    """Whole days `since`…`until` (both included) in timezone `tz`."""

    since: date
    until: date
    tz: str = "UTC"

    @classmethod
    def parse(cls, since: date, until: date, tz: str = "UTC") -> DayRange:
        """Raises InvalidInput for an unknown timezone, a reversed or too long range."""
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise InvalidInput(
                f"tz: {tz!r} is not an IANA timezone (e.g. America/Sao_Paulo)"
            ) from e
        if until < since:
            raise InvalidInput("until must be on or after since")
        if until >= date.max - timedelta(days=1):
            raise InvalidInput("until must be before 9999-12-30")
        if (until - since).days >= MAX_RANGE_DAYS:
            raise InvalidInput(f"a range covers at most {MAX_RANGE_DAYS} days")
        return cls(since, until, tz)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end): midnight of `since` to midnight after `until`, in `tz`."""
        zone = ZoneInfo(self.tz)
        start = datetime.combine(self.since, time(), tzinfo=zone)
        end = datetime.combine(self.until + timedelta(days=1), time(), tzinfo=zone)
        return start, end

    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]


class ConversationFilter(StrEnum):
    """What a conversation is doing now (the `status` filter of the conversation list)."""

    PAUSED = "paused"  # a human (or an operator) is answering: the bot is silent
    WAITING = "waiting"  # a burst is waiting for its reply
    IDLE = "idle"  # neither


# One exported message: a line of JSONL (an object) or a CSV row (these columns, in order).
EXPORT_FIELDS = (
    "message_id",
    "conversation_id",
    "chat_jid",
    "created_at",
    "direction",
    "author",
    "status",
    "message_type",
    "text",
    "ignored_reason",
    "turn_id",
    "reply_kind",
)


@dataclass
class DayStats:
    """One day of a cliente's activity (its timezone's day)."""

    day: date
    messages_in: int = 0  # customers' messages received
    messages_out: int = 0  # messages that went out: the bot's parts and humans' from the phone
    replies: int = 0  # bursts answered
    replies_by_kind: dict[str, int] = field(default_factory=dict)  # llm, offline, fallback, …
    median_reply_s: float | None = None  # first message of a burst → its reply, median
    llm_tokens: int = 0  # prompt + completion tokens the model reported
    active_conversations: int = 0  # conversations with a customer message that day
    takeovers: int = 0  # conversations where a human wrote from the business phone that day


def utc_instant(value: datetime | None, *, name: str) -> datetime | None:
    """An instant of a filter in UTC (a naive one is taken as UTC); InvalidInput if it falls
    outside what a timestamp can hold once in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as e:
        raise InvalidInput(f"{name}: out of range") from e
