"""docker-compose.yml and .env.example agree with Settings, with Ray and with each other."""

from __future__ import annotations

import re
import secrets
import subprocess
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from engine.config import Settings
from tests.deploy.files import (
    COMPOSE,
    DEPLOY,
    ENTRYPOINT,
    RAY_NODES,
    RAY_PACKAGE,
    READ_BY_RAY,
    ROOT,
    SERVICES,
    SETTINGS_NAMES,
    compose_variables,
    env_example,
    environment,
    load_yaml,
    mounts,
    published_targets,
    resolved,
)


@pytest.mark.parametrize("service", RAY_NODES)
def test_every_env_name_a_ray_node_gets_is_read_by_conversa_ray_or_the_entrypoint(
    service: str,
) -> None:
    entrypoint = ENTRYPOINT.read_text()
    unread = []
    for name in environment(service):
        if name in SETTINGS_NAMES or f"${{{name}" in entrypoint:
            continue
        reader = READ_BY_RAY.get(name)
        if reader is None or name.encode() not in (RAY_PACKAGE / reader).read_bytes():
            unread.append(name)
    assert unread == []


def test_both_ray_roles_get_the_same_conversa_settings() -> None:
    head, worker = environment("conversa"), environment("ray-worker")
    shared = {k for k in head.keys() & worker.keys() if k in SETTINGS_NAMES}
    assert {k for k in worker if k in SETTINGS_NAMES} == shared
    assert {k: head[k] for k in shared} == {k: worker[k] for k in shared}
    assert SERVICES["conversa"]["env_file"] == SERVICES["ray-worker"]["env_file"] == ".env"


def test_the_compose_settings_are_valid_settings() -> None:
    env = {k: resolved(v) for k, v in environment("conversa").items() if k in SETTINGS_NAMES}
    assert "SECRETS_KEY" in env  # production refuses to start without it
    env["SECRETS_KEY"] = Fernet.generate_key().decode()  # a stand-in of the shape Settings checks
    env["ADMIN_TOKEN"] = secrets.token_urlsafe(32)  # as strong as production demands
    settings = Settings(**{k.lower(): v for k, v in env.items()})
    assert settings.environment == "production"
    assert settings.chroma_url and settings.database_url and settings.evolution_url


def test_env_example_names_settings_or_variables_the_compose_file_uses() -> None:
    names = env_example()
    stray = [n for n in names if n not in SETTINGS_NAMES and n not in compose_variables()]
    undocumented = sorted(compose_variables() - names.keys())
    assert (stray, undocumented) == ([], [])


def test_env_example_holds_no_secret_and_env_is_git_ignored() -> None:
    secrets = ("PASSWORD", "TOKEN", "KEY")
    values = {k: v for k, v in env_example().items() if any(s in k for s in secrets)}
    assert values and set(values.values()) <= {"change-me", ""}
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


def test_database_urls_name_the_postgres_service_its_role_and_database() -> None:
    postgres = environment("postgres")
    for url in (
        environment("conversa")["DATABASE_URL"],
        environment("evolution")["DATABASE_CONNECTION_URI"],
    ):
        parts = urlsplit(resolved(url))
        assert (parts.hostname, parts.port or 5432) == ("postgres", 5432)
        assert parts.username == postgres["POSTGRES_USER"]
        assert parts.password == resolved(postgres["POSTGRES_PASSWORD"])
        assert parts.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert "pg_isready -U conversa -d conversa" in str(SERVICES["postgres"]["healthcheck"])


def test_chroma_and_evolution_urls_name_their_services_and_the_ports_they_listen_on() -> None:
    env = environment("conversa")
    chroma, evolution = urlsplit(env["CHROMA_URL"]), urlsplit(env["EVOLUTION_URL"])
    # chromadb/chroma:1.x runs `chroma run /config.yaml`, which listens on 8000.
    assert (chroma.hostname, chroma.port) == ("chroma", 8000)
    assert "/dev/tcp/127.0.0.1/8000" in str(SERVICES["chroma"]["healthcheck"]["test"])
    assert (evolution.hostname, evolution.port) == ("evolution", 8080)
    assert published_targets("evolution") == {8080}
    assert "http://127.0.0.1:8080/" in SERVICES["evolution"]["healthcheck"]["test"]
    # One key: what Evolution demands is what Conversa sends.
    assert env["EVOLUTION_API_KEY"] == environment("evolution")["AUTHENTICATION_API_KEY"]


def test_the_head_publishes_http_and_dashboard_and_workers_join_its_gcs_port() -> None:
    env = environment("conversa")
    assert {int(env["HTTP_PORT"]), int(env["DASHBOARD_PORT"])} == published_targets("conversa")
    assert env["HTTP_HOST"] == env["DASHBOARD_HOST"] == "0.0.0.0"
    gcs_port = re.search(r"^RAY_GCS_PORT=(\d+)$", ENTRYPOINT.read_text(), re.M)
    assert gcs_port is not None
    assert env["RAY_ADDRESS"] == f"127.0.0.1:{gcs_port.group(1)}"
    assert environment("ray-worker")["RAY_HEAD_ADDRESS"] == f"conversa:{gcs_port.group(1)}"
    assert "ports" not in SERVICES["ray-worker"]  # scaled: several replicas cannot share a port


def test_the_dashboard_finds_grafana_and_prometheus_where_they_run() -> None:
    env = environment("conversa")
    grafana, prometheus = urlsplit(env["RAY_GRAFANA_HOST"]), urlsplit(env["RAY_PROMETHEUS_HOST"])
    assert (grafana.hostname, grafana.port) == ("grafana", 3000)
    assert (prometheus.hostname, prometheus.port) == ("prometheus", 9090)
    assert published_targets("grafana") == {3000} and published_targets("prometheus") == {9090}
    (datasource,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[
        "datasources"
    ]
    assert datasource["url"] == env["RAY_PROMETHEUS_HOST"]
    assert datasource["name"] == env["RAY_PROMETHEUS_NAME"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_healthcheck(service: str) -> None:
    check = SERVICES[service].get("healthcheck", {})
    assert check.get("test") and check["test"] != ["NONE"] and not check.get("disable")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_data_lives_in_named_volumes_and_only_config_is_bind_mounted(service: str) -> None:
    for volume in SERVICES[service].get("volumes", []):
        source, _, *mode = volume.split(":")
        if source.startswith("."):
            assert source.startswith("./deploy/") and mode == ["ro"], volume
        else:
            assert source in COMPOSE["volumes"], volume


def test_every_declared_volume_is_used() -> None:
    used = {source for service in SERVICES for source in mounts(service)}
    assert set(COMPOSE["volumes"]) <= used
