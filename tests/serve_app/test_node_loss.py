"""Losing the node that holds conversation actors loses no accepted message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.db import migrate
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_pending_bursts_are_answered_from_another_node_when_their_node_is_lost(
    postgres_admin_url: str,
) -> None:
    # Its own database: this session's supervisor would otherwise recover these conversations.
    name, database_url = create_database(postgres_admin_url, "conversa_nodeloss")
    try:
        migrate.upgrade(database_url)
        result = _run_scenario(database_url)
    finally:
        drop_database(postgres_admin_url, name)
    assert set(result["before"].values()) == {result["node_a"]}  # all on the node we lose
    for chat, replies in result["replies"].items():
        assert len(replies) == 1, (chat, replies, result["database"])  # answered, exactly once
        assert replies[0].endswith(f"pergunta de {chat}")
    assert set(result["after"].values()) <= {result["node_b"], None}
    print(f"answered {result['answered_after_s']} s after the node was lost")


def _run_scenario(database_url: str) -> dict:  # type: ignore[type-arg]
    # A multi-node ray.cluster_utils.Cluster needs its own driver process.
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.node_loss", database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # Not this session's Ray settings (RAY_ADDRESS, ingress ports…): a cluster of its own.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
            "PYTHONPATH": str(ROOT),
        },
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))
