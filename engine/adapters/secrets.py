"""Secrets at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256) under SECRETS_KEY."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from engine.errors import SecretUnreadable


class SecretBox:
    """Seals and opens one kind of secret (instance tokens) with the configured key."""

    def __init__(self, key: str):
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as e:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with SECRETS_KEY: was the key changed? "
                "Restore the key it was sealed with."
            ) from e

    def open_optional(self, sealed: str | None) -> str | None:
        return None if sealed is None else self.open(sealed)
