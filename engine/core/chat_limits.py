"""Limits on what one chat may cost: a contact sending too much, another bot answering ours, a
cliente over its daily LLM token budget. Pure: the activity and the clock are parameters.

Checked before a turn that would send something, in order:
- a *loop* (the other side looks like a bot): our own reply echoed back, the same text over and
  over, or answers arriving faster than a person types, again and again. The bot goes silent
  without a word (a notice would feed the loop) and the chat waits for a human.
- *too many messages*: more than `max_messages` from the contact within `window_s`. One polite
  notice, then the chat waits for a human (which pauses the bot: no second notice).
- *over budget*: the cliente's LLM tokens of the day (UTC) reached `daily_llm_tokens`; only a
  turn that would call the model is stopped: a fixed reply, and the chat waits for a human.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# Texts shorter than this ("ok", "oi", "sim") are repeated by people all the time.
MIN_LOOP_TEXT_CHARS = 12


class ChatVerdict(StrEnum):
    """Why a turn is not answered normally; also the chat's needs-a-human reason."""

    LOOP = "loop_suspected"
    TOO_MANY_MESSAGES = "too_many_messages"
    OVER_BUDGET = "llm_budget_exceeded"


@dataclass(frozen=True)
class ChatLimits:
    max_messages: int  # from one contact within window_s; 0 = no limit
    window_s: float
    loop_repeats: int  # the same text this many times within window_s is a loop; 0 = off
    loop_fast_answers: int  # this many answers faster than min_human_gap_s is a loop; 0 = off
    min_human_gap_s: float  # faster than this after our reply, nobody typed it
    daily_llm_tokens: int  # per cliente; 0 = no budget


@dataclass(frozen=True)
class Sent:
    at: datetime
    text: str


@dataclass(frozen=True)
class ChatActivity:
    """What the chat did within the window (this burst included) and the cliente's day."""

    inbound: Sequence[Sent]  # the contact's messages, oldest first
    replies: Sequence[Sent]  # our reply parts, oldest first
    llm_tokens_today: int


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def looks_like_a_bot(activity: ChatActivity, limits: ChatLimits) -> bool:
    ours = {_normal(r.text) for r in activity.replies}
    texts = [_normal(m.text) for m in activity.inbound]
    long_texts = [t for t in texts if len(t) >= MIN_LOOP_TEXT_CHARS]
    if any(t in ours for t in long_texts):
        return True  # our own words came back
    repeats = Counter(long_texts).most_common(1)
    if limits.loop_repeats and repeats and repeats[0][1] >= limits.loop_repeats:
        return True
    if limits.loop_fast_answers:
        gap = timedelta(seconds=limits.min_human_gap_s)
        fast = sum(
            1
            for reply in activity.replies
            if any(reply.at <= m.at < reply.at + gap for m in activity.inbound)
        )
        if fast >= limits.loop_fast_answers:
            return True
    return False


def judge_chat(
    activity: ChatActivity, limits: ChatLimits, *, now: datetime, calls_model: bool
) -> ChatVerdict | None:
    """Why this turn must not be answered as usual (None: answer it)."""
    since = now - timedelta(seconds=limits.window_s)
    recent = ChatActivity(
        [m for m in activity.inbound if m.at >= since],
        [r for r in activity.replies if r.at >= since],
        activity.llm_tokens_today,
    )
    if looks_like_a_bot(recent, limits):
        return ChatVerdict.LOOP
    if limits.max_messages and len(recent.inbound) > limits.max_messages:
        return ChatVerdict.TOO_MANY_MESSAGES
    if (
        calls_model
        and limits.daily_llm_tokens
        and (activity.llm_tokens_today >= limits.daily_llm_tokens)
    ):
        return ChatVerdict.OVER_BUDGET
    return None
