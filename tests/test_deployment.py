"""The deployment files agree with the code and with each other, checked without Docker: the
compose file against `Settings`, Ray's cluster launcher and Serve's own validation, Prometheus
and Grafana against Ray's file layout and the metrics catalog, and the entrypoint run for real.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from engine.config import Settings
from engine.metrics_catalog import METRICS, METRICS_BY_NAME, RAY_LABELS, MetricKind, MetricSpec
from engine.naming import CONVERSATION_SLOT

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
RAY_NODES = ("conversa", "ray-worker")
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
RAY_PACKAGE = Path(next(iter(importlib.util.find_spec("ray").submodule_search_locations or [])))

# Environment names the Ray nodes get that are not Conversa settings, with the installed Ray
# file that reads each: a typo or a name Ray dropped fails here instead of being ignored.
READ_BY_RAY = {
    "RAY_AUTH_MODE": "_private/authentication/authentication_token_setup.py",
    "RAY_AUTH_TOKEN": "_raylet.so",  # the C++ token loader
    "RAY_GRAFANA_HOST": "dashboard/modules/metrics/metrics_head.py",
    "RAY_GRAFANA_IFRAME_HOST": "dashboard/modules/metrics/metrics_head.py",
    "RAY_PROMETHEUS_HOST": "dashboard/modules/metrics/metrics_head.py",
    "RAY_PROMETHEUS_NAME": "dashboard/modules/metrics/metrics_head.py",
}


def environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def resolved(value: str) -> str:
    """A compose value with `${VAR...}` replaced by a stand-in, as compose would interpolate."""
    return re.sub(r"\$\{([A-Z0-9_]+)[^}]*\}", lambda m: f"x{m.group(1).lower()}", value)


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def compose_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_TEXT))


def published_targets(service: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1]) for p in SERVICES[service].get("ports", [])}


def mounts(service: str) -> dict[str, str]:
    """source -> target of a service's volumes (short syntax)."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        found[source] = target
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- docker-compose.yml and .env.example -------------------------------------------------------


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


# --- Dockerfile and entrypoint ----------------------------------------------------------------


def test_the_image_runs_the_entrypoint_which_is_executable_valid_bash_and_in_the_context() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chmod=755 deploy/entrypoint.sh /usr/local/bin/conversa-entrypoint" in dockerfile
    assert 'ENTRYPOINT ["conversa-entrypoint"]' in dockerfile
    assert re.search(r"^USER conversa$", dockerfile, re.M)
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    # Everything the Dockerfile copies is let through .dockerignore (which ignores all else).
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {m.group(1) for m in re.finditer(r"^COPY (?:--\S+ )*(\S+)", dockerfile, re.M)}
    copied |= {"README.md"}
    assert copied <= allowed
    for service in RAY_NODES:
        assert SERVICES[service]["healthcheck"]["test"][1] == "conversa-entrypoint"


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_head_refuses_to_start_without_a_database_url() -> None:
    result = run_entrypoint("head", env={})
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr


def test_the_head_gives_up_when_postgresql_never_answers() -> None:
    from tests.support.http_server import free_port

    url = f"postgresql://conversa:x@127.0.0.1:{free_port()}/conversa"
    result = run_entrypoint("head", env={"DATABASE_URL": url, "POSTGRES_WAIT_S": "2"})
    assert result.returncode != 0
    assert "PostgreSQL did not accept connections" in result.stderr
    assert "starting the Ray head" not in result.stderr


def test_the_head_healthcheck_passes_only_while_healthz_answers_200() -> None:
    from fastapi import FastAPI, Response

    from tests.support.http_server import ServerThread, free_port

    status = {"code": 200}
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(status_code=status["code"])

    server = ServerThread(app).start()
    try:
        assert (
            run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(server.port)}).returncode
            == 0
        )
        status["code"] = 503
        assert (
            run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(server.port)}).returncode
            != 0
        )
    finally:
        server.stop()
    assert (
        run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(free_port())}).returncode != 0
    )


# --- Ray cluster launcher configs --------------------------------------------------------------

