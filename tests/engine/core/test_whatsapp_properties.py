"""Properties of the webhook payload parser, for any input (hypothesis).

Whatever a post holds — any JSON value, any nesting, any strings — the parser either returns
something that PostgreSQL can store as it is, or refuses with `MalformedWebhook` (a 4xx with a
reason). Any other exception would be a 500, which Evolution retries ten times and then drops.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import identity, inbound, whatsapp
from engine.core.whatsapp import CustomerText, HumanTakeover, Ignored
from engine.errors import InvalidJson, MalformedWebhook
from tests.support import webhook_strategies as fuzz

RECEIVED_AT_S = 1_761_060_000
CASES = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def assert_storable(text: str | None, *, max_chars: int | None = None) -> None:
    if text is None:
        return
    assert not UNSTORABLE.search(text), repr(text)
    assert max_chars is None or len(text) <= max_chars


def assert_storable_message(message: whatsapp.Classified) -> None:
    assert 1 <= len(message.key_id) <= 100 and message.key_id.isascii()
    if message.chat_jid is not None:
        assert whatsapp.is_jid(message.chat_jid) and len(message.chat_jid) <= 120
    if isinstance(message, CustomerText | HumanTakeover):
        assert 0 <= message.timestamp <= whatsapp.MAX_TIMESTAMP_S
        assert_storable(message.text)
    if isinstance(message, CustomerText):
        assert_storable(message.push_name, max_chars=200)
        assert_storable(message.message_type, max_chars=60)


@CASES
@given(fuzz.any_json)
def test_any_json_value_is_an_envelope_or_refused_with_a_reason(value: Any) -> None:
    try:
        envelope = whatsapp.parse_envelope(value, path_event=None)
    except MalformedWebhook as e:
        assert str(e)
        return
    assert_storable(envelope.event)


@CASES
@given(fuzz.upsert_data())
def test_any_upsert_is_classified_into_storable_values_or_refused(data: dict[str, Any]) -> None:
    try:
        message = whatsapp.classify_upsert(data, received_at_s=RECEIVED_AT_S)
    except MalformedWebhook as e:
        assert str(e)
        return
    assert isinstance(message, CustomerText | HumanTakeover | Ignored)
    assert_storable_message(message)


@CASES
@given(fuzz.any_json)
def test_any_json_as_upsert_data_is_classified_or_refused(data: Any) -> None:
    try:
        message = whatsapp.classify_upsert(data, received_at_s=RECEIVED_AT_S)
    except MalformedWebhook:
        return
    assert_storable_message(message)


@CASES
@given(st.sampled_from(fuzz.EVENTS), st.one_of(fuzz.instance_event_data(), fuzz.any_json))
def test_any_instance_event_is_an_update_nothing_or_refused(event: str, data: Any) -> None:
    event = whatsapp.normalize_event_name(event)
    try:
        update = inbound.decide_instance_event(event, data)
    except MalformedWebhook:
        return
    assert_storable(inbound.unused_event_detail(event, data), max_chars=80)
    if update is not None:
        assert_storable(update.qr_code)
        assert update.numero is None or (update.numero.isdigit() and len(update.numero) <= 20)


@CASES
@given(st.one_of(fuzz.upsert_data(), fuzz.any_json))
def test_lid_pairs_of_anything_are_pairs_of_jids(data: Any) -> None:
    for pair in identity.lid_pairs(data):
        assert whatsapp.is_jid(pair.lid_jid) and pair.lid_jid.endswith("@lid")
        assert whatsapp.is_jid(pair.phone_jid) and pair.phone_jid.endswith("@s.whatsapp.net")


@CASES
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_are_invalid_json(body: bytes) -> None:
    try:
        whatsapp.decode_body(body)
    except InvalidJson as e:
        assert str(e)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300_000), st.sampled_from(["[", '{"a":', "[{}, ["]))
def test_any_nesting_depth_decodes_or_is_invalid_json(depth: int, opener: str) -> None:
    try:
        whatsapp.decode_body((opener * depth).encode())
    except InvalidJson:
        pass


@CASES
@given(fuzz.envelopes(instance="loja"))
def test_a_whole_post_as_bytes_is_parsed_or_refused_with_a_reason(payload: dict[str, Any]) -> None:
    """The chain the inbox runs, from the bytes Evolution sends to storable values."""
    body = json.dumps(payload).encode()
    try:
        envelope = whatsapp.parse_envelope(whatsapp.decode_body(body), path_event=None)
        if envelope.event == "messages.upsert":
            assert_storable_message(
                whatsapp.classify_upsert(envelope.data, received_at_s=RECEIVED_AT_S)
            )
        else:
            inbound.decide_instance_event(envelope.event, envelope.data)
    except MalformedWebhook as e:
        assert str(e)
