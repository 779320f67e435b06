"""WhatsApp (Evolution API v2) payloads: the envelope, JIDs, message unwrapping, text extraction.

Pure functions over what Evolution posts. `parse_envelope` validates the outer shape every event
shares; `classify_upsert` says what a `messages.upsert` is: a customer's text, a human typing on
the business phone (takeover), or something the bot must ignore, with the reason. What Conversa
then does with it is `engine.core.inbound.decide_inbound`. See
shared/reference/evolution-api.md §1–§2 for the shapes handled here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeGuard

from engine.core.reasons import IgnoreReason
from engine.errors import InvalidJson, MalformedWebhook

PHONE_SUFFIX = "@s.whatsapp.net"
LID_SUFFIX = "@lid"
GROUP_SUFFIX = "@g.us"
BROADCAST_SUFFIX = "@broadcast"
NEWSLETTER_SUFFIX = "@newsletter"
STATUS_BROADCAST = "status@broadcast"

# Wrappers whose inner `message` is the real content.
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
# Content keys that never carry something a customer asked.
_NOT_CONTENT = {"messageContextInfo", "senderKeyDistributionMessage", "base64", "mediaUrl"}
_IGNORED_KINDS = {
    "reactionMessage": IgnoreReason.REACTION,
    "protocolMessage": IgnoreReason.PROTOCOL,
    "editedMessage": IgnoreReason.EDITED,
    "pollUpdateMessage": IgnoreReason.POLL_UPDATE,
    "keepInChatMessage": IgnoreReason.PROTOCOL,
    "pinInChatMessage": IgnoreReason.PROTOCOL,
}
_CAPTIONED = ("imageMessage", "videoMessage", "documentMessage")
_TEXT_KINDS = {
    "conversation",
    "extendedTextMessage",
    "buttonsResponseMessage",
    "templateButtonReplyMessage",
    "listResponseMessage",
}
_MENTION = re.compile(r"@\d{5,}\s*")
_DEVICE = re.compile(r":\d+(?=@)")
# Every JID form Evolution posts (reference §2.4): `user[:device]@server`, ASCII, short. Bounded
# so a chat id always fits its column (120) and the actor name built from it.
_JID = re.compile(r"[0-9A-Za-z._:+-]{1,80}@[0-9a-z.]{1,30}")
# A key.id is stored as `messages.wa_message_id` (100) and is the idempotency key: never altered.
_KEY_ID = re.compile(r"[\x21-\x7e]{1,100}")
MAX_PUSH_NAME_CHARS = 200  # `conversations.push_name`
MAX_MESSAGE_TYPE_CHARS = 60  # `messages.message_type`
# Epoch seconds up to 9999-12-31T23:59:59Z; larger is not a time (and would not fit a BIGINT).
MAX_TIMESTAMP_S = 253_402_300_799
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class GroupContext:
    """Who wrote in a group, and whom they mentioned (to answer only when mentioned)."""

    participant: str | None
    mentioned_jids: tuple[str, ...]
    quoted_participant: str | None  # author of the message this one replies to


@dataclass(frozen=True)
class CustomerText:
    """A customer's message for the bot: its text, or media it may not be able to read."""

    key_id: str
    chat_jid: str  # canonical chat id: the phone JID when known, else the JID as it arrived
    remote_jid: str  # the JID exactly as it arrived (may be @lid)
    text: str  # empty when `media` has no caption or transcript
    message_type: str
    timestamp: int  # epoch seconds (`messageTimestamp`)
    push_name: str | None
    media: bool = False  # audio, image, sticker, location…: not (only) text
    group: GroupContext | None = None  # set for `@g.us` chats


@dataclass(frozen=True)
class HumanTakeover:
    """A message typed on the business's own phone (`fromMe`): a human is answering this chat."""

    key_id: str
    chat_jid: str
    remote_jid: str
    text: str
    timestamp: int


