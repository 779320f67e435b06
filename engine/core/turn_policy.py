"""What a conversation does with a burst it is about to answer. Pure: no I/O, no clock.

Checked in order: the cliente is not served (its status changed while the burst waited); a
human (or an operator) has paused the bot; the business is closed; the
customer said the finish keyword; there is nothing to read (media only); otherwise answer from
the knowledge base. Session expiry decides whether memory starts over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from engine.core.behaviour import Behaviour, is_paused
from engine.core.billing import is_served
from engine.core.chat_limits import ChatVerdict
from engine.core.debounce import BurstMessage, merge_burst, order_burst
from engine.core.reasons import IgnoreReason
from engine.core.statuses import ClienteStatus


@dataclass(frozen=True)
class ConversationState:
    paused_until: datetime | None
    session_started_at: datetime | None
    last_activity_at: datetime | None  # the last message before this burst, either direction
    out_of_office_sent_at: datetime | None


class TurnKind(StrEnum):
    ANSWER = "answer"  # retrieve, ask the model, send
    FINISH = "finish"  # the customer ended the session: say goodbye, forget the session
    MEDIA_UNSUPPORTED = "media_unsupported"  # nothing readable: ask for text, politely
    OUT_OF_OFFICE = "out_of_office"  # closed: say so, once per closed period
    SKIP = "skip"  # record the burst, send nothing (not served, paused, or closed and told)
    TOO_MANY_MESSAGES = "too_many_messages"  # one notice, then a human (engine.core.chat_limits)
    OVER_BUDGET = "llm_budget_exceeded"  # the cliente's LLM budget of the day is spent


@dataclass(frozen=True)
class TurnDecision:
    kind: TurnKind
    user_text: str
    fixed_reply: str | None = None  # the reply when no model is involved
    new_session: bool = False  # memory starts over with this turn
    close_session: bool = False  # memory starts over with the next turn
    skip_reason: IgnoreReason | None = None


def is_finish(text: str, keyword: str) -> bool:
    return bool(keyword.strip()) and text.strip().casefold() == keyword.strip().casefold()


def decide_turn(
    burst: Sequence[BurstMessage],
    state: ConversationState,
    behaviour: Behaviour,
    *,
    cliente_status: ClienteStatus,
    now: datetime,
) -> TurnDecision:
    user_text = merge_burst(burst)
    if not is_served(cliente_status):
        return TurnDecision(
            TurnKind.SKIP, user_text, skip_reason=IgnoreReason.for_status(cliente_status)
        )
    if is_paused(state.paused_until, now=now):
        return TurnDecision(TurnKind.SKIP, user_text, skip_reason=IgnoreReason.PAUSED)

    hours = behaviour.business_hours
    if hours is not None and not hours.is_open(now):
        closed_since = hours.closed_since(now)
        already_told = state.out_of_office_sent_at is not None and (
            closed_since is None or state.out_of_office_sent_at >= closed_since
        )
        if already_told:
            return TurnDecision(TurnKind.SKIP, user_text, skip_reason=IgnoreReason.OUT_OF_OFFICE)
        return TurnDecision(
            TurnKind.OUT_OF_OFFICE, user_text, fixed_reply=behaviour.out_of_office_message
        )

    new_session = (
        state.session_started_at is None
        or state.last_activity_at is None
        or now - state.last_activity_at > timedelta(seconds=behaviour.session_expire_s)
    )
    ordered = order_burst(burst)
    if ordered and is_finish(ordered[-1].text, behaviour.finish_keyword):
        return TurnDecision(
            TurnKind.FINISH, user_text, fixed_reply=behaviour.finish_message, close_session=True
        )
    if not user_text:
        return TurnDecision(
            TurnKind.MEDIA_UNSUPPORTED,
            user_text,
            fixed_reply=behaviour.media_unsupported_message,
            new_session=new_session,
        )
    return TurnDecision(TurnKind.ANSWER, user_text, new_session=new_session)


def limit_turn(
    decision: TurnDecision,
    verdict: ChatVerdict | None,
    *,
    too_many_messages_message: str,
    llm_budget_message: str,
) -> TurnDecision:
    """The turn once the chat's limits (engine.core.chat_limits) have been judged."""
    if verdict is None or decision.kind is TurnKind.SKIP:
        return decision
    if verdict is ChatVerdict.LOOP:
        return TurnDecision(
            TurnKind.SKIP, decision.user_text, skip_reason=IgnoreReason.LOOP_SUSPECTED
        )
    if verdict is ChatVerdict.TOO_MANY_MESSAGES:
        return TurnDecision(
            TurnKind.TOO_MANY_MESSAGES, decision.user_text, fixed_reply=too_many_messages_message
        )
    if decision.kind is not TurnKind.ANSWER:
        return decision  # a fixed reply calls no model: the budget does not stop it
    return TurnDecision(TurnKind.OVER_BUDGET, decision.user_text, fixed_reply=llm_budget_message)
