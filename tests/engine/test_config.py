"""Settings (engine/config.py): defaults, production guard, environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from engine.config import (
    DEV_ADMIN_TOKEN,
    DEV_SECRETS_KEY,
    GENERATE_TOKEN,
    Settings,
    token_weakness,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the process environment; start every test from none of its variables."""
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)


def test_defaults_work_on_one_machine() -> None:
    settings = Settings(_env_file=None)

    assert settings.environment == "development"
    assert settings.admin_token.get_secret_value() == DEV_ADMIN_TOKEN
    assert (settings.debounce_s, settings.max_wait_s) == (2.0, 12.0)
    assert (settings.chunk_size, settings.chunk_overlap) == (800, 120)
    assert settings.llm_enabled is False


def test_production_with_the_default_admin_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(_env_file=None, environment="production")


def test_production_with_the_default_token_given_explicitly_is_refused() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(_env_file=None, environment="production", admin_token=DEV_ADMIN_TOKEN)


def test_production_with_a_real_admin_token_is_accepted() -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        admin_token="prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV",
        secrets_key=Fernet.generate_key().decode(),
    )

    assert settings.admin_token.get_secret_value() == "prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV"


def test_admin_token_is_not_shown_in_the_settings_repr() -> None:
    settings = Settings(_env_file=None, admin_token="prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV")

    assert "prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV" not in repr(settings)


@pytest.mark.parametrize(("debounce_s", "max_wait_s"), [(2.0, 1.0), (5.0, 4.99), (0.5, 0.0)])
def test_max_wait_below_debounce_is_refused(debounce_s: float, max_wait_s: float) -> None:
    with pytest.raises(ValidationError, match="MAX_WAIT_S"):
        Settings(_env_file=None, debounce_s=debounce_s, max_wait_s=max_wait_s)


@pytest.mark.parametrize(("debounce_s", "max_wait_s"), [(2.0, 2.0), (0.0, 0.0), (5.0, 20.0)])
def test_max_wait_equal_to_or_above_debounce_is_accepted(
    debounce_s: float, max_wait_s: float
) -> None:
    settings = Settings(_env_file=None, debounce_s=debounce_s, max_wait_s=max_wait_s)

    assert (settings.debounce_s, settings.max_wait_s) == (debounce_s, max_wait_s)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBOUNCE_S", "5")
    monkeypatch.setenv("MAX_WAIT_S", "20")
    monkeypatch.setenv("CHUNK_SIZE", "600")
    monkeypatch.setenv("INGRESS_MODE", "direct")
    monkeypatch.setenv("DATA_DIR", "/srv/conversa")

    settings = Settings(_env_file=None)

    assert settings.debounce_s == 5.0
    assert settings.max_wait_s == 20.0
    assert settings.chunk_size == 600
    assert settings.ingress_mode == "direct"
    assert settings.chroma_dir == Path("/srv/conversa/chroma")


def test_environment_max_wait_below_default_debounce_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_WAIT_S", "1")

    with pytest.raises(ValidationError, match="MAX_WAIT_S"):
        Settings(_env_file=None)


def test_production_from_the_environment_needs_an_admin_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(_env_file=None)

    monkeypatch.setenv("ADMIN_TOKEN", "prod-from-env-0123456789-kQz7LmWx3RtYb")
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())
    settings = Settings(_env_file=None)
    assert settings.admin_token.get_secret_value() == "prod-from-env-0123456789-kQz7LmWx3RtYb"


def test_constructor_arguments_win_over_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEBOUNCE_S", "5")

    assert Settings(_env_file=None, debounce_s=3.0).debounce_s == 3.0


def test_env_file_is_read_when_given(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DEBOUNCE_S=4\nMAX_WAIT_S=30\n")

    settings = Settings(_env_file=env_file)

    assert (settings.debounce_s, settings.max_wait_s) == (4.0, 30.0)


@pytest.mark.parametrize(("key", "enabled"), [(None, False), ("", False), ("sk-test-123", True)])
def test_llm_is_enabled_only_with_a_non_empty_api_key(
    monkeypatch: pytest.MonkeyPatch, key: str | None, enabled: bool
) -> None:
    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)

    assert Settings(_env_file=None).llm_enabled is enabled


