"""The operator's glance (`GET /admin/status`, `conversa status`): live conversation actors per
node and per cliente, pending bursts, sends owed, recent failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ray
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.naming import CONVERSATION_SLOT, cliente_of_session
from engine.db import operations as operations_db

RECENT_FAILURES_S = 3600.0


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    address: str
    alive: bool
    live: int  # conversation actors on it
    slots: int  # conversation slots it offers


@dataclass(frozen=True)
class Status:
    nodes: list[NodeStatus]
    live_per_cliente: dict[int, int]
    pending_bursts: dict[int, int]
    sends_owed: int
    recent_failures: list[operations_db.Failure]
    counters: dict[str, int] = field(default_factory=dict)  # evicted, reaped, recovered
    waiting_for_a_human: dict[str, dict[int, int]] = field(default_factory=dict)


async def gather_status(session: AsyncSession, supervisor: Any) -> Status:
    stats, tracked, nodes = await asyncio.gather(
        supervisor.stats.remote(), supervisor.tracked.remote(), asyncio.to_thread(ray.nodes)
    )
    live_per_node: dict[str, int] = stats["live_per_node"]
    per_cliente = Counter(c for c in map(cliente_of_session, tracked) if c is not None)
    return Status(
        nodes=[
            NodeStatus(
                node_id=node["NodeID"],
                address=node["NodeManagerAddress"],
                alive=node["Alive"],
                live=live_per_node.get(node["NodeID"], 0),
                slots=int(node["Resources"].get(CONVERSATION_SLOT, 0)),
            )
            for node in nodes
            if node["Alive"] or node["NodeID"] in live_per_node
        ],
        live_per_cliente=dict(sorted(per_cliente.items())),
        pending_bursts=await operations_db.pending_bursts(session),
        sends_owed=await operations_db.sends_owed(session),
        recent_failures=await operations_db.recent_failures(session, since_s=RECENT_FAILURES_S),
        counters={k: stats[k] for k in ("evicted", "reaped_idle", "recovered")},
        waiting_for_a_human=await operations_db.waiting_for_a_human(session),
    )
