"""The Ray cluster launcher configs pass Ray's own validation and deploy Conversa."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.core.naming import CONVERSATION_SLOT
from tests.deploy.files import DEPLOY, ROOT, load_yaml

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
