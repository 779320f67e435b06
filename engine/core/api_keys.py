"""Tenant API keys: what one looks like, what is stored of it (a hash), what is shown (a prefix).

A key is `cvk_` + 8 characters shown forever as its prefix + `_` + 43 secret characters (256
bits). Only its SHA-256 is stored: a database leak yields no usable key, and the lookup by
hash needs no slow KDF because the key has full entropy.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from engine.core.auth import hash_secret

KEY_PREFIX = "cvk_"
_ALPHABET = string.ascii_letters + string.digits
_PREFIX_LENGTH = len(KEY_PREFIX) + 8


@dataclass(frozen=True)
class NewApiKey:
    key: str  # shown once, to whoever created it
    prefix: str  # kept and shown, to tell keys apart (`cvk_AbCd1234`)
    sha256: str  # kept, to recognise the key


def new_api_key() -> NewApiKey:
    visible = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    key = f"{KEY_PREFIX}{visible}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=key[:_PREFIX_LENGTH], sha256=hash_secret(key))


def looks_like_api_key(value: str | None) -> bool:
    """Cheap shape check before any lookup (an operator token or garbage is not a key)."""
    return (
        value is not None
        and value.startswith(KEY_PREFIX)
        and 40 <= len(value) <= 100
        and value[_PREFIX_LENGTH : _PREFIX_LENGTH + 1] == "_"
    )