def test_settings_are_frozen() -> None:
    settings = Settings(_env_file=None)

    with pytest.raises(ValidationError):
        settings.debounce_s = 9.0  # type: ignore[misc]


def test_production_with_the_development_secrets_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="SECRETS_KEY"):
        Settings(
            _env_file=None,
            environment="production",
            admin_token="prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV",
        )
    with pytest.raises(ValidationError, match="SECRETS_KEY"):
        Settings(
            _env_file=None,
            environment="production",
            admin_token="prod-7c1e0b9a4f2d4e8aQw3RtY6uI9oPzXcV",
            secrets_key=DEV_SECRETS_KEY,
        )


def test_a_secrets_key_that_is_not_a_fernet_key_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ValidationError, match="Fernet key"):
        Settings(_env_file=None, secrets_key="too-short")


def test_public_url_defaults_to_the_http_address_evolution_would_use() -> None:
    assert Settings(_env_file=None, http_port=8123).base_url == "http://127.0.0.1:8123"
    assert Settings(_env_file=None, public_url="https://c.example.com/").base_url == (
        "https://c.example.com"
    )


STRONG_TOKEN = "Vh3kQ9pZr2LmX8tYc4NwB7sJd1FgK6aE_u0oPiTy"


@pytest.mark.parametrize(
    ("token", "weakness"),
    [
        pytest.param(DEV_ADMIN_TOKEN, "public development default", id="default"),
        pytest.param("x" * 31, "shorter than 32", id="31-chars"),
        pytest.param("change-me", "shorter than 32", id="placeholder"),
        pytest.param("ab" * 20, "fewer than 12 distinct", id="two-letters"),
        pytest.param("0123456789" * 4, "fewer than 12 distinct", id="digits"),
        pytest.param(STRONG_TOKEN, None, id="token_urlsafe"),
        pytest.param("0123456789abcdef" * 2, None, id="token_hex(16)"),
    ],
)
def test_token_weakness_names_why_a_token_is_weak(token: str, weakness: str | None) -> None:
    found = token_weakness(token)

    assert (found is None) == (weakness is None)
    assert weakness is None or (found is not None and weakness in found)


@pytest.mark.parametrize(
    ("environment", "http_host"),
    [
        ("production", "127.0.0.1"),
        ("prod", "127.0.0.1"),  # the careless operator: not exactly `production`
        ("development", "0.0.0.0"),  # reachable from the network, even in development
        ("development", "10.0.0.5"),
        ("development", "conversa.internal"),
        ("staging", "::1"),
    ],
)
@pytest.mark.parametrize("token", [DEV_ADMIN_TOKEN, "short-but-set", "ab" * 20])
def test_a_weak_admin_token_is_refused_off_loopback_development_saying_how_to_make_one(
    environment: str, http_host: str, token: str
) -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN") as refused:
        Settings(
            _env_file=None,
            environment=environment,
            http_host=http_host,
            admin_token=token,
            secrets_key=Fernet.generate_key().decode(),
        )

    assert GENERATE_TOKEN in str(refused.value)


@pytest.mark.parametrize("http_host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_a_weak_admin_token_is_accepted_on_loopback_in_development(http_host: str) -> None:
    settings = Settings(_env_file=None, http_host=http_host)

    assert settings.admin_token.get_secret_value() == DEV_ADMIN_TOKEN


@pytest.mark.parametrize(
    "environment_variables",
    [
        {"HTTP_HOST": "0.0.0.0"},
        {"ENVIRONMENT": "prod"},
        {"ENVIRONMENT": "production", "ADMIN_TOKEN": "change-me"},
    ],
)
def test_a_weak_token_is_refused_from_environment_variables(
    monkeypatch: pytest.MonkeyPatch, environment_variables: dict[str, str]
) -> None:
    for name, value in environment_variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(_env_file=None)


def test_a_strong_token_is_accepted_on_every_interface() -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        http_host="0.0.0.0",
        admin_token=STRONG_TOKEN,
        secrets_key=Fernet.generate_key().decode(),
    )

    assert settings.admin_token.get_secret_value() == STRONG_TOKEN


def test_the_generate_command_makes_a_token_that_is_accepted() -> None:
    import subprocess
    import sys

    command = GENERATE_TOKEN.removeprefix("python -c ").strip("'")
    token = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert token_weakness(token) is None
