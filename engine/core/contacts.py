"""One contact named by an operator or a business (a phone number or a JID), for LGPD requests.

A person may be known to a cliente under their phone JID, their `@lid`, or both (the pairs in
`lid_pairs`); the request names either, typed as people type numbers.
"""

from __future__ import annotations

import re

from engine.core.masking import mask_jid
from engine.core.whatsapp import LID_SUFFIX, PHONE_SUFFIX, is_jid, strip_device

_PHONE_PUNCTUATION = re.compile(r"[\s()+.-]")
MIN_PHONE_DIGITS = 8  # shorter is not a number anyone can own
MAX_PHONE_DIGITS = 15  # E.164


def contact_jid(raw: str) -> str | None:
    """The JID a request names, or None when it names none: `+55 (11) 98765-4321` and
    `5511987654321@s.whatsapp.net` → `5511987654321@s.whatsapp.net`; `123…@lid` stays a LID;
    a device suffix (`:12`) is dropped. Groups, broadcasts and anything else are not contacts."""
    value = raw.strip()
    if "@" in value:
        jid = strip_device(value)
        if is_jid(jid) and (jid.endswith(PHONE_SUFFIX) or jid.endswith(LID_SUFFIX)):
            user = jid.split("@", 1)[0]
            return jid if user.isascii() and user.isdigit() else None
        return None
    digits = _PHONE_PUNCTUATION.sub("", value)
    if (
        digits.isascii()
        and digits.isdigit()
        and MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS
    ):
        return digits + PHONE_SUFFIX
    return None


def masked(jids: list[str] | tuple[str, ...]) -> str:
    """How an audit record names a contact: masked, never the full number."""
    return ", ".join(mask_jid(j) for j in sorted(set(jids)))[:120]