CLUSTER_CONFIGS = [ROOT / "ray_cluster.yaml", DEPLOY / "ray_cluster.aws.yaml"]


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_cluster_config_passes_rays_own_validation(path: Path) -> None:
    """What `ray up` runs before touching a machine: defaults merged, then the JSON schema and
    Ray's own checks. The AWS provider's bootstrap (boto3, credentials) is not run."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(load_yaml(path))
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]


@pytest.mark.parametrize("path", CLUSTER_CONFIGS, ids=lambda p: p.name)
def test_cluster_config_installs_conversa_and_deploys_the_serve_app(path: Path) -> None:
    config = load_yaml(path)
    assert config["file_mounts"]["~/conversa"] == "."
    assert any("pip install -e ." in c for c in config["setup_commands"])
    head, workers = config["head_start_ray_commands"], config["worker_start_ray_commands"]
    for commands in (head, workers):
        start = next(c for c in commands if "ray start" in c)
        assert 'eval "$(.venv/bin/conversa ray-env)"' in start and ". ./.env" in start
        assert "--metrics-export-port=8090" in start
    assert any("conversa migrate" in c for c in head)
    (deploy,) = [c for c in head if "serve deploy" in c]
    assert (ROOT / re.search(r"serve deploy (\S+)", deploy).group(1)).is_file()
    assert head.index(deploy) > max(i for i, c in enumerate(head) if "conversa migrate" in c)


def test_the_local_cluster_offers_the_conversation_slots_conversa_ray_env_prints() -> None:
    config = load_yaml(ROOT / "ray_cluster.yaml")
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert any('--resources="$CONVERSA_RAY_RESOURCES"' in c for c in commands)


def test_every_aws_node_type_offers_the_same_conversation_slots() -> None:
    """The supervisor's per-node cap is one number (MAX_LIVE_CONVERSATIONS)."""
    node_types = load_yaml(DEPLOY / "ray_cluster.aws.yaml")["available_node_types"]
    slots = {t["resources"].get(CONVERSATION_SLOT) for t in node_types.values()}
    assert len(slots) == 1 and next(iter(slots)) > 0


# --- the Serve config --------------------------------------------------------------------------


def serve_config() -> Any:
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(load_yaml(DEPLOY / "serve_config.yaml"))


def test_serve_config_passes_serves_schema_and_imports_the_app_builder() -> None:
    from ray._common.utils import import_attr
    from ray.serve._private.build_app import build_app

    from serve_app import deployment
    from serve_app.runtime import APP_NAME

    (app,) = serve_config().applications
    assert (app.name, app.route_prefix) == (APP_NAME, "/")
    assert import_attr(app.import_path) is deployment.app_builder
    # The deployments the config overrides exist in the app the builder returns.
    settings = deployment.settings_from_args(
        {"database_url": "postgresql://conversa@postgres/conversa", **app.args}
    )
    built = build_app(deployment.Ingress.bind(settings), name=APP_NAME, default_runtime_env={})
    assert {d.name for d in app.deployments} <= {d.name for d in built.deployments}


def test_serve_config_scales_the_ingress_within_what_postgresql_and_haproxy_allow() -> None:
    config = serve_config()
    (ingress,) = config.applications[0].deployments
    scaling = ingress.autoscaling_config
    settings = Settings()
    assert scaling["min_replicas"] >= 2  # a replica restart never stalls acks
    assert ingress.max_ongoing_requests >= scaling["target_ongoing_requests"]
    pool = settings.db_pool_size
    assert scaling["max_replicas"] * pool + settings.reply_workers * pool < 100  # max_connections
    assert config.http_options.port == int(environment("conversa")["HTTP_PORT"])


def test_settings_from_args_refuses_unknown_names_and_a_missing_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from serve_app.deployment import settings_from_args

    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INGRESS_REPLICAS", "3")
    with pytest.raises(ValueError, match="idle_ttl"):
        settings_from_args({"idle_ttl": 5, "database_url": "postgresql://h/db"})
    with pytest.raises(ValueError, match="DATABASE_URL"):
        settings_from_args({})
    settings = settings_from_args({"database_url": "postgresql://h/db", "idle_ttl_s": 5})
    assert (settings.idle_ttl_s, settings.ingress_replicas) == (5, 3)


@pytest.mark.parametrize(
    ("nodes", "chroma_url", "refused"),
    [(1, None, False), (2, None, True), (2, "http://chroma:8000", False), (5, None, True)],
)
def test_more_than_one_node_needs_a_chroma_server(
    nodes: int, chroma_url: str | None, refused: bool
) -> None:
    from serve_app.deployment import refuse_local_knowledge_on_many_nodes

    settings = Settings(chroma_url=chroma_url)
    if refused:
        with pytest.raises(ValueError, match="CHROMA_URL"):
            refuse_local_knowledge_on_many_nodes(settings, node_count=nodes)
    else:
        refuse_local_knowledge_on_many_nodes(settings, node_count=nodes)