@dataclass(frozen=True)
class Ignored:
    """A message the bot must not answer, with the reason recorded for operators."""

    key_id: str
    reason: IgnoreReason
    chat_jid: str | None = None

    @property
    def in_private_chat(self) -> bool:
        """Whether it belongs to a one-to-one chat (then it is recorded in that conversation)."""
        return self.chat_jid is not None and jid_kind_to_ignore(self.chat_jid) is None


Classified = CustomerText | HumanTakeover | Ignored


def strip_device(jid: str) -> str:
    """`5511…:12@s.whatsapp.net` (a device of a user) → `5511…@s.whatsapp.net`."""
    return _DEVICE.sub("", jid)


def jid_kind_to_ignore(jid: str) -> IgnoreReason | None:
    """Why a chat JID is not a one-to-one chat (group, status, broadcast, newsletter), or None."""
    if jid == STATUS_BROADCAST:
        return IgnoreReason.STATUS_BROADCAST
    if jid.endswith(GROUP_SUFFIX):
        return IgnoreReason.GROUP
    if jid.endswith(NEWSLETTER_SUFFIX):
        return IgnoreReason.NEWSLETTER
    if jid.endswith(BROADCAST_SUFFIX):
        return IgnoreReason.BROADCAST
    return None


def canonical_chat_jid(key: dict[str, Any]) -> str:
    """The stable id of a private chat across Evolution versions.

    Evolution sends a contact either as a phone JID or as an opaque `@lid`, and swaps the two
    between `remoteJid` and `remoteJidAlt` depending on the version. Prefer the phone JID.
    """
    remote = strip_device(str(key.get("remoteJid") or ""))
    if remote.endswith(PHONE_SUFFIX):
        return remote
    for field in ("remoteJidAlt", "senderPn"):
        alt = key.get(field)
        if isinstance(alt, str) and alt.endswith(PHONE_SUFFIX) and is_jid(alt):
            return strip_device(alt)
    return remote


def numero_of(jid: Any) -> str | None:
    """The digits of a phone JID (`5511…@s.whatsapp.net` → `5511…`), or None (also for
    anything that is not a string)."""
    if not isinstance(jid, str) or not jid.endswith(PHONE_SUFFIX):
        return None
    digits = strip_device(jid).split("@", 1)[0]
    # E.164 numbers have at most 15 digits; ASCII only (str.isdigit also accepts "²").
    return digits if digits.isascii() and digits.isdigit() and len(digits) <= 20 else None


def is_jid(value: str) -> bool:
    """Whether `value` has the shape of a WhatsApp JID Evolution posts (`user[:device]@server`)."""
    return _JID.fullmatch(value) is not None


def storable_text(text: str) -> str:
    """`text` without what PostgreSQL cannot store: NUL is dropped, and a lone UTF-16
    surrogate (JavaScript can cut an emoji in half) becomes U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "")
    return _NUL_OR_SURROGATE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def decode_body(body: bytes) -> Any:
    """A webhook body as JSON. Raises InvalidJson with the reason (answered 400), also when the
    nesting is too deep for the decoder (`"[" * 200000` raises RecursionError inside it)."""
    try:
        return json.loads(body)
    except RecursionError as e:
        raise InvalidJson("body is nested too deeply to be an Evolution event") from e
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int digits limit
        raise InvalidJson(f"body is not valid JSON: {e}") from e


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """Peel ephemeral / view-once / document-with-caption wrappers off a message."""
    for _ in range(4):  # wrappers nest at most a couple of levels; bound the loop anyway
        for wrapper in _WRAPPERS:
            inner = message.get(wrapper)
            if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
                message = inner["message"]
                break
        else:
            return message
    return message


def content_kind(message: dict[str, Any]) -> str | None:
    """The main content key of a message (`conversation`, `imageMessage`, …), ignoring metadata."""
    for key, value in message.items():
        if key not in _NOT_CONTENT and value not in (None, "", {}):
            return key
    return None


def text_of(message: dict[str, Any]) -> str | None:
    """The text a customer wrote: body, caption, button/list choice, or Evolution's transcript."""
    if isinstance(message.get("conversation"), str):
        return message["conversation"]
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and isinstance(extended.get("text"), str):
        return extended["text"]
    for kind in _CAPTIONED:
        media = message.get(kind)
        if isinstance(media, dict) and isinstance(media.get("caption"), str):
            return media["caption"]
    for kind, field in (
        ("buttonsResponseMessage", "selectedDisplayText"),
        ("templateButtonReplyMessage", "selectedDisplayText"),
        ("listResponseMessage", "title"),
    ):
        reply = message.get(kind)
        if isinstance(reply, dict) and isinstance(reply.get(field), str):
            return reply[field]
    transcript = message.get("speechToText")
    if isinstance(transcript, str):
        return transcript
    return None


