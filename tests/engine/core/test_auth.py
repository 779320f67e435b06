"""Shared-secret checks (engine/auth.py)."""

from __future__ import annotations

import hashlib

import pytest

from engine.core.auth import bearer_token, hash_secret, secret_matches, token_matches

SECRET = "whsec_3f9a1c0e7b2d4a6f8e1c3b5d7f9a2c4e"
STORED = hashlib.sha256(SECRET.encode()).hexdigest()


def test_hash_secret_is_the_hex_sha256_of_the_secret() -> None:
    assert hash_secret(SECRET) == STORED
    assert hash_secret(SECRET) != SECRET


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(SECRET, True, id="right"),
        pytest.param(SECRET.upper(), False, id="wrong-case"),
        pytest.param(SECRET + " ", False, id="trailing-space"),
        pytest.param(SECRET[:-1], False, id="truncated"),
        pytest.param("whsec_outro", False, id="wrong"),
        pytest.param(STORED, False, id="the-stored-hash-itself"),
        pytest.param(None, False, id="none"),
        pytest.param("", False, id="empty"),
    ],
)
def test_secret_matches_only_the_secret_whose_hash_is_stored(
    given: str | None, expected: bool
) -> None:
    assert secret_matches(given, STORED) is expected


def test_an_empty_secret_never_matches_even_if_its_hash_is_stored() -> None:
    assert secret_matches("", hash_secret("")) is False


def test_secret_with_non_ascii_characters_matches_its_hash() -> None:
    assert secret_matches("segredo-ção-🔐", hash_secret("segredo-ção-🔐")) is True


@pytest.mark.parametrize(
    ("given", "expected", "result"),
    [
        pytest.param("test-admin-token", "test-admin-token", True, id="equal"),
        pytest.param("test-admin-tokem", "test-admin-token", False, id="one-char-off"),
        pytest.param("test-admin-token-", "test-admin-token", False, id="longer"),
        pytest.param("test-admin", "test-admin-token", False, id="prefix"),
        pytest.param("TEST-ADMIN-TOKEN", "test-admin-token", False, id="case"),
        pytest.param("ção", "ção", True, id="non-ascii"),
        pytest.param(None, "test-admin-token", False, id="none"),
        pytest.param("", "test-admin-token", False, id="empty"),
        pytest.param("", "", False, id="empty-never-matches"),
    ],
)
def test_token_matches_exact_tokens_only(given: str | None, expected: str, result: bool) -> None:
    assert token_matches(given, expected) is result


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param("Bearer abc123", "abc123", id="bearer"),
        pytest.param("bearer abc123", "abc123", id="lowercase"),
        pytest.param("BEARER abc123", "abc123", id="uppercase"),
        pytest.param("BeArEr abc123", "abc123", id="mixed-case"),
        pytest.param("Bearer   abc123  ", "abc123", id="extra-spaces"),
        pytest.param("Bearer abc def", "abc def", id="value-with-space-kept-whole"),
        pytest.param("Bearer", None, id="scheme-only"),
        pytest.param("Bearer ", None, id="scheme-and-space"),
        pytest.param("Bearer    ", None, id="scheme-and-spaces"),
        pytest.param("Basic dXNlcjpwYXNz", None, id="basic"),
        pytest.param("Token abc123", None, id="token-scheme"),
        pytest.param("Bearerabc123", None, id="no-separator"),
        pytest.param("abc123", None, id="bare-value"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_during_a_rotation_both_secrets_match_and_nothing_else() -> None:
    new = "whsec_the_new_one_0123456789abcdef"
    assert secret_matches(new, hash_secret(new), STORED)
    assert secret_matches(SECRET, hash_secret(new), STORED)
    assert not secret_matches("whsec_outro", hash_secret(new), STORED)
    assert not secret_matches(SECRET, hash_secret(new), None)  # the overlap is over
