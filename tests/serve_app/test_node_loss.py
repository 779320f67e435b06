"""Losing the node that holds conversation actors loses no accepted message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_pending_bursts_are_answered_from_another_node_when_their_node_is_lost(
    database_url: str,
) -> None:
    # A multi-node ray.cluster_utils.Cluster needs its own driver process.
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.node_loss", database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert set(result["before"].values()) == {result["node_a"]}  # all on the node we lose
    for chat, replies in result["replies"].items():
        assert len(replies) == 1, (chat, replies, result, run.stderr[-3000:])  # exactly once
        assert replies[0].endswith(f"pergunta de {chat}")
    assert set(result["after"].values()) <= {result["node_b"], None}
    print(f"answered {result['answered_after_s']} s after the node was lost")
