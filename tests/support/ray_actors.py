"""Test-side control of named Ray actors (what an operator or a crash does to them)."""

from __future__ import annotations

import ray


def kill_actor(name: str, *, namespace: str) -> bool:
    """Kill a named actor if it is alive (conversation and retriever state is persisted)."""
    try:
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
    except ValueError:
        return False
    return True
