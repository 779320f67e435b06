"""The Ray Serve deployment that serves `serve_app.app` (webhooks and the operator API)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from ray import serve

from engine.adapters import ray_secrets
from engine.config import Settings
from engine.logs import configure_logging
from serve_app.app import build_app
from serve_app.context import IngressContext

log = logging.getLogger(__name__)


@serve.deployment(
    name="Ingress",
    ray_actor_options={"num_cpus": 0},
    # Acks are a few ms of work; admit many at once so Serve's own admission never queues them.
    max_ongoing_requests=256,
    health_check_period_s=5,
)
@serve.ingress()  # late-bound: the app is built in the replica, around this replica's context
class Ingress:
    def __init__(self, settings: Settings):
        settings = ray_secrets.restored(settings)  # bound withheld (start_shared_actors publishes)
        configure_logging(settings.log_level)
        self._ctx = IngressContext(settings)
        log.info(
            "ingress replica ready",
            extra={"ingress_mode": settings.ingress_mode.value, **self._runtime_flags()},
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = build_app(cors_origins=self._ctx.settings.cors_origins)
        app.state.ctx = self._ctx
        return app

    @staticmethod
    def _runtime_flags() -> dict[str, str]:
        return {
            "haproxy": os.environ.get("RAY_SERVE_ENABLE_HA_PROXY", "0"),
            "direct_ingress": os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS", "0"),
        }

    async def ingress_mode(self) -> dict[str, str]:
        """What this replica actually runs with (checked by the runtime at start-up)."""
        return self._runtime_flags()

    async def __del__(self) -> None:
        await self._ctx.close()


def build(settings: Settings, *, options: Mapping[str, Any] | None = None) -> serve.Application:
    """The app `conversa run` serves: INGRESS_REPLICAS replicas, or the Ingress deployment's
    options of a Serve config file (replicas, autoscaling, admission) when given."""
    chosen = dict(options) if options else {"num_replicas": settings.ingress_replicas}
    return Ingress.options(**chosen).bind(ray_secrets.withheld(settings))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ServeConfig:
    """What `conversa run --serve-config FILE` takes from a `serve deploy` config file: the
    Conversa application's `args` (Settings overrides) and its Ingress deployment's options."""

    args: dict[str, Any]
    ingress_options: dict[str, Any]


def read_serve_config(path: Path, *, app_name: str) -> ServeConfig:
    """Read and validate a Serve config with Serve's own schema; refuses one without the app."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    try:
        config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path} is not a usable Serve config: {e}") from e
    app = next((a for a in config.applications if a.name == app_name), None)
    if app is None:
        raise ValueError(f"{path} has no application named {app_name!r}")
    unknown = sorted(set(app.args) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"the Serve config's args name no setting: {unknown}")
    ingress = next((d for d in app.deployments if d.name == "Ingress"), None)
    options = ingress.model_dump(exclude_unset=True, exclude={"name"}) if ingress else {}
    return ServeConfig(dict(app.args), options)


# --- `serve deploy` ------------------------------------------------------------------------------


def app_builder(args: dict[str, Any]) -> serve.Application:
    """The application `serve deploy deploy/serve_config.yaml` builds
    (`import_path: serve_app.deployment:app_builder`).

    Serve calls it in a task on the cluster, so `Settings()` is read from the environment the
    nodes' `ray start` ran with; `args` (Settings field names) override it. It starts the shared
    actors `conversa run` starts (all get-or-create) and leaves replicas and autoscaling to the
    config file, which overrides whatever the code sets.
    """
    settings = settings_from_args(args)
    start_shared_actors(settings)
    return Ingress.bind(ray_secrets.withheld(settings))  # type: ignore[attr-defined]


def settings_from_args(args: Mapping[str, Any]) -> Settings:
    """The environment's Settings with a Serve config's `args` on top; refuses what a cluster
    cannot run with (an unknown name, no DATABASE_URL: no embedded PostgreSQL on a cluster)."""
    unknown = sorted(set(args) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"the Serve config's args name no setting: {unknown}")
    settings = Settings(**args)
    if not settings.database_url:
        raise ValueError("DATABASE_URL must be set on every node to deploy with a Serve config")
    return settings


def refuse_local_knowledge_on_many_nodes(settings: Settings, *, node_count: int) -> None:
    """With more than one node, an on-disk Chroma store would live on whichever node its
    retriever happened to start on, and be lost with it: knowledge must be in a Chroma server."""
    if node_count > 1 and not settings.chroma_url:
        raise ValueError(
            f"the Ray cluster has {node_count} nodes but CHROMA_URL is not set: knowledge would "
            "live on one node's disk. Run a Chroma server and set CHROMA_URL on every node."
        )


def start_shared_actors(settings: Settings) -> None:
    """The cluster-wide actors every replica and conversation relies on (idempotent)."""
    import ray

    from engine.actors.embedder import embedder_handle
    from engine.actors.reply_worker import start_reply_workers
    from engine.actors.supervisor import start_supervisor
    from engine.wiring import conversation_config
    from serve_app.runtime import require_slots

    require_slots(settings)
    ray_secrets.publish(settings)  # what the actors and replicas given withheld Settings read
    refuse_local_knowledge_on_many_nodes(
        settings, node_count=sum(1 for node in ray.nodes() if node["Alive"])
    )
    embedder = embedder_handle(model=settings.embedding_model, namespace=settings.ray_namespace)
    ray.get(embedder.embed.remote(["ok"]))
    start_reply_workers(settings)
    start_supervisor(settings, conversation_config(settings))
