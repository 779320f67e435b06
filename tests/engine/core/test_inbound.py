"""decide_inbound: what Conversa does with one messages.upsert, as a table of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.core import inbound
from engine.core.inbound import ChatFacts, InboundOutcome, decide_inbound
from engine.core.reasons import IgnoreReason
from engine.core.statuses import ClienteStatus, GroupReplies, InstanciaStatus
from engine.core.whatsapp import classify_upsert
from engine.errors import MalformedWebhook
from tests.support.behaviours import BEHAVIOUR, behaviour

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
OWNER = "5511900000000@s.whatsapp.net"
CUSTOMER = "5511987654321@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
ANSWERS_MENTIONS = behaviour(group_replies=GroupReplies.MENTIONED)
PAUSED = ChatFacts(paused_until=NOW + timedelta(minutes=5))


def upsert(
    text: str = "oi", *, chat: str = CUSTOMER, from_me: bool = False, **extra: Any
) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": chat, "fromMe": from_me, "id": "K1"}
    message: dict[str, Any] = {"conversation": text}
    if chat.endswith("@g.us"):
        key["participant"] = CUSTOMER
    if extra.get("mentions"):
        message = {
            "extendedTextMessage": {
                "text": text,
                "contextInfo": {"mentionedJid": extra["mentions"]},
            }
        }
    if extra.get("reaction"):
        message = {"reactionMessage": {"text": "👍", "key": {"id": "K0"}}}
    return {"key": key, "message": message, "messageTimestamp": 1761060000}


def decide(data: dict[str, Any], **facts: Any) -> inbound.InboundDecision:
    return decide_inbound(
        classify_upsert(data, received_at_s=1761060000),
        cliente_status=facts.get("status", ClienteStatus.ATIVO),
        behaviour=facts.get("behaviour", BEHAVIOUR),
        owner_jids=inbound.owner_jids(sender=OWNER, numero=None),
        chat=facts.get("chat", ChatFacts()),
        now=NOW,
    )


@pytest.mark.parametrize(
    ("data", "facts", "kind", "outcome", "detail"),
    [
        (upsert("oi"), {}, inbound.Accept, InboundOutcome.ACCEPTED, None),
        (upsert("oi"), {"chat": PAUSED}, inbound.Record, InboundOutcome.RECORDED, "paused"),
        (
            upsert("oi"),
            {"chat": ChatFacts(paused_until=NOW - timedelta(seconds=1))},
            inbound.Accept,
            InboundOutcome.ACCEPTED,
            None,
        ),
        (
            upsert("oi"),
            {"status": ClienteStatus.SUSPENSO},
            inbound.Record,
            InboundOutcome.RECORDED,
            "cliente_suspenso",
        ),
        (
            upsert("oi"),
            {"status": ClienteStatus.PENDENTE, "chat": PAUSED},
            inbound.Record,
            InboundOutcome.RECORDED,
            "cliente_pendente",
        ),  # the cliente's state comes first
        (upsert(reaction=True), {}, inbound.Ignore, InboundOutcome.IGNORED, "reaction"),
        (
            upsert("oi", chat="status@broadcast"),
            {},
            inbound.Ignore,
            InboundOutcome.IGNORED,
            "status_broadcast",
        ),
        (upsert("oi", chat=GROUP), {}, inbound.Ignore, InboundOutcome.IGNORED, "group"),
        (
            upsert("oi", chat=GROUP),
            {"behaviour": ANSWERS_MENTIONS},
            inbound.Ignore,
            InboundOutcome.IGNORED,
            "group",
        ),  # answers mentions, but not mentioned
        (
            upsert("@5511900000000 oi", chat=GROUP, mentions=[OWNER]),
            {"behaviour": ANSWERS_MENTIONS},
            inbound.Accept,
            InboundOutcome.ACCEPTED,
            None,
        ),
        (
            upsert("@5511900000000 oi", chat=GROUP, mentions=[OWNER]),
            {},
            inbound.Ignore,
            InboundOutcome.IGNORED,
            "group",
        ),  # mentioned, but groups are off
        (
            upsert("já te respondo", from_me=True),
            {},
            inbound.Takeover,
            InboundOutcome.RECORDED,
            "human_takeover",
        ),
        (
            upsert("já te respondo", from_me=True),
            {"chat": ChatFacts(own_echo=True)},
            inbound.Takeover,
            InboundOutcome.RECORDED,
            "own_message_echo",
        ),
        (
            upsert("já te respondo", from_me=True),
            {"status": ClienteStatus.SUSPENSO},
            inbound.Takeover,
            InboundOutcome.RECORDED,
            "human_takeover",
        ),
    ],
    ids=[
        "customer-text",
        "paused-chat",
        "pause-over",
        "cliente-suspended",
        "cliente-state-before-pause",
        "reaction",
        "status-broadcast",
        "group-off",
        "group-not-mentioned",
        "group-mentioned",
        "group-mentioned-but-off",
        "human-on-the-phone",
        "own-echo",
        "takeover-of-an-inactive-cliente",
    ],
)
def test_decision_table(
    data: dict[str, Any],
    facts: dict[str, Any],
    kind: type,
    outcome: InboundOutcome,
    detail: str | None,
) -> None:
    decision = decide(data, **facts)
    assert isinstance(decision, kind)
    assert (decision.outcome, decision.detail) == (outcome, detail)


def test_a_takeover_pauses_for_the_clientes_human_pause() -> None:
    decision = decide(upsert("deixa comigo", from_me=True))
    assert isinstance(decision, inbound.Takeover) and decision.pause_s == 600


def test_ignored_messages_are_recorded_only_in_one_to_one_chats() -> None:
    private = decide(upsert(reaction=True))
    group = decide(upsert("oi", chat=GROUP))
    assert isinstance(private, inbound.Ignore) and private.message.in_private_chat
    assert isinstance(group, inbound.Ignore) and not group.message.in_private_chat


def test_every_inactive_status_has_its_reason() -> None:
    for status in ClienteStatus:
        if status is not ClienteStatus.ATIVO:
            assert IgnoreReason.for_status(status) == f"cliente_{status.value.lower()}"
    with pytest.raises(ValueError):
        IgnoreReason.for_status(ClienteStatus.ATIVO)


def test_owner_jids_are_the_sender_and_the_registered_number() -> None:
    assert inbound.owner_jids(sender=OWNER, numero="5511911110001") == {
        OWNER,
        "5511911110001@s.whatsapp.net",
    }
    assert inbound.owner_jids(sender=None, numero=None) == frozenset()


@pytest.mark.parametrize(
    ("event", "data", "expected"),
    [
        (
            "connection.update",
            {"state": "open", "wuid": OWNER},
            inbound.InstanceUpdate(
                "instance:CONECTADA", InstanciaStatus.CONECTADA, "5511900000000"
            ),
        ),
        (
            "connection.update",
            {"state": "close", "statusReason": 401},
            inbound.InstanceUpdate("instance:DESCONECTADA", InstanciaStatus.DESCONECTADA),
        ),
        (
            "connection.update",
            {"state": "refused"},
            inbound.InstanceUpdate("instance:ERRO", InstanciaStatus.ERRO),
        ),
        ("connection.update", {"state": "connecting"}, None),
        (
            "qrcode.updated",
            {"qrcode": {"code": "2@abc", "base64": "data:image/png;base64,xx"}},
            inbound.InstanceUpdate("instance:qr_code", qr_code="2@abc"),
        ),
        (
            "qrcode.updated",
            {"qrcode": {"pairingCode": "WZYEH1YY", "code": "2@abc", "base64": "data:x"}},
            inbound.InstanceUpdate("instance:qr_code", qr_code="2@abc", pairing_code="WZYEH1YY"),
        ),
        (
            "qrcode.updated",
            {"qrcode": {"base64": "data:image/png;base64,xx"}},
            inbound.InstanceUpdate("instance:qr_code", qr_code="data:image/png;base64,xx"),
        ),
        ("messages.update", {"status": "READ"}, None),
    ],
    ids=["open", "close", "refused", "connecting", "qr", "qr-pairing", "qr-image-only", "other"],
)
def test_instance_events(event: str, data: Any, expected: inbound.InstanceUpdate | None) -> None:
    assert inbound.decide_instance_event(event, data) == expected


def test_a_qr_event_without_a_code_is_malformed() -> None:
    with pytest.raises(MalformedWebhook):
        inbound.decide_instance_event("qrcode.updated", {"qrcode": {}})
