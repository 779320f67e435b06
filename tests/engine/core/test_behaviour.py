"""A cliente's behaviour: its overrides over the global defaults, and the one pause rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.behaviour import Behaviour, ClienteOverrides, is_paused
from engine.core.business_hours import BusinessHours
from engine.core.debounce import DebouncePolicy
from engine.core.statuses import GroupReplies

DEFAULTS = Behaviour(
    persona="Atendente padrão.",
    debounce=DebouncePolicy(2.0, 12.0),
    human_pause_s=1800,
    session_expire_s=14400,
    finish_keyword="#sair",
    finish_message="tchau",
    media_unsupported_message="só texto",
    out_of_office_message="fechado",
)
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("debounce_s", "max_wait_s", "expected"),
    [
        (None, None, (2.0, 12.0)),
        (5.0, None, (5.0, 12.0)),
        (None, 30.0, (2.0, 30.0)),
        (20.0, None, (20.0, 20.0)),  # a cliente's long debounce lifts the global cap with it
        (0.5, 1.0, (0.5, 1.0)),
    ],
)
def test_cliente_overrides_fall_back_to_the_defaults(
    debounce_s: float | None, max_wait_s: float | None, expected: tuple[float, float]
) -> None:
    overrides = ClienteOverrides(debounce_s=debounce_s, max_wait_s=max_wait_s)
    policy = DEFAULTS.overridden_by(overrides).debounce
    assert (policy.debounce_s, policy.max_wait_s) == expected


def test_no_overrides_is_the_defaults() -> None:
    assert DEFAULTS.overridden_by(ClienteOverrides()) == DEFAULTS


def test_every_override_wins_over_its_default() -> None:
    hours = {"timezone": "America/Sao_Paulo", "weekly": {"mon": [["09:00", "18:00"]]}}
    overrides = ClienteOverrides(
        system_prompt="Você é a Ana, da Loja Azul.",
        human_pause_s=60,
        session_expire_s=600,
        finish_keyword="#fim",
        finish_message="até logo",
        media_unsupported_message="escreva, por favor",
        out_of_office_message="voltamos às 9h",
        business_hours=hours,
        group_replies=GroupReplies.MENTIONED,
    )
    behaviour = DEFAULTS.overridden_by(overrides)
    assert behaviour.persona == "Você é a Ana, da Loja Azul."
    assert (behaviour.human_pause_s, behaviour.session_expire_s) == (60, 600)
    assert (behaviour.finish_keyword, behaviour.finish_message) == ("#fim", "até logo")
    assert behaviour.media_unsupported_message == "escreva, por favor"
    assert behaviour.out_of_office_message == "voltamos às 9h"
    assert behaviour.business_hours == BusinessHours.parse(hours)
    assert behaviour.group_replies is GroupReplies.MENTIONED


def test_the_override_fields_are_the_cliente_columns_they_come_from() -> None:
    from engine.db.models import Cliente

    assert all(hasattr(Cliente, name) for name in ClienteOverrides.field_names())


@pytest.mark.parametrize(
    ("paused_until", "expected"),
    [
        (None, False),
        (NOW + timedelta(seconds=1), True),
        (NOW, False),  # the pause is over at its end
        (NOW - timedelta(minutes=1), False),
    ],
)
def test_the_pause_rule(paused_until: datetime | None, expected: bool) -> None:
    assert is_paused(paused_until, now=NOW) is expected
