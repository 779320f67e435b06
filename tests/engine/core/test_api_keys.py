"""Tenant API keys: their shape, what is stored (a hash) and what is shown (a prefix)."""

from __future__ import annotations

import hashlib

import pytest

from engine.core.api_keys import looks_like_api_key, new_api_key


def test_a_new_key_is_random_its_prefix_shown_and_only_its_hash_kept() -> None:
    keys = [new_api_key() for _ in range(200)]
    assert len({k.key for k in keys}) == 200 and len({k.prefix for k in keys}) == 200
    made = keys[0]
    assert made.key.startswith(made.prefix) and len(made.prefix) == 12
    assert made.sha256 == hashlib.sha256(made.key.encode()).hexdigest()
    assert len(made.key) - len(made.prefix) - 1 >= 43  # 256 bits of secret after the prefix
    assert all(looks_like_api_key(k.key) for k in keys)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "dev-admin-token",
        "Bearer cvk_x",
        "cvk_short",
        "cvk_AbCd1234" + "x" * 60,  # no separator after the prefix
        "cvk_AbCd1234_" + "x" * 200,  # far too long
    ],
)
def test_things_that_are_not_keys_are_told_apart_before_any_lookup(value: str | None) -> None:
    assert not looks_like_api_key(value)
