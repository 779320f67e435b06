"""Recording Conversa's metrics: one function per event, one line at each call site.

The catalogue (`engine.core.metrics`) says what exists; this module records it with
`ray.util.metrics`, which Ray exports on each node's metrics port for Prometheus (a Ray worker
only; elsewhere, e.g. the plain-uvicorn benchmark twin, recording does nothing). Metric objects
are made once per process, on first use. Recording never raises: a metric must not fail a reply.

Tags are bounded: a cliente id, an outcome, a reason from a closed set, a node id. Never a chat
or a phone number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ray
from ray.util import metrics as ray_metrics

from engine.core.metrics import METRICS_BY_NAME, MetricKind, webhook_reason
from engine.core.naming import CONVERSATION_SLOT

log = logging.getLogger(__name__)

_made: dict[str, Any] = {}
_gauge_nodes: set[str] = set()  # nodes this process has set a live-conversations gauge for


def _metric(name: str) -> Any:
    metric = _made.get(name)
    if metric is None:
        spec = METRICS_BY_NAME[name]
        if spec.kind is MetricKind.COUNTER:
            metric = ray_metrics.Counter(name, spec.description, tag_keys=spec.tags)
        elif spec.kind is MetricKind.GAUGE:
            metric = ray_metrics.Gauge(name, spec.description, tag_keys=spec.tags)
        else:
            metric = ray_metrics.Histogram(
                name, spec.description, boundaries=list(spec.boundaries), tag_keys=spec.tags
            )
        _made[name] = metric
    return metric


def _record(name: str, value: float, **tags: object) -> None:
    if not ray.is_initialized():
        return
    try:
        metric = _metric(name)
        tag_values = {key: "" if value is None else str(value) for key, value in tags.items()}
        kind = METRICS_BY_NAME[name].kind
        if kind is MetricKind.COUNTER:
            if value > 0:
                metric.inc(value, tags=tag_values)
        elif kind is MetricKind.GAUGE:
            metric.set(value, tags=tag_values)
        else:
            metric.observe(value, tags=tag_values)
    except Exception:  # a metric is never worth a failed webhook or reply
        log.warning("metric not recorded", extra={"metric": name}, exc_info=True)


# --- webhooks -----------------------------------------------------------------------------------


def webhook(outcome: str, *, cliente_id: int | None, detail: str | None = None) -> None:
    """An Evolution webhook answered 2xx: accepted, duplicate, ignored or recorded."""
    reason = webhook_reason(outcome, detail)
    _record("conversa_webhooks_total", 1, cliente_id=cliente_id, outcome=outcome, reason=reason)


def webhook_rejected(status: int) -> None:
    """An Evolution webhook refused with a 4xx (the cliente is unknown or unproven)."""
    reason = webhook_reason("rejected", str(status))
    _record("conversa_webhooks_total", 1, cliente_id=None, outcome="rejected", reason=reason)


# --- conversation actors (the supervisor's view) ---------------------------------------------


def live_conversations(per_node: Mapping[str, int]) -> None:
    """Live conversation actors on each node beside the slots it offers (the node's own
    `conversation_slot` resource, from Ray); a node gone since the last call is set to 0."""
    try:
        slots = {
            node["NodeID"]: node["Resources"].get(CONVERSATION_SLOT, 0.0)
            for node in ray.nodes()
            if node["Alive"]
        }
    except Exception:
        log.warning("live conversations not recorded: Ray's node table unreadable", exc_info=True)
        return
    nodes = {node for node, offered in slots.items() if offered > 0} | set(per_node)
    for node in _gauge_nodes - nodes:
        _record("conversa_live_conversations", 0, node=node)
        _record("conversa_live_conversations_cap", 0, node=node)
    for node in nodes:
        _record("conversa_live_conversations", per_node.get(node, 0), node=node)
        _record("conversa_live_conversations_cap", slots.get(node, 0.0), node=node)
    _gauge_nodes.clear()
    _gauge_nodes.update(nodes)


def actor_reaped() -> None:
    _record("conversa_actors_reaped_total", 1)


def actor_evicted() -> None:
    _record("conversa_actors_evicted_total", 1)


def recoveries(count: int) -> None:
    """Conversations re-activated past their deadline by one recovery pass."""
    _record("conversa_recoveries_total", count)


# --- turns ------------------------------------------------------------------------------------


def burst_fired(cliente_id: int, *, size: int, waited_s: float) -> None:
    """A burst's debounce timer fired: how many messages, how long since its first one."""
    _record("conversa_burst_size", size, cliente_id=cliente_id)
    _record("conversa_debounce_wait_seconds", waited_s, cliente_id=cliente_id)


def reply_delivered(cliente_id: int, *, after_s: float) -> None:
    """A turn's reply went out: seconds from the customer's last message of the burst."""
    _record("conversa_reply_latency_seconds", after_s, cliente_id=cliente_id)


@contextmanager
def retrieval_timer(cliente_id: int) -> Iterator[None]:
    """`with metrics.retrieval_timer(cliente_id):` around the search for a turn's passages."""
    started = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - started
        _record("conversa_retrieval_latency_seconds", seconds, cliente_id=cliente_id)


def llm_call(cliente_id: int | None, *, seconds: float, usage: Any) -> None:
    """One chat-model call that answered, and the tokens its `usage` (OpenAI's
    `prompt_tokens` / `completion_tokens`; None when the server sent none) says it used."""
    _record("conversa_llm_latency_seconds", seconds, cliente_id=cliente_id)
    for kind in ("prompt", "completion"):
        tokens = getattr(usage, f"{kind}_tokens", None) or 0
        _record("conversa_llm_tokens_total", tokens, cliente_id=cliente_id, kind=kind)


def llm_fallback(cliente_id: int | None) -> None:
    """A turn answered with LLM_FALLBACK_MESSAGE because the model failed."""
    _record("conversa_llm_fallbacks_total", 1, cliente_id=cliente_id)


def chat_limited(cliente_id: int, verdict: str) -> None:
    """A turn stopped by a chat limit (engine.core.chat_limits): its verdict."""
    _record("conversa_chat_limits_total", 1, cliente_id=cliente_id, verdict=verdict)


def reply_part(cliente_id: int, outcome: str) -> None:
    """A reply part handed to Evolution: `sent`, `retried` (to be sent again) or `failed`."""
    _record("conversa_replies_total", 1, cliente_id=cliente_id, outcome=outcome)


def sends_owed(count: int) -> None:
    """Reply parts recorded and not yet confirmed sent (owed), cluster-wide."""
    _record("conversa_sends_owed", count)


# --- billing and knowledge ----------------------------------------------------------------------


def stripe_event(event_type: str, outcome: str) -> None:
    """A Stripe webhook: its event type (Stripe's closed list) and what became of it."""
    _record("conversa_stripe_events_total", 1, type=event_type, outcome=outcome)


def ingestion_chunks(cliente_id: int, count: int) -> None:
    """Knowledge chunks embedded and stored for a cliente."""
    _record("conversa_ingestion_chunks_total", count, cliente_id=cliente_id)
