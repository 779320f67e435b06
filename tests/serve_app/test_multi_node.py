"""Several nodes: knowledge lives in the Chroma server, so losing the node that held a cliente's
retriever loses no knowledge; start-up refuses a multi-node cluster without CHROMA_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.db import migrate
from tests.support.multi_node import CHATS, KNOWLEDGE
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_chats_on_two_nodes_are_answered_with_passages_after_the_retrievers_node_is_lost(
    postgres_admin_url: str,
) -> None:
    # Its own database: this session's supervisor would otherwise recover these conversations.
    name, database_url = create_database(postgres_admin_url, "conversa_multinode")
    try:
        migrate.upgrade(database_url)
        result = _run_scenario(database_url)
    finally:
        drop_database(postgres_admin_url, name)

    assert result["refused"] and "CHROMA_URL" in result["refused"]
    # Conversations on both nodes; the retriever on the one that is lost.
    assert set(result["before"].values()) == {result["node_a"], result["node_b"]}
    assert result["retriever_node"] == result["node_a"]
    assert result["new_retriever_node"] not in (None, result["node_a"])

    turns = result["turns"]
    assert len(turns) == 2 * CHATS
    for turn in turns:  # every turn, before and after the loss, was given passages
        assert turn["sources"], turn
        assert set(turn["sources"]) <= set(KNOWLEDGE)
    for chat, replies in result["replies"].items():
        assert len(replies) == 2, (chat, replies)  # each question answered once
        assert "R$ 100" in replies[0] and "9h às 18h" in replies[1], replies
    assert not result["data_dir_used"]  # nothing on a node's local disk
    print(
        f"answered {result['answered_first_s']} s; loss detected after "
        f"{result['loss_detected_s']} s; all answered again in {result['answered_after_loss_s']} s"
    )


def _run_scenario(database_url: str) -> dict[str, Any]:
    # A multi-node ray.cluster_utils.Cluster needs its own driver process.
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.multi_node", database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        # Not this session's Ray settings (RAY_ADDRESS, ingress ports…): a cluster of its own.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
            "PYTHONPATH": str(ROOT),
        },
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))
