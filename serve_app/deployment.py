"""The Ray Serve deployment that serves `serve_app.app` (webhooks and the operator API)."""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from ray import serve

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
        configure_logging(settings.log_level)
        self._ctx = IngressContext(settings)
        log.info(
            "ingress replica ready",
            extra={"ingress_mode": settings.ingress_mode.value, **self._runtime_flags()},
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = build_app()
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


def build(settings: Settings) -> serve.Application:
    replicas = settings.ingress_replicas
    return Ingress.options(num_replicas=replicas).bind(settings)  # type: ignore[attr-defined]
