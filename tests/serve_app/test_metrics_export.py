"""Conversa's metrics reach the place Prometheus scrapes: every Ray node's metrics export port.

Real traffic goes through the session's stack (webhooks of every outcome, grounded replies, a
model failure, an idle actor reaped); then each node's `MetricsExportPort` is scraped over HTTP
and the catalogue's series must be there with their tags, and never with a chat or a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.core.metrics import METRICS_BY_NAME, RAY_EXPORT_PREFIX
from tests.conftest import MAX_LIVE
from tests.support import evolution_payloads as wa
from tests.support.fake_openai import FakeOpenAI
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PRODUTO_X = "O produto X custa R$ 100 e é azul."
EXPORT_WAIT_S = 90  # Ray's metrics agent exports every ~10 s; slower under shared load


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape_every_node() -> list[Sample]:
    """What Prometheus would read: each alive node's metrics export port, as `ray.nodes()`
    (and Ray's service-discovery file) announce it."""
    import ray

    samples = []
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        text = httpx.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            samples.extend(
                Sample(s.name, dict(s.labels), s.value)
                for s in family.samples
                if s.name.startswith(RAY_EXPORT_PREFIX + "conversa_")
                and not s.name.endswith("_created")
            )
    return samples


def total(samples: list[Sample], series: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == series and all(s.labels.get(k, "") == v for k, v in labels.items())
    )


async def _answered(tenant: TenantHandle, chat: str) -> bool:
    turns = await tenant.turns(chat)
    return bool(turns) and all(t["status"] == "RESPONDIDA" for t in turns)


async def test_real_traffic_shows_up_on_every_nodes_metrics_port_with_bounded_tags(
    make_tenant: MakeTenant, fake_llm: FakeOpenAI
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,))
    cliente = str(tenant.id)
    chat = wa.new_chat()
    question = wa.text(tenant.instance, chat, "Quanto custa o produto X?")
    assert (await tenant.post(question)).json()["status"] == "accepted"
    assert (await tenant.post(question)).json()["status"] == "duplicate"
    group = wa.text(tenant.instance, "120363025246125486@g.us", "oi grupo")
    assert (await tenant.post(group)).json()["detail"] == "group"
    assert (
        await tenant.post(wa.text(tenant.instance, chat, "x"), secret="wrong")
    ).status_code == 401
    await eventually(lambda: _answered(tenant, chat), timeout_s=60)

    fallback_chat = wa.new_chat()
    fake_llm.mode = "error"
    try:
        await tenant.post(wa.text(tenant.instance, fallback_chat, "Vocês abrem domingo?"))
        await eventually(lambda: _answered(tenant, fallback_chat), timeout_s=60)
    finally:
        fake_llm.mode = "ok"
    [turn] = await tenant.turns(fallback_chat)
    assert turn["reply_kind"] == "fallback"

    expected = {  # series -> (labels, at least)
        "ray_conversa_webhooks_total": [
            ({"cliente_id": cliente, "outcome": "accepted"}, 2),
            ({"cliente_id": cliente, "outcome": "duplicate", "reason": ""}, 1),
            ({"cliente_id": cliente, "outcome": "ignored", "reason": "group"}, 1),
            ({"outcome": "rejected", "reason": "401"}, 1),
        ],
        "ray_conversa_ingestion_chunks_total": [({"cliente_id": cliente}, 1)],
        "ray_conversa_burst_size_count": [({"cliente_id": cliente}, 2)],
        "ray_conversa_debounce_wait_seconds_count": [({"cliente_id": cliente}, 2)],
        "ray_conversa_retrieval_latency_seconds_count": [({"cliente_id": cliente}, 2)],
        "ray_conversa_llm_latency_seconds_count": [({"cliente_id": cliente}, 1)],
        "ray_conversa_llm_tokens_total": [
            ({"cliente_id": cliente, "kind": "prompt"}, 1),
            ({"cliente_id": cliente, "kind": "completion"}, 1),
        ],
        "ray_conversa_llm_fallbacks_total": [({"cliente_id": cliente}, 1)],
        "ray_conversa_replies_total": [({"cliente_id": cliente, "outcome": "sent"}, 2)],
        "ray_conversa_reply_latency_seconds_count": [({"cliente_id": cliente}, 2)],
        # Both chats' actors leave after IDLE_TTL_S (3 s in tests).
        "ray_conversa_actors_reaped_total": [({}, 2)],
    }

    def missing(samples: list[Sample]) -> list[str]:
        return [
            f"{series}{labels} < {least}"
            for series, wanted in expected.items()
            for labels, least in wanted
            if total(samples, series, **labels) < least
        ]

    async def exported() -> list[Sample] | None:
        samples = scrape_every_node()
        return samples if not missing(samples) else None

    try:
        samples = await eventually(exported, timeout_s=EXPORT_WAIT_S, interval_s=2)
    except AssertionError:
        raise AssertionError(f"not exported: {missing(scrape_every_node())}") from None

    # The supervisor's gauges: live conversations beside each node's slots; sends owed.
    import ray

    nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    caps = [
        s
        for s in samples
        if s.name == "ray_conversa_live_conversations_cap" and s.labels["node"] in nodes
    ]
    assert caps and {s.value for s in caps} == {MAX_LIVE}
    assert {s.labels["node"] for s in caps} <= {
        s.labels["node"] for s in samples if s.name == "ray_conversa_live_conversations"
    }
    assert any(s.name == "ray_conversa_sends_owed" for s in samples)

    # Every series carries Ray's labels and only its catalogue's tags; no chat, no number.
    digits = {chat.split("@")[0], fallback_chat.split("@")[0], "120363025246125486"}
    for sample in samples:
        metric = _catalogue_metric(sample.name)
        own = set(sample.labels) - {"le"} - _ray_labels(sample.labels)
        assert own <= set(metric.tags), sample
        assert "NodeAddress" in sample.labels and "SessionName" in sample.labels
        assert not any(d in value for d in digits for value in sample.labels.values()), sample


def _catalogue_metric(series: str) -> Any:
    for metric in METRICS_BY_NAME.values():
        if series in metric.exported_series:
            return metric
    raise AssertionError(f"{series} is exported but not in engine/core/metrics.py")


def _ray_labels(labels: dict[str, str]) -> set[str]:
    from engine.core.metrics import RAY_LABELS

    return set(RAY_LABELS) | {k for k in labels if k.startswith("otel_scope_")}