# --- Prometheus and Grafana --------------------------------------------------------------------


def test_prometheus_reads_rays_service_discovery_file_from_the_heads_temp_dir() -> None:
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    (ray_job,) = [job for job in config["scrape_configs"] if "file_sd_configs" in job]
    (sd_file,) = [f for sd in ray_job["file_sd_configs"] for f in sd["files"]]
    ray_temp_dir = "/tmp/ray"  # Ray's default in the image (no --temp-dir, no RAY_TMPDIR)
    assert sd_file == f"{ray_temp_dir}/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"
    # The file is a symlink into the session dir: same volume, same path on both sides.
    assert mounts("conversa")["ray-head"] == mounts("prometheus")["ray-head"] == ray_temp_dir
    assert mounts("prometheus")["./deploy/prometheus/prometheus.yml"] in str(
        SERVICES["prometheus"]["command"]
    )


def test_grafana_provisions_rays_generated_dashboards_and_conversas() -> None:
    from ray._private.ray_constants import SESSION_LATEST

    providers = {
        p["name"]: p["options"]["path"]
        for p in load_yaml(DEPLOY / "grafana/provisioning/dashboards/dashboards.yml")["providers"]
    }
    grafana = mounts("grafana")
    # Ray's metrics head writes them to <temp dir>/<session>/metrics/grafana/dashboards.
    ray_dashboards = f"{grafana['ray-head']}/{SESSION_LATEST}/metrics/grafana/dashboards"
    assert providers == {
        "Conversa": grafana["./deploy/grafana/dashboards"],
        "Ray": ray_dashboards,
    }
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


DASHBOARD = json.loads((DEPLOY / "grafana/dashboards/conversa.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
EXPORTED = {series: metric for metric in METRICS for series in metric.exported_series}


def selectors(expr: str) -> list[tuple[str, str]]:
    """(series name, label matchers) of every series a PromQL expression selects."""
    return re.findall(r"\b(ray_[a-z0-9_]+)(\{[^}]*\})?", expr)


def test_dashboard_queries_only_catalog_metrics_and_their_tags() -> None:
    problems = []
    for panel in PANELS:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            metrics = [EXPORTED.get(name) for name, _ in selectors(expr)]
            if None in metrics or not metrics:
                problems.append(expr)
                continue
            labels = set(RAY_LABELS) | {t for m in metrics if m for t in m.tags}
            if any(m and m.kind is MetricKind.HISTOGRAM for m in metrics):
                labels.add("le")
            used = re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr)
            used += [g for by in re.findall(r"by\s*\(([^)]*)\)", expr) for g in by.split(",")]
            if {label.strip() for label in used} - labels:
                problems.append(expr)
    assert problems == []


def test_every_catalog_metric_has_a_panel_and_panels_are_distinct() -> None:
    shown = {
        EXPORTED[name].name
        for p in PANELS
        for t in p["targets"]
        for name, _ in selectors(t["expr"])
    }
    assert shown == set(METRICS_BY_NAME)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"] == "conversa"
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert selectors(variables["cliente"]["definition"])[0][0] in EXPORTED


@pytest.mark.parametrize(
    ("metric", "series"),
    [
        (MetricSpec("conversa_a_total", MetricKind.COUNTER, ""), ("ray_conversa_a_total",)),
        (MetricSpec("conversa_b", MetricKind.COUNTER, ""), ("ray_conversa_b_total",)),
        (MetricSpec("conversa_c", MetricKind.GAUGE, ""), ("ray_conversa_c",)),
        (
            MetricSpec("conversa_d_seconds", MetricKind.HISTOGRAM, ""),
            (
                "ray_conversa_d_seconds_bucket",
                "ray_conversa_d_seconds_sum",
                "ray_conversa_d_seconds_count",
            ),
        ),
    ],
)
def test_exported_series_names_follow_rays_prometheus_naming(
    metric: MetricSpec, series: tuple[str, ...]
) -> None:
    from ray._private.telemetry.open_telemetry_metric_recorder import NAMESPACE

    assert metric.exported_series == series
    assert series[0].startswith(f"{NAMESPACE}_")


def test_catalog_names_are_conversa_metrics_with_declared_tag_values() -> None:
    for metric in METRICS:
        assert re.fullmatch(r"conversa_[a-z0-9_]+", metric.name), metric.name
        assert set(metric.values) <= set(metric.tags), metric.name
        assert not {"chat", "phone", "chat_jid"} & set(metric.tags)  # unbounded: never a tag
