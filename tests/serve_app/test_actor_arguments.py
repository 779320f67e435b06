"""No actor is given a secret in its constructor's arguments: they are pickled into its creation
task (every conversation actor's, once per chat). Only the actors that need secrets read them,
from the cluster's key-value store, when they start."""

from __future__ import annotations

from typing import Any

import pytest
import ray
import ray.cloudpickle as cloudpickle
from pydantic import SecretStr

from engine.actors.reply_worker import start_reply_workers
from engine.actors.retriever import retriever_handle
from engine.actors.router import ConversationRouter
from engine.actors.supervisor import start_supervisor
from engine.adapters.ray_secrets import SECRET_FIELDS
from engine.config import Settings
from engine.core.debounce import BurstMessage
from engine.core.turns import Delivery
from engine.wiring import conversation_config, default_behaviour, retriever_config
from serve_app import deployment
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def _secrets(settings: Settings) -> dict[str, str]:
    values = {}
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value:
            values[name] = value
    return values


async def test_no_actor_is_given_the_database_url_or_any_secret(
    make_tenant: MakeTenant,
    fake_evolution: FakeEvolution,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = _secrets(settings)
    assert {"database_url", "admin_token", "openai_api_key", "evolution_api_key"} <= set(secrets)
    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Oi"))
    await eventually(lambda: _sent(fake_evolution, chat))
    conversation = await tenant.conversation_for(chat)

    created: dict[str, bytes] = {}
    original = ray.actor.ActorClass._remote

    def spy(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        created[self.__ray_metadata__.class_name] = cloudpickle.dumps((args, kwargs))
        return original(self, args=args, kwargs=kwargs, **options)

    monkeypatch.setattr(ray.actor.ActorClass, "_remote", spy)
    # Every actor the way Conversa makes it (get-or-create: the live ones are returned).
    start_reply_workers(settings)
    start_supervisor(settings, conversation_config(settings))
    retriever_handle(tenant.id, retriever_config(settings))
    delivery = Delivery(
        cliente_id=tenant.id,
        conversation_id=conversation["id"],
        session_id=conversation["session_id"],
        chat_jid=chat,
        message=BurstMessage(0, ""),
        policy=default_behaviour(settings).debounce,
    )
    ConversationRouter(conversation_config(settings))._handle(delivery, fresh=True)
    bound = deployment.build(settings)._bound_deployment  # the ingress replicas' arguments
    created["Ingress"] = cloudpickle.dumps((bound.init_args, bound.init_kwargs))

    assert set(created) == {
        "ReplyWorker",
        "Supervisor",
        "TenantRetriever",
        "ConversationActor",
        "Ingress",
    }
    for actor, pickled in created.items():
        for name, value in secrets.items():
            assert value.encode() not in pickled, f"{actor} is given {name}"

    # And the actors that need them still work: a reply needs the reply worker's database,
    # model and Evolution keys.
    await tenant.post(wa.text(tenant.instance, chat, "Tudo bem?"))
    await eventually(lambda: _sent(fake_evolution, chat, 2))


async def _sent(fake_evolution: FakeEvolution, chat: str, count: int = 1) -> bool:
    return len(fake_evolution.sent_to(chat)) >= count
