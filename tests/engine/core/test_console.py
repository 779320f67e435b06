"""The console's pure decisions: a chat's state, the weekly hours editor, the session token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.business_hours import BusinessHours
from engine.core.console import (
    ChatState,
    ConsoleSession,
    chat_state,
    open_session,
    seal_session,
    served_over_https,
    weekly_from_text,
    weekly_to_text,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
EARLIER = NOW - timedelta(minutes=5)


@pytest.mark.parametrize(
    ("paused_until", "paused_by", "needs_human", "failed", "expected"),
    [
        (None, None, None, 0, ChatState.BOT),
        (EARLIER, "human", None, 0, ChatState.BOT),  # the pause is over
        (LATER, "human", None, 0, ChatState.PAUSED_BY_HUMAN),
        (LATER, "operator", None, 0, ChatState.PAUSED_BY_OPERATOR),
        (None, None, EARLIER, 0, ChatState.NEEDS_HUMAN),
        (LATER, "operator", EARLIER, 0, ChatState.NEEDS_HUMAN),  # more urgent than a pause
        (LATER, "human", EARLIER, 2, ChatState.FAILED_SENDS),  # the most urgent
        (None, None, None, 1, ChatState.FAILED_SENDS),
    ],
)
def test_a_chat_shows_its_most_urgent_state(
    paused_until: datetime | None,
    paused_by: str | None,
    needs_human: datetime | None,
    failed: int,
    expected: ChatState,
) -> None:
    state = chat_state(
        now=NOW,
        paused_until=paused_until,
        paused_by=paused_by,
        needs_human_since=needs_human,
        failed_sends=failed,
    )
    assert state is expected


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ({}, None),
        ({"mon": "  "}, None),
        ({"mon": "09:00-18:00"}, {"mon": [["09:00", "18:00"]]}),
        (
            {"tue": "9:00 - 12:00, 13:30–18:00", "sat": "22:00-02:00"},
            {"tue": [["09:00", "12:00"], ["13:30", "18:00"]], "sat": [["22:00", "02:00"]]},
        ),
    ],
)
def test_the_weekly_editor_reads_intervals_per_day(
    boxes: dict[str, str], expected: dict[str, list[list[str]]] | None
) -> None:
    found = weekly_from_text("America/Sao_Paulo", boxes)
    if expected is None:
        assert found is None
        return
    assert found == {"timezone": "America/Sao_Paulo", "weekly": expected}
    BusinessHours.parse(found)  # what it gives is a schedule the engine accepts
    assert weekly_from_text("America/Sao_Paulo", weekly_to_text(found)) == found  # round trip


@pytest.mark.parametrize("box", ["9h-18h", "09:00", "09:00-18:00,", "manhã"])
def test_the_weekly_editor_names_the_day_it_cannot_read(box: str) -> None:
    with pytest.raises(ValueError, match=r"^wed: "):
        weekly_from_text("UTC", {"wed": box})


SECRET = b"k" * 32


def _session(**changes: object) -> ConsoleSession:
    fields: dict[str, object] = {
        "cliente_id": 7,
        "key_sha256": "ab" * 32,
        "operator": False,
        "csrf": "token",
        "issued_at": 1000.0,
    }
    fields.update(changes)
    return ConsoleSession(**fields)  # type: ignore[arg-type]


def test_a_sealed_session_opens_only_unaltered_with_its_secret_and_in_time() -> None:
    sealed = seal_session(_session(), secret=SECRET)
    assert open_session(sealed, secret=SECRET, now=1010.0, ttl_s=60) == _session()
    assert open_session(sealed, secret=b"x" * 32, now=1010.0, ttl_s=60) is None
    assert open_session(sealed, secret=SECRET, now=1061.0, ttl_s=60) is None  # expired
    assert open_session(sealed, secret=SECRET, now=900.0, ttl_s=60) is None  # from the future
    body, signature = sealed.split(".")
    forged = seal_session(_session(cliente_id=8), secret=SECRET).split(".")[0]
    assert open_session(f"{forged}.{signature}", secret=SECRET, now=1010.0, ttl_s=60) is None
    for broken in (None, "", "abc", "a.b.c", f"{body}.", f"!!.{signature}"):
        assert open_session(broken, secret=SECRET, now=1010.0, ttl_s=60) is None


def test_a_cliente_session_needs_its_key_and_an_operator_one_may_have_no_cliente() -> None:
    keyless = seal_session(_session(key_sha256=None), secret=SECRET)
    assert open_session(keyless, secret=SECRET, now=1000.0, ttl_s=60) is None
    operator = _session(cliente_id=None, key_sha256=None, operator=True)
    sealed = seal_session(operator, secret=SECRET)
    assert open_session(sealed, secret=SECRET, now=1000.0, ttl_s=60) == operator


@pytest.mark.parametrize(
    ("scheme", "forwarded", "trust", "secure"),
    [
        ("https", None, False, True),
        ("http", None, True, False),
        ("http", "https", False, False),  # anyone can send the header: not trusted by default
        ("https", "https", False, False),  # a scheme the server rewrote from that same header
        ("http", "https", True, True),
        ("http", "HTTPS, http", True, True),  # the first proxy's word
        ("http", "http", True, False),
    ],
)
def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(
    scheme: str, forwarded: str | None, trust: bool, secure: bool
) -> None:
    assert served_over_https(scheme, forwarded, trust_forwarded=trust) is secure
