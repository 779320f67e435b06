"""Settings (engine/config.py): defaults, production guard, environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from engine.config import DEV_ADMIN_TOKEN, DEV_SECRETS_KEY, Settings


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
        admin_token="prod-7c1e0b9a4f2d4e8a",
        secrets_key=Fernet.generate_key().decode(),
    )

    assert settings.admin_token.get_secret_value() == "prod-7c1e0b9a4f2d4e8a"


def test_admin_token_is_not_shown_in_the_settings_repr() -> None:
    settings = Settings(_env_file=None, admin_token="prod-7c1e0b9a4f2d4e8a")

    assert "prod-7c1e0b9a4f2d4e8a" not in repr(settings)


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

    monkeypatch.setenv("ADMIN_TOKEN", "prod-from-env-0123456789")
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())
    settings = Settings(_env_file=None)
    assert settings.admin_token.get_secret_value() == "prod-from-env-0123456789"


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
        Settings(_env_file=None, environment="production", admin_token="prod-7c1e0b9a4f2d4e8a")
    with pytest.raises(ValidationError, match="SECRETS_KEY"):
        Settings(
            _env_file=None,
            environment="production",
            admin_token="prod-7c1e0b9a4f2d4e8a",
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
