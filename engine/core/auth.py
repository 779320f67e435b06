"""Shared-secret checks, always in constant time and never against a stored plaintext."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta


def hash_secret(secret: str) -> str:
    """What we store for a webhook secret: its SHA-256 (the secret is high-entropy, set by us).
    A webhook finds its instance by this hash (an indexed lookup), so no plaintext is kept."""
    return hashlib.sha256(secret.encode()).hexdigest()


# How long a rotated-out webhook secret is still accepted: Evolution retries a failed post for
# minutes, and a post already on its way when the secret changed carries the old one.
SECRET_ROTATION_OVERLAP = timedelta(minutes=5)


def token_matches(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(authorization: str | None) -> str | None:
    """`Bearer abc` → `abc`."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def new_secret() -> str:
    """A webhook secret Conversa generates for an instance it provisions (256 bits)."""
    return secrets.token_urlsafe(32)
