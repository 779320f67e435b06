"""The deployment files, loaded once for the tests beside this module (no Docker needed)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from engine.config import Settings

ROOT = Path(__file__).resolve().parents[2]
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
