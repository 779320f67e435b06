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


def alive_actor_nodes(class_name: str) -> dict[str, str]:
    """Actor name -> node id of the live actors of a class (Ray's actor table, no dashboard)."""
    from ray._private import state

    return {
        a["Name"]: a["Address"]["NodeID"]
        for a in state.actors(actor_state_name="ALIVE").values()
        if a["ActorClassName"] == class_name and a["Name"]
    }


def live_conversation_actors_per_node() -> dict[str, int]:
    """How many conversation actors Ray lists as alive on each node."""
    per_node: dict[str, int] = {}
    for node in alive_actor_nodes("ConversationActor").values():
        per_node[node] = per_node.get(node, 0) + 1
    return per_node


def alive_actor_pid(name: str) -> int | None:
    """The process id of the live actor named `name` (from Ray's GCS actor table), to signal it
    as an operator or a crash would (`kill -9`, or SIGSTOP to make it hang)."""
    from ray._private import state

    for actor in state.actors(actor_state_name="ALIVE").values():
        if actor["Name"] == name and actor["Pid"]:
            return int(actor["Pid"])
    return None
