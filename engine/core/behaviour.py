"""How a cliente's conversations behave: the global defaults with the cliente's own overrides.

`ClienteOverrides` is what a cliente row stores (None = use the default); `Behaviour` is the
effective result, built once per use with `defaults.overridden_by(overrides)` and read by the
inbox, the turn policy, recovery and the reply pipeline. The pause rule lives here too, so the
webhook (at arrival) and the turn policy (at answer time) apply the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol, TypeVar

from engine.core.business_hours import BusinessHours
from engine.core.debounce import DebouncePolicy
from engine.core.statuses import GroupReplies


class OpeningHours(Protocol):
    def is_open(self, at: datetime) -> bool: ...

    def closed_since(self, at: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class ClienteOverrides:
    """A cliente's own settings as stored on its row; None means "use the global default"."""

    system_prompt: str | None = None
    debounce_s: float | None = None
    max_wait_s: float | None = None
    human_pause_s: float | None = None
    session_expire_s: float | None = None
    finish_keyword: str | None = None
    finish_message: str | None = None
    media_unsupported_message: str | None = None
    out_of_office_message: str | None = None
    business_hours: Mapping[str, Any] | None = None  # the stored JSON (validated on write)
    group_replies: GroupReplies = GroupReplies.OFF
    relevance_min_score: float | None = None
    dont_know_message: str | None = None
    handoff_webhook_url: str | None = None
    handoff_whatsapp: str | None = None
    chat_max_messages: int | None = None  # set by operators only (not the tenant API)
    llm_daily_tokens: int | None = None  # set by operators only (not the tenant API)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The cliente columns that hold overrides (same names)."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Behaviour:
    """A cliente's effective settings: its own values, else the global defaults."""

    persona: str
    debounce: DebouncePolicy
    human_pause_s: float
    session_expire_s: float
    finish_keyword: str
    finish_message: str
    media_unsupported_message: str
    out_of_office_message: str
    business_hours: OpeningHours | None = None
    group_replies: GroupReplies = GroupReplies.OFF
    # "I don't know" and the hand-off to a human (engine.core.relevance, engine.services.handoff)
    relevance_min_score: float = 0.0
    dont_know_message: str = ""
    handoff_webhook_url: str | None = None
    handoff_whatsapp: str | None = None
    # What one chat may cost (engine.core.chat_limits); 0 = no limit
    chat_max_messages: int = 0
    llm_daily_tokens: int = 0

    def overridden_by(self, overrides: ClienteOverrides) -> Behaviour:
        """This behaviour with a cliente's overrides applied. The debounce cap is never shorter
        than the debounce: a cliente's long debounce lifts the global cap with it."""
        o = overrides
        debounce_s = _or(o.debounce_s, self.debounce.debounce_s)
        max_wait_s = max(_or(o.max_wait_s, self.debounce.max_wait_s), debounce_s)
        hours = BusinessHours.parse(o.business_hours) if o.business_hours else None
        return Behaviour(
            persona=_or(o.system_prompt, self.persona),
            debounce=DebouncePolicy(debounce_s, max_wait_s),
            human_pause_s=_or(o.human_pause_s, self.human_pause_s),
            session_expire_s=_or(o.session_expire_s, self.session_expire_s),
            finish_keyword=_or(o.finish_keyword, self.finish_keyword),
            finish_message=_or(o.finish_message, self.finish_message),
            media_unsupported_message=_or(
                o.media_unsupported_message, self.media_unsupported_message
            ),
            out_of_office_message=_or(o.out_of_office_message, self.out_of_office_message),
            business_hours=hours or self.business_hours,
            group_replies=o.group_replies,
            relevance_min_score=_or(o.relevance_min_score, self.relevance_min_score),
            dont_know_message=_or(o.dont_know_message, self.dont_know_message),
            handoff_webhook_url=o.handoff_webhook_url or self.handoff_webhook_url,
            handoff_whatsapp=o.handoff_whatsapp or self.handoff_whatsapp,
            chat_max_messages=_or(o.chat_max_messages, self.chat_max_messages),
            llm_daily_tokens=_or(o.llm_daily_tokens, self.llm_daily_tokens),
        )


def is_paused(paused_until: datetime | None, *, now: datetime) -> bool:
    """The pause rule: the bot is silent in a chat until `paused_until` (a human is answering)."""
    return paused_until is not None and paused_until > now


T = TypeVar("T")


def _or(value: T | None, default: T) -> T:
    return default if value is None else value
