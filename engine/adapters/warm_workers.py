"""Idle Python workers booted ahead of need, so a new conversation actor does not wait for one.

Ray starts one worker process per actor and never reuses it: a new chat's actor normally waits
for a process to boot (`python` + `import ray`, ~0.55 s of CPU, at most `num_cpus` booting at
once). The raylet can boot workers before anyone asks (`NodeManagerService.PrestartWorkers`), and
an unused one with no job, no runtime env and no actor fits any later actor creation. Ray has no
Python API for that call, so this speaks the raylet's gRPC the way Ray's own tools do
(`ray._private.grpc_utils.init_grpc_channel`, which adds TLS and token auth when configured).

The workers are started with no job id on purpose: a job id would tie them to the job that asked,
and the raylet kills idle workers of a finished job (a `conversa run` that was restarted) at once.
How many idle workers a raylet keeps is `RAY_num_workers_soft_limit` (`serve_app.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RPC_TIMEOUT_S = 5.0
NIL_ACTOR_ID = b"\xff" * 16  # how the raylet reports "no actor" and "no job"
NIL_JOB_ID = b"\xff" * 4


@dataclass(frozen=True)
class Raylet:
    node_id: str
    address: str  # host:port of its NodeManager gRPC service


def raylets_offering(resource: str) -> list[Raylet]:
    """The live nodes offering `resource` (where conversation actors may be placed)."""
    import ray

    return [
        Raylet(node["NodeID"], f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}")
        for node in ray.nodes()
        if node["Alive"] and node.get("Resources", {}).get(resource, 0) > 0
    ]


class WorkerPrestarter:
    """Asks raylets to boot idle Python workers; one gRPC channel per raylet, kept."""

    def __init__(self, keep_alive_s: int):
        self._keep_alive_s = keep_alive_s
        self._stubs: dict[str, Any] = {}

    def _stub(self, address: str) -> Any:
        if address not in self._stubs:
            from ray._private.grpc_utils import init_grpc_channel
            from ray.core.generated import node_manager_pb2_grpc

            channel = init_grpc_channel(address, asynchronous=True)
            self._stubs[address] = node_manager_pb2_grpc.NodeManagerServiceStub(channel)
        return self._stubs[address]

    async def idle_workers(self, raylet: Raylet) -> int | None:
        """How many workers on `raylet` are idle and never used (no job, no actor: the ones any
        actor creation can take); None, with a WARNING, when it cannot be asked."""
        from ray.core.generated import common_pb2, node_manager_pb2

        request = node_manager_pb2.GetNodeStatsRequest(include_memory_info=False)
        try:
            reply = await self._stub(raylet.address).GetNodeStats(request, timeout=RPC_TIMEOUT_S)
        except Exception as e:  # grpc.aio.AioRpcError and friends: never fatal
            self._forget(raylet, e)
            return None
        return sum(
            1
            for worker in reply.core_workers_stats
            if worker.worker_type == common_pb2.WORKER
            and worker.actor_id == NIL_ACTOR_ID
            and worker.job_id == NIL_JOB_ID
        )

    async def prestart(self, raylet: Raylet, count: int) -> bool:
        """Ask `raylet` to boot `count` idle workers (it answers before they are up). False,
        with a WARNING, when it cannot be asked: new actors then boot their own worker."""
        if count <= 0:
            return True
        from ray.core.generated import common_pb2, node_manager_pb2

        request = node_manager_pb2.PrestartWorkersRequest(
            language=common_pb2.PYTHON,
            num_workers=count,
            keep_alive_duration_secs=self._keep_alive_s,
        )
        try:
            await self._stub(raylet.address).PrestartWorkers(request, timeout=RPC_TIMEOUT_S)
        except Exception as e:  # grpc.aio.AioRpcError and friends: never fatal
            self._forget(raylet, e)
            return False
        return True

    def _forget(self, raylet: Raylet, error: Exception) -> None:
        self._stubs.pop(raylet.address, None)
        log.warning(
            "could not reach the raylet for warm workers; new conversations boot their own",
            extra={"node_id": raylet.node_id, "error": f"{type(error).__name__}: {error}"},
        )


class WarmPool:
    """Keeps about `target` never-used idle workers on every node that offers `resource`.

    Every `rescan_s` it counts them on each node (the raylet's own worker list) and asks for the
    difference; in between, each conversation actor that starts on a node (it took one) is
    replaced, batched over `batch_s`, so a lone new chat's first turn is not competing with its
    replacement's boot for the CPU. A node is asked for one worker at a time, `batch_s` apart:
    a boot takes a core for ~0.5 s, and two at once on a 2-core node held every other chat's
    turn for up to 0.6 s (`bench/compare.py`, loaded). A node asked recently is not recounted
    until its workers had time to boot. The raylet trims any excess past its
    `num_workers_soft_limit` once the workers' keep-alive ends."""

    def __init__(
        self,
        target: int,
        resource: str,
        *,
        keep_alive_s: int,
        rescan_s: float = 10.0,
        batch_s: float = 2.0,
        boot_s: float = 5.0,
        start_delay_s: float = 10.0,
    ):
        self._target = target
        self._resource = resource
        self._rescan_s = rescan_s
        self._batch_s = batch_s
        self._boot_s = boot_s
        self._start_delay_s = start_delay_s
        self._prestarter = WorkerPrestarter(keep_alive_s)
        self._owed: dict[str, int] = {}
        self._asked_at: dict[str, float] = {}
        self._wanted = asyncio.Event()
        self.prestarted = 0

    def used(self, node_id: str) -> None:
        """A worker on `node_id` became a conversation actor: boot its replacement."""
        self._owed[node_id] = min(self._owed.get(node_id, 0) + 1, self._target)
        self._wanted.set()

    async def run(self) -> None:
        """Forever (a task of the supervisor)."""
        loop = asyncio.get_running_loop()
        # The node is still starting (Serve, shared actors): boots would compete with it.
        await asyncio.sleep(self._start_delay_s)
        next_count = loop.time()
        while True:
            self._wanted.clear()
            count = loop.time() >= next_count
            if count:
                next_count = loop.time() + self._rescan_s
            try:
                await self._pass(count=count)
            except Exception:
                log.exception("warm worker pass failed; retrying at the next one")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), max(0.0, next_count - loop.time()))
            await asyncio.sleep(self._batch_s)  # let registrations add up (see the docstring)

    async def _pass(self, *, count: bool) -> None:
        now = asyncio.get_running_loop().time()
        for raylet in await asyncio.to_thread(raylets_offering, self._resource):
            owed = self._owed.pop(raylet.node_id, 0)
            asked_at = self._asked_at.get(raylet.node_id)
            booting = asked_at is not None and now - asked_at < self._boot_s
            if count and not booting:
                idle = await self._prestarter.idle_workers(raylet)
                if idle is not None:
                    owed = max(0, self._target - idle)
            if not owed:
                continue
            asked = await self._prestarter.prestart(raylet, 1)
            if asked:
                self.prestarted += 1
                self._asked_at[raylet.node_id] = now
                owed -= 1
            if owed:
                self._owed[raylet.node_id] = max(owed, self._owed.get(raylet.node_id, 0))
                if asked:  # the next one at the next pass, `batch_s` from now
                    self._wanted.set()
