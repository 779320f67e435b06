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


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of `choices` (weight, strategy), in proportion to the weights (`st.one_of` picks its
    branches about evenly, whatever their number)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


def sometimes(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value (15 draws in 16), sometimes anything at all: so that most posts
    get past the first checks and exercise the deep ones, while every field is still fuzzed."""
    return weighted((15, valid), (1, any_json))


jids = weighted(
    (4, st.sampled_from([PHONE, LID, GROUP, "status@broadcast", "5511987654321:7@s.whatsapp.net"])),
    (1, st.builds(lambda user, server: f"{user}@{server}", any_text, any_text)),
)
ANY_CHAT = sometimes(jids)
timestamps = weighted(
    (4, st.integers(min_value=1_700_000_000, max_value=1_800_000_000)),
    (1, st.integers(min_value=1_700_000_000, max_value=1_800_000_000).map(str)),
    (1, st.integers(min_value=0, max_value=2**40)),
    (1, st.just(1e300)),
    (1, digit_runs),
    (
        1,
        st.fixed_dictionaries({"low": st.integers(-(2**31), 2**32), "high": st.integers(0, 2**40)}),
    ),
)
messages = weighted(
    (4, st.fixed_dictionaries({"conversation": sometimes(any_text)})),
    (1, st.fixed_dictionaries({"extendedTextMessage": st.fixed_dictionaries({"text": any_text})})),
    (1, st.fixed_dictionaries({"imageMessage": st.fixed_dictionaries({"caption": any_text})})),
    (1, st.fixed_dictionaries({"reactionMessage": any_json})),
    (1, st.dictionaries(any_text, any_json, max_size=3)),
)


@st.composite
def upsert_data(draw: st.DrawFn, *, chats: st.SearchStrategy[Any] = ANY_CHAT) -> dict[str, Any]:
    """A `messages.upsert` `data` object; any field may be missing or of any type. Every JID
    field is drawn from `chats` (anything by default)."""
    key: dict[str, Any] = {
        "remoteJid": draw(chats),
        "fromMe": draw(sometimes(st.booleans())),
        "id": draw(
            sometimes(st.text(st.sampled_from("0123456789ABCDEF"), min_size=1, max_size=110))
        ),
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
    _drop_one_sometimes(draw, data)
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
    event = draw(sometimes(weighted((3, st.just("messages.upsert")), (3, st.sampled_from(EVENTS)))))
    upserts = upsert_data(chats=chats)
    data = draw(
        weighted((4, instance_event_data()), (1, upserts), (1, any_json))
        if event not in ("messages.upsert", "MESSAGES_UPSERT")
        else weighted((8, upserts), (1, any_json))
    )
    payload: dict[str, Any] = {
        "event": event,
        "instance": draw(sometimes(st.just(instance))),
        "data": data,
        "sender": draw(sometimes(jids)),
    }
    _drop_one_sometimes(draw, payload)
    return payload


def _drop_one_sometimes(draw: st.DrawFn, fields: dict[str, Any]) -> None:
    """Remove one field, in about one draw in ten."""
    if draw(st.sampled_from([False] * 9 + [True])):
        del fields[draw(st.sampled_from(sorted(fields)))]
