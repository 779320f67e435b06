"""decide_turn: what a conversation does with the burst it is about to answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.business_hours import BusinessHours
from engine.core.debounce import BurstMessage, merge_burst
from engine.core.statuses import ClienteStatus
from engine.core.turn_policy import ConversationState, TurnKind, decide_turn
from tests.support.behaviours import BEHAVIOUR, behaviour

ATIVO = ClienteStatus.ATIVO
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # a Friday, 12:00 in São Paulo
OPEN_WEEKDAYS = BusinessHours.parse(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
)
NIGHT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # Friday 23:00 in São Paulo: closed
FRESH = ConversationState(None, None, None, None)
ONGOING = ConversationState(None, NOW - timedelta(minutes=30), NOW - timedelta(minutes=5), None)


def burst(*texts: str) -> tuple[BurstMessage, ...]:
    return tuple(BurstMessage(i, t, "conversation", 1000 + i) for i, t in enumerate(texts, 1))


@pytest.mark.parametrize(
    ("messages", "state", "behaviour", "now", "kind", "new_session"),
    [
        (burst("oi"), FRESH, BEHAVIOUR, NOW, TurnKind.ANSWER, True),
        (burst("oi"), ONGOING, BEHAVIOUR, NOW, TurnKind.ANSWER, False),
        (
            burst("oi"),
            ConversationState(None, NOW - timedelta(days=1), NOW - timedelta(hours=2), None),
            BEHAVIOUR,
            NOW,
            TurnKind.ANSWER,
            True,
        ),
        (burst("oi", "#SAIR "), ONGOING, BEHAVIOUR, NOW, TurnKind.FINISH, False),
        (burst("#sair", "na verdade, espera"), ONGOING, BEHAVIOUR, NOW, TurnKind.ANSWER, False),
        (burst(""), ONGOING, BEHAVIOUR, NOW, TurnKind.MEDIA_UNSUPPORTED, False),
        (burst("", "e o preço?"), ONGOING, BEHAVIOUR, NOW, TurnKind.ANSWER, False),
        (
            burst("oi"),
            ConversationState(NOW + timedelta(minutes=1), None, None, None),
            BEHAVIOUR,
            NOW,
            TurnKind.SKIP,
            False,
        ),
        (
            burst("oi"),
            ConversationState(NOW - timedelta(seconds=1), None, None, None),
            BEHAVIOUR,
            NOW,
            TurnKind.ANSWER,
            True,
        ),
    ],
    ids=[
        "first-message",
        "ongoing",
        "expired",
        "finish-keyword",
        "finish-not-last",
        "media-only",
        "media-and-text",
        "paused",
        "pause-over",
    ],
)
def test_decision_table(messages, state, behaviour, now, kind, new_session) -> None:  # type: ignore[no-untyped-def]
    decision = decide_turn(messages, state, behaviour, cliente_status=ATIVO, now=now)
    assert decision.kind is kind
    if kind is not TurnKind.SKIP:
        assert decision.new_session is new_session


def test_fixed_replies_come_from_the_behaviour() -> None:
    assert (
        decide_turn(burst("#sair"), ONGOING, BEHAVIOUR, cliente_status=ATIVO, now=NOW).fixed_reply
        == "tchau"
    )
    assert decide_turn(
        burst("#sair"), ONGOING, BEHAVIOUR, cliente_status=ATIVO, now=NOW
    ).close_session
    assert (
        decide_turn(burst(""), ONGOING, BEHAVIOUR, cliente_status=ATIVO, now=NOW).fixed_reply
        == "só texto"
    )
    assert (
        decide_turn(burst("oi"), ONGOING, BEHAVIOUR, cliente_status=ATIVO, now=NOW).fixed_reply
        is None
    )


def test_paused_burst_is_skipped_with_the_reason() -> None:
    paused = ConversationState(NOW + timedelta(minutes=5), None, None, None)
    decision = decide_turn(burst("oi"), paused, BEHAVIOUR, cliente_status=ATIVO, now=NOW)
    assert (decision.kind, decision.skip_reason) == (TurnKind.SKIP, "paused")


def test_out_of_office_is_said_once_per_closed_period() -> None:
    open_weekdays = behaviour(business_hours=OPEN_WEEKDAYS)
    assert (
        decide_turn(burst("oi"), ONGOING, open_weekdays, cliente_status=ATIVO, now=NOW).kind
        is TurnKind.ANSWER
    )
    first = decide_turn(burst("oi"), ONGOING, open_weekdays, cliente_status=ATIVO, now=NIGHT)
    assert (first.kind, first.fixed_reply) == (TurnKind.OUT_OF_OFFICE, "fechado")
    told = ConversationState(None, None, None, NIGHT - timedelta(minutes=10))
    again = decide_turn(burst("alô?"), told, open_weekdays, cliente_status=ATIVO, now=NIGHT)
    assert (again.kind, again.skip_reason) == (TurnKind.SKIP, "out_of_office")
    told_yesterday = ConversationState(None, None, None, NIGHT - timedelta(days=1))
    next_night = decide_turn(
        burst("oi"), told_yesterday, open_weekdays, cliente_status=ATIVO, now=NIGHT
    )
    assert next_night.kind is TurnKind.OUT_OF_OFFICE  # a new closed period: say it again


def test_texts_merge_in_whatsapp_order_without_blank_media() -> None:
    messages = (
        BurstMessage(2, "segunda", None, 20),
        BurstMessage(1, "primeira", None, 10),
        BurstMessage(3, "", "audioMessage", 30),
    )
    assert merge_burst(messages) == "primeira\nsegunda"


@pytest.mark.parametrize(
    "status", [s for s in ClienteStatus if s is not ClienteStatus.ATIVO], ids=str
)
def test_a_burst_of_a_cliente_no_longer_served_is_skipped_before_anything_else(
    status: ClienteStatus,
) -> None:
    """Checked first: not even the finish keyword or the out-of-office notice is sent."""
    paused = ConversationState(NOW + timedelta(minutes=5), None, None, None)
    for state in (ONGOING, paused):
        decision = decide_turn(burst("#sair"), state, BEHAVIOUR, cliente_status=status, now=NOW)
        assert (decision.kind, decision.skip_reason) == (
            TurnKind.SKIP,
            f"cliente_{status.value.lower()}",
        )
