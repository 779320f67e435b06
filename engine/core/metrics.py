"""Every metric Conversa exports: one list for the code that records them (through
`ray.util.metrics`), the Grafana dashboard's test and the README's metrics table.

Pure data, no Ray import, so the dashboard check runs without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from engine.core.reasons import IgnoreReason
from engine.core.statuses import InstanciaStatus

# Ray 2.60 exports an application metric `x` as `ray_x` (the OpenTelemetry recorder's namespace,
# `ray._private.telemetry.open_telemetry_metric_recorder.NAMESPACE`). Seen by scraping a node's
# metrics port: Counter("conversa_a_total") -> ray_conversa_a_total, Counter("conversa_b") ->
# ray_conversa_b_total, Gauge("conversa_c") -> ray_conversa_c, Histogram("conversa_d_seconds") ->
# ray_conversa_d_seconds_bucket / _sum / _count.
RAY_EXPORT_PREFIX = "ray_"

# Labels Ray adds to every application series (besides the metric's own tags).
RAY_LABELS = ("Component", "NodeAddress", "SessionName", "Version", "WorkerId")


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    description: str
    tags: tuple[str, ...] = ()
    # The bounded values a tag takes (a tag not listed here is bounded otherwise: cliente ids).
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A histogram's bucket upper bounds, in the metric's unit.
    boundaries: tuple[float, ...] = ()

    @property
    def exported_series(self) -> tuple[str, ...]:
        """The series names Prometheus stores for this metric."""
        base = RAY_EXPORT_PREFIX + self.name
        if self.kind is MetricKind.COUNTER:
            return (base if base.endswith("_total") else f"{base}_total",)
        if self.kind is MetricKind.GAUGE:
            return (base,)
        return (f"{base}_bucket", f"{base}_sum", f"{base}_count")


_C, _G, _H = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.HISTOGRAM
_CLIENTE = ("cliente_id",)
# Buckets: a debounce window is seconds, a reply adds the model and the typing delays, a model
# call is up to LLM_TIMEOUT_S, a retrieval is milliseconds to a second (a cold retriever).
# Ray 2.60 exports a histogram's `_sum` as if every observation sat at its bucket's midpoint
# (open_telemetry_metric_recorder), so sum/count is an approximation; burst sizes are counted
# in buckets centred on whole numbers, which keeps their sum exact up to 10 messages.
_WAIT_S = (0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 30, 60)
_REPLY_S = (0.5, 1, 2, 3, 5, 8, 12, 20, 30, 60, 120)
_LLM_S = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_RETRIEVAL_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_BURST = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 15.5, 20.5)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "conversa_webhooks_total",
        _C,
        "Evolution webhooks, by outcome; `reason`: why ignored or recorded, or the 4xx status.",
        ("cliente_id", "outcome", "reason"),
        {"outcome": ("accepted", "duplicate", "ignored", "recorded", "rejected")},
    ),
    # Gauges below are set by one process (the supervisor), so a panel takes max, never sum.
    MetricSpec(
        "conversa_live_conversations", _G, "Live conversation actors on the node.", ("node",)
    ),
    MetricSpec(
        "conversa_live_conversations_cap",
        _G,
        "Conversation slots the node offers (MAX_LIVE_CONVERSATIONS).",
        ("node",),
    ),
    MetricSpec(
        "conversa_actors_reaped_total",
        _C,
        "Conversation actors that left after IDLE_TTL_S without work.",
    ),
    MetricSpec(
        "conversa_actors_evicted_total",
        _C,
        "Idle conversation actors evicted (LRU) to make room on a full node.",
    ),
    MetricSpec(
        "conversa_recoveries_total",
        _C,
        "Conversations re-activated by recovery, past their answer deadline.",
    ),
    MetricSpec(
        "conversa_burst_size",
        _H,
        "Customer messages in a burst answered by one turn.",
        _CLIENTE,
        boundaries=_BURST,
    ),
    MetricSpec(
        "conversa_debounce_wait_seconds",
        _H,
        "Seconds from a burst's first message to the debounce timer firing.",
        _CLIENTE,
        boundaries=_WAIT_S,
    ),
    MetricSpec(
        "conversa_reply_latency_seconds",
        _H,
        "Seconds from a burst's last message to its reply sent (or recorded).",
        _CLIENTE,
        boundaries=_REPLY_S,
    ),
    MetricSpec(
        "conversa_retrieval_latency_seconds",
        _H,
        "Seconds to fetch a turn's passages from the cliente's retriever.",
        _CLIENTE,
        boundaries=_RETRIEVAL_S,
    ),
    MetricSpec(
        "conversa_llm_latency_seconds",
        _H,
        "Seconds of one chat-model call that answered.",
        _CLIENTE,
        boundaries=_LLM_S,
    ),
    MetricSpec(
        "conversa_llm_tokens_total",
        _C,
        "Chat-model tokens used, prompt and completion.",
        ("cliente_id", "kind"),
        {"kind": ("prompt", "completion")},
    ),
    MetricSpec(
        "conversa_llm_fallbacks_total",
        _C,
        "Turns answered with LLM_FALLBACK_MESSAGE because the model failed.",
        _CLIENTE,
    ),
    MetricSpec(
        "conversa_chat_limits_total",
        _C,
        "Turns stopped by a chat limit: a loop (bot on the other side), a flood, or the "
        "cliente's daily LLM token budget (the operator's alert).",
        ("cliente_id", "verdict"),
        {"verdict": ("loop_suspected", "too_many_messages", "llm_budget_exceeded")},
    ),
    MetricSpec(
        "conversa_replies_total",
        _C,
        "Reply parts handed to Evolution: sent, retried (to send again) or failed.",
        ("cliente_id", "outcome"),
        {"outcome": ("sent", "retried", "failed")},
    ),
    MetricSpec(
        "conversa_sends_owed", _G, "Reply parts recorded and not yet confirmed sent, cluster-wide."
    ),
    MetricSpec(
        "conversa_stripe_events_total",
        _C,
        "Stripe webhook events, by event type and what became of them.",
        ("type", "outcome"),
    ),
    MetricSpec(
        "conversa_ingestion_chunks_total",
        _C,
        "Knowledge chunks embedded and stored in the cliente's collection.",
        _CLIENTE,
    ),
)

METRICS_BY_NAME = {metric.name: metric for metric in METRICS}


# The `reason` of a webhook outcome, bounded: ignore reasons and what an instance event did are
# closed sets; anything read from the payload (a key id, an unknown event name or state) is not.
_BOUNDED_DETAILS = frozenset(
    {r.value for r in IgnoreReason}
    | {f"instance:{s.value}" for s in InstanciaStatus}
    | {"instance:qr_code", "human_takeover", "own_message_echo"}
)


def webhook_reason(outcome: str, detail: str | None) -> str:
    """The bounded `reason` tag of a webhook: why it was ignored or recorded, the HTTP status it
    was rejected with; "" when there is nothing to say (accepted, duplicate)."""
    if outcome in ("accepted", "duplicate") or not detail:
        return ""
    if outcome == "rejected":
        return detail if detail.isdigit() and len(detail) == 3 else "other"
    if detail in _BOUNDED_DETAILS:
        return detail
    if detail.startswith("connection:"):
        return "connection_update"
    if detail.startswith("event:"):
        return "other_event"
    return "other"
