"""One customer, two JIDs: the lid ↔ phone pairs Evolution reports, and one conversation for both.

WhatsApp addresses a contact by phone (`5511…@s.whatsapp.net`) or by an opaque LID (`…@lid`).
When Evolution knows the other form it says so, in fields that moved between versions
(shared/reference/evolution-api.md §2.4): `remoteJidAlt`, `senderPn` / `senderLid` and
`previousRemoteJid` for a private chat's contact; `participantAlt` / `participantPn` /
`participantLid` for a group member. Conversa remembers every pair (table `lid_pairs`) and keys a
conversation by the phone whenever it is known. A conversation opened under the lid before its
pair was known is unified with the phone's: re-keyed when the phone has none, merged into it
when both exist (`merge_states`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.core.whatsapp import LID_SUFFIX, PHONE_SUFFIX, is_jid, strip_device

# Fields that name the same person, one group per identity a key can carry.
_CONTACT_FIELDS = ("remoteJid", "remoteJidAlt", "senderPn", "senderLid", "previousRemoteJid")
_PARTICIPANT_FIELDS = ("participant", "participantAlt", "participantPn", "participantLid")


@dataclass(frozen=True)
class LidPair:
    """A contact's LID and phone JID (both without a device suffix)."""

    lid_jid: str
    phone_jid: str


def is_lid(jid: str) -> bool:
    return jid.endswith(LID_SUFFIX)


def lid_pairs(data: Any) -> tuple[LidPair, ...]:
    """The lid ↔ phone pairs a `messages.upsert` `data` object reports (none when unsure).

    A pair is taken only when a group of fields names exactly one LID and one phone: two
    different LIDs (or phones) for one identity mean the payload is not telling which is whose.
    """
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, dict):
        return ()
    pairs: list[LidPair] = []
    for fields in (_CONTACT_FIELDS, _PARTICIPANT_FIELDS):
        jids = {strip_device(v) for f in fields if isinstance(v := key.get(f), str) and is_jid(v)}
        lids = [j for j in jids if is_lid(j)]
        phones = [j for j in jids if j.endswith(PHONE_SUFFIX)]
        if len(lids) == 1 and len(phones) == 1:
            pair = LidPair(lids[0], phones[0])
            # One pair per LID (and per phone): the two identities are the same person then.
            if not any(p.lid_jid == pair.lid_jid or p.phone_jid == pair.phone_jid for p in pairs):
                pairs.append(pair)
    return tuple(pairs)


@dataclass(frozen=True)
class ConversationState:
    """What two conversations of one contact each hold besides their messages and turns."""

    push_name: str | None
    created_at: datetime
    last_message_at: datetime
    answer_due_at: datetime | None
    paused_until: datetime | None
    paused_by: str | None
    session_started_at: datetime | None
    out_of_office_sent_at: datetime | None
    needs_human_since: datetime | None
    needs_human_reason: str | None


def merge_states(phone: ConversationState, lid: ConversationState) -> ConversationState:
    """One contact's state once its lid conversation is merged into its phone conversation.

    Nothing either side promised is dropped: the longer pause wins (with who set it), the
    earliest answer deadline (so recovery still finds every unanswered message) and the earliest
    session start (so memory spans both histories) are kept, an out-of-office notice sent
    on either side counts, and a chat waiting for a human keeps its place in the queue (the
    earliest wait, with its reason).
    """
    paused_until, paused_by = phone.paused_until, phone.paused_by
    if lid.paused_until is not None and (paused_until is None or lid.paused_until > paused_until):
        paused_until, paused_by = lid.paused_until, lid.paused_by
    return ConversationState(
        push_name=phone.push_name or lid.push_name,
        created_at=min(phone.created_at, lid.created_at),
        last_message_at=max(phone.last_message_at, lid.last_message_at),
        answer_due_at=_earliest(phone.answer_due_at, lid.answer_due_at),
        paused_until=paused_until,
        paused_by=paused_by,
        session_started_at=_earliest(phone.session_started_at, lid.session_started_at),
        out_of_office_sent_at=_latest(phone.out_of_office_sent_at, lid.out_of_office_sent_at),
        **_earliest_wait(phone, lid),
    )


def _earliest_wait(phone: ConversationState, lid: ConversationState) -> dict[str, Any]:
    waiting = [s for s in (phone, lid) if s.needs_human_since is not None]
    first = min(waiting, key=lambda s: s.needs_human_since or 0) if waiting else phone
    return {
        "needs_human_since": first.needs_human_since,
        "needs_human_reason": first.needs_human_reason,
    }


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b
