"""Hypothesis strategies for what can reach the webhook: any JSON, any strings, any nesting, and
Evolution-shaped `messages.upsert` / instance events whose every field may be anything.

Strings include what JSON can carry and PostgreSQL cannot store (NUL, lone UTF-16 surrogates,
which `json.dumps` writes as `\\u0000` / `\\ud800` escapes), very long runs, and digits.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

PHONE = "5511987654321@s.whatsapp.net"
LID = "123456789012345@lid"
GROUP = "120363041234567890@g.us"
EVENTS = (
    "messages.upsert",
    "MESSAGES_UPSERT",
    "connection.update",
    "qrcode.updated",
    "send.message",
    "messages.update",
)

characters = st.one_of(
    st.characters(),  # every code point but surrogates
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(["\x00", "@", ":", ".", "\ufffd", "😀"]),
)
# Long runs are built, not drawn character by character: cheap to generate, same coverage.
digit_runs = st.builds(lambda d, n: d * n, st.sampled_from("0123456789"), st.integers(1, 6000))
any_text = st.one_of(
    st.text(characters, max_size=40),
    digit_runs,  # up to 6,000 digits (int() refuses more than 4,300)
    st.builds(lambda c, n: c * n, characters, st.integers(90, 400)),  # just past a column
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # includes nan and ±inf: Python's json writes and reads them
    any_text,
)
any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(any_text, st.sampled_from(["key", "id", "message"])), children),
    ),
    max_leaves=25,
)


def sometimes(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(valid, valid, valid, any_json)


jids = st.one_of(
    st.sampled_from([PHONE, LID, GROUP, "status@broadcast", "5511987654321:7@s.whatsapp.net"]),
    st.builds(lambda user, server: f"{user}@{server}", any_text, any_text),
)
ANY_CHAT = sometimes(jids)
timestamps = st.one_of(
    st.integers(min_value=0, max_value=2**40),
    st.just(1e300),
    digit_runs,
    st.fixed_dictionaries({"low": st.integers(-(2**31), 2**32), "high": st.integers(0, 2**40)}),
)
messages = st.one_of(
    st.fixed_dictionaries({"conversation": sometimes(any_text)}),
    st.fixed_dictionaries({"extendedTextMessage": st.fixed_dictionaries({"text": any_text})}),
    st.fixed_dictionaries({"imageMessage": st.fixed_dictionaries({"caption": any_text})}),
    st.fixed_dictionaries({"reactionMessage": any_json}),
    st.dictionaries(any_text, any_json, max_size=3),
)


@st.composite
def upsert_data(draw: st.DrawFn, *, chats: st.SearchStrategy[Any] = ANY_CHAT) -> dict[str, Any]:
    """A `messages.upsert` `data` object; any field may be missing or of any type. Every JID
    field is drawn from `chats` (anything by default)."""
    key: dict[str, Any] = {
        "remoteJid": draw(chats),
        "fromMe": draw(sometimes(st.booleans())),
        "id": draw(sometimes(st.text(st.sampled_from("0123456789ABCDEF"), min_size=1))),
    }
    for field in ("remoteJidAlt", "senderPn", "previousRemoteJid", "participant"):
        if draw(st.booleans()):
            key[field] = draw(chats)
    data: dict[str, Any] = {
        "key": draw(sometimes(st.just(key))),
        "pushName": draw(sometimes(any_text)),
        "message": draw(sometimes(messages)),
        "messageType": draw(sometimes(any_text)),
        "messageTimestamp": draw(sometimes(timestamps)),
    }
    for field in draw(st.lists(st.sampled_from(sorted(data)), max_size=2, unique=True)):
        del data[field]
    return data


@st.composite
def instance_event_data(draw: st.DrawFn) -> dict[str, Any]:
    """`connection.update` / `qrcode.updated` `data` with fields of any type."""
    return {
        "state": draw(sometimes(st.sampled_from(["open", "close", "connecting", "refused"]))),
        "wuid": draw(sometimes(jids)),
        "qrcode": draw(
            sometimes(st.fixed_dictionaries({"base64": any_text, "code": sometimes(any_text)}))
        ),
    }


@st.composite
def envelopes(
    draw: st.DrawFn, *, instance: str, chats: st.SearchStrategy[Any] = ANY_CHAT
) -> dict[str, Any]:
    """A whole post: mostly for `instance`, with a plausible event and data of any shape."""
    event = draw(sometimes(st.sampled_from(EVENTS)))
    upserts = upsert_data(chats=chats)
    data = draw(
        st.one_of(upserts, instance_event_data(), any_json)
        if event not in ("messages.upsert", "MESSAGES_UPSERT")
        else st.one_of(upserts, upserts, any_json)
    )
    payload: dict[str, Any] = {
        "event": event,
        "instance": draw(st.one_of(st.just(instance), st.just(instance), any_json)),
        "data": data,
        "sender": draw(sometimes(jids)),
    }
    for field in draw(st.lists(st.sampled_from(sorted(payload)), max_size=1, unique=True)):
        del payload[field]
    return payload
