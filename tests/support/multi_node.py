"""Scenario (run in its own process; one Ray driver per process): knowledge in a real Chroma
server on a multi-node cluster; the node holding a cliente's retriever is lost, and every chat is
still answered with passages.

    python -m tests.support.multi_node <database_url>     # prints one JSON line of results

Cluster: a head (shared actors; no conversation slots), nodes A and B with 3 slots each, so six
chats must live on both. The cliente's retriever is placed on A. Start-up must refuse this
cluster without CHROMA_URL. A is then lost without draining; C joins (as an autoscaler would
replace it); every chat asks again and must be answered from the same knowledge, read from the
Chroma server by a new retriever. No node's disk is used for knowledge.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.http_server import free_port
from tests.support.node_loss import FAST_FAILURE_DETECTION
from tests.support.ray_actors import alive_actor_nodes

CHATS = 6
SLOTS_PER_NODE = 3
KNOWLEDGE = (
    "O produto X custa R$ 100 e é azul. A garantia do produto X é de um ano.",
    "A loja abre de segunda a sexta, das 9h às 18h, e aos sábados até o meio-dia.",
)


def start_chroma(path: str) -> tuple[subprocess.Popen[bytes], str]:
    """`chroma run` (the chromadb package's server), ready when its heartbeat answers."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", path, "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"chroma run exited with {server.returncode}")
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("chroma run did not answer its heartbeat in 60 s")


async def scenario(database_url: str, work_dir: str) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from sqlalchemy import text as sql

    from engine.actors.embedder import embedder_handle
    from engine.actors.reply_worker import start_reply_workers
    from engine.actors.retriever import TenantRetriever
    from engine.actors.router import ConversationRouter
    from engine.actors.supervisor import start_supervisor
    from engine.config import Settings
    from engine.core.naming import CONVERSATION_SLOT, get_collection_name
    from engine.db.session import create_engine, session_factory
    from engine.services.inbox import EvolutionInbox
    from engine.services.knowledge import Knowledge
    from engine.wiring import conversation_config, default_behaviour, retriever_config
    from serve_app.deployment import start_shared_actors
    from tests.support import evolution_payloads as wa
    from tests.support.fake_evolution import FakeEvolution
    from tests.support.fake_openai import FakeOpenAI
    from tests.support.scenario import make_cliente

    chroma, chroma_url = start_chroma(os.path.join(work_dir, "chroma-server"))
    evolution, llm = FakeEvolution().start(), FakeOpenAI().start()
    data_dir = Path(work_dir) / "node-data"  # what a node's disk would hold: must stay unused
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=database_url,
        chroma_url=chroma_url,
        ray_namespace="multinode",
        embedding_model="hash",
        max_live_conversations=10,  # the supervisor's cap; the nodes offer SLOTS_PER_NODE
        debounce_s=0.5,
        max_wait_s=3.0,
        recovery_interval_s=1.0,
        recovery_grace_s=2.0,
        openai_api_key=llm.api_key,
        openai_base_url=llm.base_url,
        evolution_url=evolution.url,
        evolution_api_key=evolution.api_key,
        typing_presence=False,
        typing_ms_per_char=0,
        relevance_min_score=-1.0,  # the hash embedding scores nothing: the "I don't know" gate off
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    engine = create_engine(database_url, pool_size=2)
    try:
        ray.init(address=cluster.address, namespace=settings.ray_namespace, log_to_driver=False)
        slots = {CONVERSATION_SLOT: SLOTS_PER_NODE}
        # Shared actors while the head is alone, so losing A does not take them (their restart
        # elsewhere is Ray's business, tested apart); the slots live on A and B only.
        embedder = embedder_handle(model=settings.embedding_model, namespace=settings.ray_namespace)
        ray.get(embedder.embed.remote(["ok"]))
        start_reply_workers(settings)
        start_supervisor(settings, conversation_config(settings))
        node_a = cluster.add_node(num_cpus=1, resources=slots)
        node_b = cluster.add_node(num_cpus=1, resources=slots)

        # On several nodes, start-up refuses to keep knowledge on one node's disk.
        try:
            start_shared_actors(settings.model_copy(update={"chroma_url": None}))
            refused = None
        except ValueError as e:
            refused = str(e)
        start_shared_actors(settings)  # with CHROMA_URL: accepted (get-or-create, idempotent)

        sessions = session_factory(engine)
        cliente = await make_cliente(
            sessions,
            settings,
            nome="Loja multi-nó",
            instance_prefix="multinode",
            debounce_s=0.5,
            max_wait_s=3.0,
        )

        # The cliente's retriever starts on A: the node this scenario is about to lose.
        retrievers = retriever_config(settings)
        TenantRetriever.options(  # type: ignore[attr-defined]
            name=get_collection_name(cliente.id),
            namespace=settings.ray_namespace,
            lifetime="detached",
            get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_a.node_id, soft=False),
        ).remote(cliente.id, retrievers)
        knowledge = Knowledge(
            sessions, retrievers, chunk_size=800, chunk_overlap=120, max_upload_bytes=1 << 20
        )
        for i, text in enumerate(KNOWLEDGE):
            document, _ = await knowledge.receive(
                cliente.id,
                title=f"doc-{i}",
                content_type="text/plain",
                raw=text.encode(),
                wait=True,
            )
            assert document.status == "PRONTO", document.error
        retriever_node = alive_actor_nodes("TenantRetriever")[get_collection_name(cliente.id)]

        inbox = EvolutionInbox(sessions, defaults=default_behaviour(settings))
        router = ConversationRouter(conversation_config(settings))
        chats = [wa.new_chat() for _ in range(CHATS)]

        async def ask(question: str, expected_replies: int) -> float:
            started = time.monotonic()
            for chat in chats:
                outcome = await inbox.handle(
                    secret=cliente.secret,
                    read_body=wa.body_reader(wa.text(cliente.instance, chat, question)),
                )
                assert outcome.delivery is not None, outcome
                await router.deliver(outcome.delivery)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(  # noqa: ASYNC110
                len(evolution.sent_to(c)) >= expected_replies for c in chats
            ):
                await asyncio.sleep(0.5)
            return round(time.monotonic() - started, 1)

        first_s = await ask("Quanto custa o produto X?", 1)
        placed = alive_actor_nodes("ConversationActor")
        before = {chat: placed.get(f"cliente_{cliente.id}_{chat}") for chat in chats}

        cluster.remove_node(node_a, allow_graceful=False)  # lost: no draining, no goodbye
        lost_at = time.monotonic()
        while any(n["NodeID"] == node_a.node_id and n["Alive"] for n in ray.nodes()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        while get_collection_name(cliente.id) in alive_actor_nodes("TenantRetriever"):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        detected_s = round(time.monotonic() - lost_at, 1)
        node_c = cluster.add_node(num_cpus=1, resources=slots)

        second_s = await ask("E qual é o horário da loja?", 2)
        await asyncio.sleep(2)  # would a third reply come?
        new_retriever_node = alive_actor_nodes("TenantRetriever").get(
            get_collection_name(cliente.id)
        )
        async with sessions() as session:
            rows = await session.execute(
                sql(
                    "SELECT c.chat_jid, t.user_text, t.sources FROM turns t "
                    "JOIN conversations c ON c.id = t.conversation_id "
                    "WHERE t.cliente_id = :c ORDER BY t.id"
                ),
                {"c": cliente.id},
            )
            turns = [
                {"chat": chat, "question": question, "sources": [s["text"] for s in sources or []]}
                for chat, question, sources in rows
            ]
        return {
            "refused": refused,
            "node_a": node_a.node_id,
            "node_b": node_b.node_id,
            "node_c": node_c.node_id,
            "retriever_node": retriever_node,
            "new_retriever_node": new_retriever_node,
            "before": before,
            "replies": {chat: [s.text for s in evolution.sent_to(chat)] for chat in chats},
            "turns": turns,
            "data_dir_used": data_dir.exists() and any(data_dir.iterdir()),
            "answered_first_s": first_s,
            "loss_detected_s": detected_s,
            "answered_after_loss_s": second_s,
        }
    finally:
        await engine.dispose()
        ray.shutdown()
        cluster.shutdown()
        evolution.stop()
        llm.stop()
        chroma.terminate()
        chroma.wait(timeout=30)


def main() -> None:
    os.environ.update(FAST_FAILURE_DETECTION)  # inherited by every raylet the cluster starts
    with tempfile.TemporaryDirectory(prefix="conversa-multinode-") as work_dir:
        result = asyncio.run(scenario(sys.argv[1], work_dir))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
