"""A cliente behaviour for pure tests: the values the tables below are written against."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.core.behaviour import Behaviour
from engine.core.debounce import DebouncePolicy

BEHAVIOUR = Behaviour(
    persona="Atendente.",
    debounce=DebouncePolicy(2.0, 12.0),
    human_pause_s=600,
    session_expire_s=3600,
    finish_keyword="#sair",
    finish_message="tchau",
    media_unsupported_message="só texto",
    out_of_office_message="fechado",
)


def behaviour(**changes: Any) -> Behaviour:
    """`BEHAVIOUR` with some fields changed."""
    return replace(BEHAVIOUR, **changes)
