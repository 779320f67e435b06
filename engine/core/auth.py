"""Shared-secret checks, always in constant time and never against a stored plaintext."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta


def hash_secret(secret: str) -> str:
    """What we store for a webhook secret: its SHA-256 (the secret is high-entropy, set by us)."""
    return hashlib.sha256(secret.encode()).hexdigest()


# How long a rotated-out webhook secret is still accepted: Evolution retries a failed post for
# minutes, and a post already on its way when the secret changed carries the old one.
SECRET_ROTATION_OVERLAP = timedelta(minutes=5)


def secret_matches(given: str | None, *stored_sha256: str | None) -> bool:
    """Whether `given` is one of the stored secrets (each compared, in constant time)."""
    if not given:
        return False
    digest = hash_secret(given)
    matches = [hmac.compare_digest(digest, s) for s in stored_sha256 if s is not None]
    return any(matches)


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
