"""Scenario (run in its own process; one Ray driver per process): the node holding conversation
actors is lost while their bursts are pending; they must be answered, once, from another node.

    python -m tests.support.node_loss <database_url>     # prints one JSON line of results

Cluster: a head (shared actors: reply workers, embedder, supervisor; no conversation slots) and
node A with the slots. Conversations start on A; node B (slots) joins; A is removed without a
chance to drain. The supervisor's recovery re-creates the conversations on B from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time

FAST_FAILURE_DETECTION = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}
CHATS = 3


async def scenario(database_url: str) -> dict:  # type: ignore[type-arg]
    import ray
    from ray.cluster_utils import Cluster
    from sqlalchemy import text

    from engine.actors.embedder import embedder_handle
    from engine.actors.reply_worker import start_reply_workers
    from engine.actors.router import ConversationRouter
    from engine.actors.supervisor import start_supervisor
    from engine.config import Settings
    from engine.core.naming import CONVERSATION_SLOT
    from engine.db.session import create_engine, session_factory
    from engine.services.inbox import EvolutionInbox
    from engine.wiring import conversation_config, default_behaviour
    from tests.support import evolution_payloads as wa
    from tests.support.fake_evolution import FakeEvolution
    from tests.support.fake_openai import FakeOpenAI
    from tests.support.scenario import make_cliente

    evolution, llm = FakeEvolution().start(), FakeOpenAI().start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tempfile.mkdtemp(prefix="conversa-nodeloss-"),
        database_url=database_url,
        ray_namespace="nodeloss",
        embedding_model="hash",
        debounce_s=3.0,
        max_wait_s=4.0,
        recovery_interval_s=1.0,
        recovery_grace_s=1.0,
        openai_api_key=llm.api_key,
        openai_base_url=llm.base_url,
        evolution_url=evolution.url,
        evolution_api_key=evolution.api_key,
        typing_presence=False,
        typing_ms_per_char=0,
        relevance_min_score=-1.0,  # no documents here: the "I don't know" gate off
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        ray.init(address=cluster.address, namespace=settings.ray_namespace, log_to_driver=False)
        # Shared actors first, while the head is the only node: they survive losing node A.
        ray.get(
            embedder_handle(
                model=settings.embedding_model, namespace=settings.ray_namespace
            ).embed.remote(["ok"])
        )
        start_reply_workers(settings)
        start_supervisor(settings, conversation_config(settings))
        node_a = cluster.add_node(num_cpus=1, resources={CONVERSATION_SLOT: 10})

        engine = create_engine(database_url, pool_size=2)
        sessions = session_factory(engine)
        cliente = await make_cliente(
            sessions,
            settings,
            nome="Loja nó perdido",
            instance_prefix="nodeloss",
            debounce_s=3.0,
            max_wait_s=4.0,
        )
        inbox = EvolutionInbox(sessions, defaults=default_behaviour(settings))
        router = ConversationRouter(conversation_config(settings))
        chats = [wa.new_chat() for _ in range(CHATS)]
        for chat in chats:
            outcome = await inbox.handle(
                secret=cliente.secret,
                read_body=wa.body_reader(wa.text(cliente.instance, chat, f"pergunta de {chat}")),
            )
            assert outcome.delivery is not None
            await router.deliver(outcome.delivery)
        before = {}
        for chat in chats:
            actor = ray.get_actor(f"cliente_{cliente.id}_{chat}", namespace=settings.ray_namespace)
            before[chat] = (await actor.status.remote())["node_id"]

        node_b = cluster.add_node(num_cpus=1, resources={CONVERSATION_SLOT: 10})
        cluster.remove_node(node_a, allow_graceful=False)  # lost: no draining, no goodbye
        lost_at = time.monotonic()

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(evolution.sent_to(c) for c in chats):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        answered_after_s = round(time.monotonic() - lost_at, 1)
        await asyncio.sleep(3)  # would a second reply come?
        after = {}
        for chat in chats:
            try:
                actor = ray.get_actor(
                    f"cliente_{cliente.id}_{chat}", namespace=settings.ray_namespace
                )
                after[chat] = (await actor.status.remote())["node_id"]
            except (ValueError, ray.exceptions.RayActorError):
                after[chat] = None  # already reaped, or never needed again
        async with sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT c.chat_jid, m.direction, m.status, t.status AS turn, c.answer_due_at "
                    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "LEFT JOIN turns t ON t.id = m.turn_id WHERE c.cliente_id = :c ORDER BY m.id"
                ),
                {"c": cliente.id},
            )
            database = [[str(v) for v in row] for row in rows]
        supervisor = ray.get_actor("supervisor", namespace=settings.ray_namespace)
        stats = await supervisor.stats.remote()
        await engine.dispose()
        return {
            "database": database,
            "supervisor": stats,
            "node_a": node_a.node_id,
            "node_b": node_b.node_id,
            "before": before,
            "after": after,
            "replies": {chat: [s.text for s in evolution.sent_to(chat)] for chat in chats},
            "answered_after_s": answered_after_s,
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
        evolution.stop()
        llm.stop()


def main() -> None:
    os.environ.update(FAST_FAILURE_DETECTION)  # inherited by every raylet the cluster starts
    result = asyncio.run(scenario(sys.argv[1]))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
