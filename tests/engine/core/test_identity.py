"""Lid ↔ phone pairs from Evolution keys, and merging one contact's two conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.core.identity import ConversationState, LidPair, lid_pairs, merge_states

PHONE = "5511987654321@s.whatsapp.net"
PHONE_2 = "5521998877665@s.whatsapp.net"
LID = "123456789012345@lid"
LID_2 = "198765432109876@lid"
GROUP = "120363041234567890@g.us"


def data(**key: Any) -> dict[str, Any]:
    return {"key": {"fromMe": False, "id": "K1", **key}}


PAIR_CASES = [
    # Shapes by Evolution version (shared/reference/evolution-api.md §2.4).
    pytest.param(data(remoteJid=PHONE, remoteJidAlt=LID), [(LID, PHONE)], id="2.3.6-pn"),
    pytest.param(data(remoteJid=LID, remoteJidAlt=PHONE), [(LID, PHONE)], id="2.3.6-lid"),
    pytest.param(
        data(remoteJid=PHONE, remoteJidAlt=PHONE, addressingMode="lid"), [], id="2.3.7-swapped"
    ),
    pytest.param(
        data(remoteJid=PHONE, previousRemoteJid=LID, senderPn=PHONE, senderLid=LID),
        [(LID, PHONE)],
        id="2.3.1-previousRemoteJid",
    ),
    pytest.param(data(remoteJid=LID, senderPn=PHONE), [(LID, PHONE)], id="senderPn"),
    pytest.param(
        data(remoteJid=GROUP, participant=LID, participantAlt=PHONE),
        [(LID, PHONE)],
        id="group-participantAlt",
    ),
    pytest.param(
        data(remoteJid=GROUP, participant=PHONE, participantAlt=LID),
        [(LID, PHONE)],
        id="group-participant-phone",
    ),
    pytest.param(
        data(remoteJid=LID, remoteJidAlt=PHONE, participant=LID_2, participantAlt=PHONE_2),
        [(LID, PHONE), (LID_2, PHONE_2)],
        id="contact-and-participant",
    ),
    pytest.param(
        data(remoteJid="123456789012345:7@lid", remoteJidAlt="5511987654321:3@s.whatsapp.net"),
        [(LID, PHONE)],
        id="device-suffixes-stripped",
    ),
    # Not sure whose is whose, or nothing to pair: no pair.
    pytest.param(data(remoteJid=LID), [], id="lid-alone"),
    pytest.param(data(remoteJid=PHONE), [], id="phone-alone"),
    pytest.param(data(remoteJid=LID, remoteJidAlt=LID_2), [], id="two-lids"),
    pytest.param(
        data(remoteJid=LID, remoteJidAlt=PHONE, senderPn=PHONE_2), [], id="two-phones-for-one-lid"
    ),
    pytest.param(
        data(remoteJid=LID, remoteJidAlt=PHONE, participant=LID, participantAlt=PHONE_2),
        [(LID, PHONE)],
        id="one-pair-per-lid",
    ),
    pytest.param(data(remoteJid=LID, remoteJidAlt=5511987654321), [], id="alt-not-a-string"),
    pytest.param(
        data(remoteJid=LID, remoteJidAlt="5" * 300 + "@s.whatsapp.net"), [], id="alt-not-a-jid"
    ),
    pytest.param({"key": "K1"}, [], id="key-not-an-object"),
    pytest.param(None, [], id="data-null"),
    pytest.param([1, 2], [], id="data-list"),
]


@pytest.mark.parametrize(("payload", "expected"), PAIR_CASES)
def test_lid_pairs_are_read_from_every_field_evolution_uses(
    payload: Any, expected: list[tuple[str, str]]
) -> None:
    assert lid_pairs(payload) == tuple(LidPair(lid, phone) for lid, phone in expected)


T0 = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def state(**fields: Any) -> ConversationState:
    base: dict[str, Any] = {
        "push_name": None,
        "created_at": T0,
        "last_message_at": T0,
        "answer_due_at": None,
        "paused_until": None,
        "paused_by": None,
        "session_started_at": None,
        "out_of_office_sent_at": None,
        "needs_human_since": None,
        "needs_human_reason": None,
    }
    return ConversationState(**{**base, **fields})


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


MERGE_CASES = [
    pytest.param(
        state(),
        state(needs_human_since=minutes(3), needs_human_reason="dont_know"),
        {"needs_human_since": minutes(3), "needs_human_reason": "dont_know"},
        id="lid-waiting-for-a-human-keeps-waiting",
    ),
    pytest.param(
        state(needs_human_since=minutes(9), needs_human_reason="rate_limited"),
        state(needs_human_since=minutes(3), needs_human_reason="dont_know"),
        {"needs_human_since": minutes(3), "needs_human_reason": "dont_know"},
        id="earliest-wait-keeps-its-place-and-reason",
    ),
    pytest.param(
        state(paused_until=minutes(30), paused_by="human"),
        state(),
        {"paused_until": minutes(30), "paused_by": "human"},
        id="phone-paused",
    ),
    pytest.param(
        state(),
        state(paused_until=minutes(30), paused_by="human"),
        {"paused_until": minutes(30), "paused_by": "human"},
        id="lid-paused-carries-over",
    ),
    pytest.param(
        state(paused_until=minutes(10), paused_by="human"),
        state(paused_until=minutes(60), paused_by="operator"),
        {"paused_until": minutes(60), "paused_by": "operator"},
        id="longer-pause-wins-with-its-author",
    ),
    pytest.param(
        state(answer_due_at=minutes(2)),
        state(answer_due_at=minutes(1)),
        {"answer_due_at": minutes(1)},
        id="earliest-deadline",
    ),
    pytest.param(
        state(),
        state(answer_due_at=minutes(1)),
        {"answer_due_at": minutes(1)},
        id="lid-unanswered-keeps-its-deadline",
    ),
    pytest.param(
        state(session_started_at=minutes(5)),
        state(session_started_at=minutes(1)),
        {"session_started_at": minutes(1)},
        id="session-spans-both-histories",
    ),
    pytest.param(
        state(out_of_office_sent_at=None),
        state(out_of_office_sent_at=minutes(3)),
        {"out_of_office_sent_at": minutes(3)},
        id="notice-sent-on-either-side-counts",
    ),
    pytest.param(
        state(push_name=None, created_at=minutes(5), last_message_at=minutes(6)),
        state(push_name="Maria", created_at=minutes(1), last_message_at=minutes(2)),
        {"push_name": "Maria", "created_at": minutes(1), "last_message_at": minutes(6)},
        id="name-and-times",
    ),
]


@pytest.mark.parametrize(("phone", "lid", "expected"), MERGE_CASES)
def test_merging_keeps_what_either_conversation_promised(
    phone: ConversationState, lid: ConversationState, expected: dict[str, Any]
) -> None:
    merged = merge_states(phone, lid)

    assert {name: getattr(merged, name) for name in expected} == expected
