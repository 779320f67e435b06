"""deploy/serve_config.yaml passes Serve's schema and builds Conversa's app."""

from __future__ import annotations

from typing import Any

from engine.config import Settings
from tests.deploy.files import DEPLOY, SERVICES, environment, load_yaml


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
    # Replicas and reply workers each hold two pools (SQLAlchemy, and asyncpg for the ack or the
    # turn); the rest is room for recovery, billing, retention and ~15 live retrievers (2 each).
    pools = 2 * (scaling["max_replicas"] + settings.reply_workers) * settings.db_pool_size
    assert pools + 40 <= _compose_max_connections()
    assert config.http_options.port == int(environment("conversa")["HTTP_PORT"])


def _compose_max_connections() -> int:
    command = SERVICES["postgres"].get("command") or []
    settings = [c.split("=", 1) for c in command if c.startswith("max_connections=")]
    return int(settings[0][1]) if settings else 100  # PostgreSQL's default


def test_conversa_run_serves_the_ingress_with_the_config_files_scaling_and_admission() -> None:
    from ray.serve._private.build_app import build_app

    from serve_app import deployment
    from serve_app.runtime import APP_NAME, describe_replicas

    config = deployment.read_serve_config(DEPLOY / "serve_config.yaml", app_name=APP_NAME)
    settings = Settings(_env_file=None, database_url="postgresql://conversa@localhost/conversa")  # type: ignore[call-arg]
    built = build_app(
        deployment.build(settings, options=config.ingress_options),
        name=APP_NAME,
        default_runtime_env={},
    )
    (ingress,) = built.deployments
    (expected,) = serve_config().applications[0].deployments
    assert ingress.max_ongoing_requests == expected.max_ongoing_requests
    assert ingress.max_queued_requests == expected.max_queued_requests
    scaling = ingress._deployment_config.autoscaling_config  # no public reader in Ray 2.60
    assert (scaling.min_replicas, scaling.max_replicas) == (
        expected.autoscaling_config["min_replicas"],
        expected.autoscaling_config["max_replicas"],
    )
    assert describe_replicas(settings, config.ingress_options) == "2-6 replicas (autoscaling)"
    assert describe_replicas(settings, None) == f"{settings.ingress_replicas} replica(s)"


def test_a_serve_config_conversa_cannot_use_is_refused_before_anything_starts(
    tmp_path: Any,
) -> None:
    import pytest

    from serve_app import deployment

    cases = {
        "not yaml: [": "is not a usable Serve config",
        "applications: [{name: other, import_path: x.y:z}]": "no application named 'conversa'",
        "applications: [{name: conversa, import_path: x.y:z, args: {no_such: 1}}]": "no_such",
    }
    for text, reason in cases.items():
        path = tmp_path / "serve.yaml"
        path.write_text(text)
        with pytest.raises(ValueError, match=reason):
            deployment.read_serve_config(path, app_name="conversa")
