"""The promises the repository makes about itself: README, CI, deployment files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from engine.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == []


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(python3\.11 -m venv[^\n]*)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_ray_cluster_yaml_is_a_valid_local_cluster_config() -> None:
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    assert re.fullmatch(r"[a-zA-Z0-9_]+", config["cluster_name"])
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    assert config["auth"]["ssh_user"]
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("ray.env" in c for c in config["worker_start_ray_commands"])


def test_docker_compose_has_the_services_conversa_talks_to() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "chroma", "evolution"} <= set(compose["services"])
