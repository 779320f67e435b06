"""What one chat may cost (engine/core/chat_limits.py) and how a verdict changes the turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.chat_limits import ChatActivity, ChatLimits, ChatVerdict, Sent, judge_chat
from engine.core.reasons import IgnoreReason
from engine.core.turn_policy import TurnDecision, TurnKind, limit_turn

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIMITS = ChatLimits(
    max_messages=5,
    window_s=300,
    loop_repeats=3,
    loop_fast_answers=3,
    min_human_gap_s=1.5,
    daily_llm_tokens=1000,
)
QUESTION = "qual o horário de sábado?"
REPLY = "Abrimos de segunda a sábado, das 8h às 18h."


def _at(seconds_ago: float) -> datetime:
    return NOW - timedelta(seconds=seconds_ago)


def _inbound(*items: tuple[float, str]) -> list[Sent]:
    return [Sent(_at(ago), text) for ago, text in items]


@pytest.mark.parametrize(
    ("inbound", "replies", "tokens", "calls_model", "verdict"),
    [
        pytest.param(_inbound((10, QUESTION)), [], 0, True, None, id="a-question"),
        pytest.param(
            _inbound(*((i, f"msg {i}") for i in range(5))), [], 0, True, None, id="five-is-ok"
        ),
        pytest.param(
            _inbound(*((i, f"msg {i}") for i in range(6))),
            [],
            0,
            True,
            ChatVerdict.TOO_MANY_MESSAGES,
            id="six-in-the-window",
        ),
        pytest.param(
            _inbound(*((400 + i, f"msg {i}") for i in range(6)), (1, QUESTION)),
            [],
            0,
            True,
            None,
            id="old-messages-do-not-count",
        ),
        pytest.param(
            _inbound((5, REPLY.upper())),
            [Sent(_at(30), REPLY)],
            0,
            True,
            ChatVerdict.LOOP,
            id="our-reply-echoed-back",
        ),
        pytest.param(
            _inbound((5, "ok")),
            [Sent(_at(30), "ok")],
            0,
            True,
            None,
            id="a-short-echo-is-human",
        ),
        pytest.param(
            _inbound((30, QUESTION), (20, QUESTION), (10, QUESTION)),
            [],
            0,
            True,
            ChatVerdict.LOOP,
            id="the-same-text-three-times",
        ),
        pytest.param(
            _inbound((30, "sim"), (20, "sim"), (10, "sim")),
            [],
            0,
            True,
            None,
            id="short-repeats-are-human",
        ),
        pytest.param(
            _inbound((59, "a 1"), (39, "a 2"), (19, "a 3")),
            [Sent(_at(60), "r 1"), Sent(_at(40), "r 2"), Sent(_at(20), "r 3")],
            0,
            True,
            ChatVerdict.LOOP,
            id="three-answers-within-a-second",
        ),
        pytest.param(
            _inbound((55, "a 1"), (35, "a 2"), (19, "a 3")),
            [Sent(_at(60), "r 1"), Sent(_at(40), "r 2"), Sent(_at(20), "r 3")],
            0,
            True,
            None,
            id="people-take-seconds",
        ),
        pytest.param(_inbound((1, QUESTION)), [], 1000, True, ChatVerdict.OVER_BUDGET, id="spent"),
        pytest.param(_inbound((1, QUESTION)), [], 999, True, None, id="one-token-left"),
        pytest.param(_inbound((1, QUESTION)), [], 5000, False, None, id="no-model-no-budget"),
        pytest.param(
            _inbound(*((i, QUESTION) for i in range(6))),
            [],
            5000,
            True,
            ChatVerdict.LOOP,
            id="a-loop-wins-over-a-flood",
        ),
    ],
)
def test_judge_chat(
    inbound: list[Sent],
    replies: list[Sent],
    tokens: int,
    calls_model: bool,
    verdict: ChatVerdict | None,
) -> None:
    activity = ChatActivity(inbound, replies, tokens)

    assert judge_chat(activity, LIMITS, now=NOW, calls_model=calls_model) == verdict


def test_no_limits_judge_nothing() -> None:
    off = ChatLimits(0, 300, 0, 0, 1.5, 0)
    flood = ChatActivity(_inbound(*((i, QUESTION) for i in range(100))), [], 10**9)

    assert judge_chat(flood, off, now=NOW, calls_model=True) is None


ANSWER = TurnDecision(TurnKind.ANSWER, QUESTION)
FINISH = TurnDecision(TurnKind.FINISH, "#sair", fixed_reply="tchau", close_session=True)


@pytest.mark.parametrize(
    ("decision", "verdict", "kind", "reply", "skip"),
    [
        (ANSWER, None, TurnKind.ANSWER, None, None),
        (ANSWER, ChatVerdict.LOOP, TurnKind.SKIP, None, IgnoreReason.LOOP_SUSPECTED),
        (FINISH, ChatVerdict.LOOP, TurnKind.SKIP, None, IgnoreReason.LOOP_SUSPECTED),
        (ANSWER, ChatVerdict.TOO_MANY_MESSAGES, TurnKind.TOO_MANY_MESSAGES, "calma", None),
        (ANSWER, ChatVerdict.OVER_BUDGET, TurnKind.OVER_BUDGET, "orçamento", None),
        (FINISH, ChatVerdict.OVER_BUDGET, TurnKind.FINISH, "tchau", None),
    ],
)
def test_limit_turn(
    decision: TurnDecision,
    verdict: ChatVerdict | None,
    kind: TurnKind,
    reply: str | None,
    skip: IgnoreReason | None,
) -> None:
    limited = limit_turn(
        decision, verdict, too_many_messages_message="calma", llm_budget_message="orçamento"
    )

    assert (limited.kind, limited.fixed_reply, limited.skip_reason) == (kind, reply, skip)
