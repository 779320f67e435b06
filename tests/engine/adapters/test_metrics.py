"""Every recording function exports its catalogue metric, with its tags, on the node's port.

Recorded from this test process (a driver of the session's Ray cluster, itself a Ray core
worker) for a cliente id no test uses, then scraped as Prometheus would. The events that real
traffic produces are proven by tests/serve_app/test_metrics_export.py; this covers the rest
(evictions, recoveries, retried sends, Stripe) and the gauges' reset to 0.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from engine.adapters import metrics
from engine.core.metrics import METRICS
from tests.serve_app.test_metrics_export import EXPORT_WAIT_S, Sample, scrape_every_node, total
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

CLIENTE = 987_654_321  # no test makes this many clientes


def record_one_of_everything() -> None:
    metrics.webhook("recorded", cliente_id=CLIENTE, detail="paused")
    metrics.webhook_rejected(422)
    metrics.actor_reaped()
    metrics.actor_evicted()
    metrics.recoveries(2)
    metrics.burst_fired(CLIENTE, size=3, waited_s=1.5)
    metrics.reply_delivered(CLIENTE, after_s=2.5)
    with metrics.retrieval_timer(CLIENTE):
        pass
    usage = SimpleNamespace(prompt_tokens=120, completion_tokens=30)  # as OpenAI's client gives
    metrics.llm_call(CLIENTE, seconds=0.8, usage=usage)
    metrics.llm_fallback(CLIENTE)
    metrics.chat_limited(CLIENTE, "llm_budget_exceeded")
    for outcome in ("sent", "retried", "failed"):
        metrics.reply_part(CLIENTE, outcome)
    metrics.sends_owed(5)
    metrics.stripe_event("invoice.paid", "processed")
    metrics.ingestion_chunks(CLIENTE, 16)


async def test_each_recording_function_exports_its_catalogue_series(conversa: Any) -> None:
    record_one_of_everything()
    c = str(CLIENTE)
    # Histogram values sit at bucket midpoints, which is what Ray 2.60 exports as their sum.
    expected: list[tuple[str, dict[str, str], float]] = [
        ("ray_conversa_webhooks_total", {"cliente_id": c, "reason": "paused"}, 1),
        ("ray_conversa_actors_evicted_total", {}, 1),
        ("ray_conversa_recoveries_total", {}, 2),
        ("ray_conversa_burst_size_sum", {"cliente_id": c}, 3),
        ("ray_conversa_debounce_wait_seconds_sum", {"cliente_id": c}, 1.5),
        ("ray_conversa_reply_latency_seconds_sum", {"cliente_id": c}, 2.5),
        ("ray_conversa_retrieval_latency_seconds_count", {"cliente_id": c}, 1),
        ("ray_conversa_llm_latency_seconds_count", {"cliente_id": c}, 1),
        ("ray_conversa_llm_tokens_total", {"cliente_id": c, "kind": "prompt"}, 120),
        ("ray_conversa_llm_tokens_total", {"cliente_id": c, "kind": "completion"}, 30),
        ("ray_conversa_llm_fallbacks_total", {"cliente_id": c}, 1),
        ("ray_conversa_chat_limits_total", {"cliente_id": c, "verdict": "llm_budget_exceeded"}, 1),
        ("ray_conversa_replies_total", {"cliente_id": c, "outcome": "retried"}, 1),
        ("ray_conversa_stripe_events_total", {"type": "invoice.paid", "outcome": "processed"}, 1),
        ("ray_conversa_ingestion_chunks_total", {"cliente_id": c}, 16),
    ]

    def exact(samples: list[Sample]) -> list[str]:
        return [
            f"{series}{labels}: {total(samples, series, **labels)} != {value}"
            for series, labels, value in expected
            if abs(total(samples, series, **labels) - value) > 1e-9
        ]

    def never_exported(samples: list[Sample]) -> list[str]:
        """Catalogue metrics no process has exported yet (the supervisor records the live
        gauges on its own interval, so they may reach the port a tick after ours)."""
        names = {s.name for s in samples}
        return [m.name for m in METRICS if not set(m.exported_series) & names]

    async def exported() -> list[Sample] | None:
        samples = scrape_every_node()
        return samples if not exact(samples) and not never_exported(samples) else None

    try:
        samples = await eventually(exported, timeout_s=EXPORT_WAIT_S, interval_s=2)
    except AssertionError:
        samples = scrape_every_node()
        raise AssertionError(
            f"not exported as recorded: {exact(samples)}; never: {never_exported(samples)}"
        ) from None
    # Cumulative buckets: the 0.8 s model call is in le=1 and not in le=0.5.
    llm = "ray_conversa_llm_latency_seconds_bucket"
    assert total(samples, llm, cliente_id=c, le="0.5") == 0
    assert total(samples, llm, cliente_id=c, le="1.0") == 1
    assert total(samples, llm, cliente_id=c, le="+Inf") == 1
    assert any(s.name == "ray_conversa_sends_owed" and s.value == 5 for s in samples)
    assert never_exported(samples) == []  # every catalogue metric, by some process


async def test_a_node_that_no_longer_has_conversations_is_set_to_zero(conversa: Any) -> None:
    metrics.live_conversations({"gone-node": 3})
    metrics.live_conversations({})

    async def zero() -> bool:
        samples = scrape_every_node()
        live = [
            s
            for s in samples
            if s.name == "ray_conversa_live_conversations" and s.labels["node"] == "gone-node"
        ]
        return bool(live) and all(s.value == 0 for s in live)

    await eventually(zero, timeout_s=EXPORT_WAIT_S, interval_s=2)