def parse_timestamp(value: Any, *, received_at_s: int) -> int:
    """`messageTimestamp` as epoch seconds: int, numeric string, or protobuf Long `{low, high}`.

    Missing (or null), it is the time the webhook arrived: the message is still the customer's.
    """
    if value is None:
        return received_at_s
    seconds = _timestamp_s(value)
    if seconds is None or not 0 <= seconds <= MAX_TIMESTAMP_S:
        raise MalformedWebhook(
            f"data.messageTimestamp must be epoch seconds between 0 and {MAX_TIMESTAMP_S}"
        )
    return seconds


def _timestamp_s(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and abs(value) <= 2**63 else None
    if isinstance(value, str):
        digits = value.strip()
        # Bounded before int(): a 5,000-digit string is not a time (and int() refuses it).
        if digits.isascii() and digits.isdecimal() and len(digits) <= 20:
            return int(digits)
        return None
    if isinstance(value, dict):
        low, high = value.get("low"), value.get("high") or 0
        if _is_int(low) and _is_int(high) and abs(high) < 2**32:
            return (high << 32) + (low & 0xFFFFFFFF)
    return None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def classify_upsert(data: Any, *, received_at_s: int) -> Classified:
    """Decide what a `messages.upsert` `data` object is. Raises MalformedWebhook with a reason.

    `received_at_s` (epoch seconds, the server's clock) stands in for a missing timestamp.
    Everything returned can be stored as it is: ids and JIDs are checked, text is cleaned.
    """
    if not isinstance(data, dict):
        raise MalformedWebhook("data must be an object")
    key = data.get("key")
    if not isinstance(key, dict):
        raise MalformedWebhook("data.key must be an object")
    key_id = key.get("id")
    remote = key.get("remoteJid")
    if not isinstance(key_id, str) or not key_id:
        raise MalformedWebhook("data.key.id is required")
    if not _KEY_ID.fullmatch(key_id):
        raise MalformedWebhook("data.key.id must be 1 to 100 printable ASCII characters")
    if not isinstance(remote, str) or not is_jid(remote):
        raise MalformedWebhook("data.key.remoteJid must be a WhatsApp JID (user@server)")
    raw_message = data.get("message")
    if raw_message is not None and not isinstance(raw_message, dict):
        raise MalformedWebhook("data.message must be an object")
    timestamp = parse_timestamp(data.get("messageTimestamp"), received_at_s=received_at_s)

    jid_reason = jid_kind_to_ignore(remote)
    if jid_reason and jid_reason is not IgnoreReason.GROUP:
        return Ignored(key_id, jid_reason, remote)

    chat_jid = remote if jid_reason is IgnoreReason.GROUP else canonical_chat_jid(key)
    message = unwrap(raw_message or {})
    kind = content_kind(message)
    if kind in _IGNORED_KINDS:
        return Ignored(key_id, _IGNORED_KINDS[kind], chat_jid)
    text = storable_text(text_of(message) or "").strip()
    media = kind is not None and kind not in _TEXT_KINDS

    if jid_reason is IgnoreReason.GROUP:
        if key.get("fromMe") is True or not text:
            return Ignored(key_id, IgnoreReason.GROUP, chat_jid)
        return CustomerText(
            key_id=key_id,
            chat_jid=chat_jid,
            remote_jid=remote,
            text=_MENTION.sub("", text).strip() or text,
            message_type=_message_type(data.get("messageType"), kind),
            timestamp=timestamp,
            push_name=_push_name(data),
            media=media,
            group=_group_context(key, data, message),
        )
    if key.get("fromMe") is True:
        return HumanTakeover(key_id, chat_jid, remote, text, timestamp)
    if not text and not media:
        return Ignored(key_id, IgnoreReason.EMPTY, chat_jid)
    return CustomerText(
        key_id=key_id,
        chat_jid=chat_jid,
        remote_jid=remote,
        text=text,
        message_type=_message_type(kind, data.get("messageType")),
        timestamp=timestamp,
        push_name=_push_name(data),
        media=media,
    )


def _push_name(data: dict[str, Any]) -> str | None:
    name = data.get("pushName")
    return storable_text(name)[:MAX_PUSH_NAME_CHARS] if isinstance(name, str) else None


def _message_type(*candidates: Any) -> str:
    """The first non-empty string among `candidates`, cut to fit its column."""
    kind = next((c for c in candidates if isinstance(c, str) and c), "conversation")
    return storable_text(kind)[:MAX_MESSAGE_TYPE_CHARS]


def _group_context(
    key: dict[str, Any], data: dict[str, Any], message: dict[str, Any]
) -> GroupContext:
    contexts = [data.get("contextInfo")]
    for value in message.values():
        if isinstance(value, dict):
            contexts.append(value.get("contextInfo"))
    mentioned: list[str] = []
    quoted: str | None = None
    for context in contexts:
        if not isinstance(context, dict):
            continue
        mentioned += [j for j in context.get("mentionedJid") or [] if isinstance(j, str)]
        if isinstance(context.get("participant"), str) and context.get("quotedMessage"):
            quoted = strip_device(context["participant"])
    participant = None
    for field in ("participantAlt", "participant"):
        value = key.get(field)
        if isinstance(value, str) and value.endswith(PHONE_SUFFIX):
            participant = strip_device(value)
            break
    return GroupContext(participant, tuple(strip_device(j) for j in mentioned), quoted)


def mentions(group: GroupContext, owner_jids: AbstractSet[str]) -> bool:
    """Whether a group message is addressed to the business: mentioned, or a reply to it."""
    return bool(owner_jids & set(group.mentioned_jids)) or group.quoted_participant in owner_jids


@dataclass(frozen=True)
class Envelope:
    """The outer shape every Evolution post shares (reference §1)."""

    event: str  # dotted, lower-case: `messages.upsert`
    instance: str | None  # the instance *name*
    sender: str | None  # the instance owner's JID (not the customer's)
    data: Any


def parse_envelope(payload: Any, *, path_event: str | None) -> Envelope:
    """Validate the outer shape of an Evolution post; `path_event` is the `byEvents` suffix."""
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip():
        raise MalformedWebhook("`event` is required")
    event = storable_text(normalize_event_name(event))
    if path_event is not None and event_path_to_name(path_event) != event:
        raise MalformedWebhook(f"event in the path ({path_event}) and body ({event}) disagree")
    instance = payload.get("instance")
    sender = payload.get("sender")
    if instance is not None and not isinstance(instance, str):
        raise MalformedWebhook("`instance` must be a string")
    if sender is not None and not isinstance(sender, str):
        raise MalformedWebhook("`sender` must be a string")
    if not instance and not sender:
        raise MalformedWebhook("`instance` (or `sender`) is required to identify the cliente")
    if "data" not in payload:
        raise MalformedWebhook("`data` is required")
    return Envelope(event, instance or None, sender or None, payload["data"])


def event_path_to_name(path_suffix: str) -> str:
    """`byEvents` path segment → event name: `messages-upsert` → `messages.upsert`."""
    return path_suffix.strip("/").replace("-", ".").replace("_", ".").lower()


def normalize_event_name(event: str) -> str:
    """Evolution writes events as `messages.upsert` or `MESSAGES_UPSERT`; use the dotted form."""
    return event.strip().replace("_", ".").replace("-", ".").lower()
