"""Every metric Conversa exports: one list for the code that records them (through
`ray.util.metrics`), the Grafana dashboard's test and the README's metrics table.

Pure data, no Ray import, so the dashboard check runs without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

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

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "conversa_webhooks_total",
        _C,
        "Evolution webhooks received, by what became of them.",
        ("cliente_id", "outcome", "reason"),
        {"outcome": ("accepted", "duplicate", "ignored", "recorded", "rejected")},
    ),
    # Gauges below are set by one process (the supervisor), so a panel takes max, never sum.
    MetricSpec("conversa_live_conversations", _G, "Live conversation actors.", ("node",)),
    MetricSpec("conversa_live_conversations_cap", _G, "Conversation slots offered.", ("node",)),
    MetricSpec("conversa_actors_reaped_total", _C, "Conversation actors that left idle."),
    MetricSpec("conversa_actors_evicted_total", _C, "Idle actors evicted for a full node."),
    MetricSpec("conversa_recoveries_total", _C, "Bursts re-activated past their deadline."),
    MetricSpec("conversa_burst_size", _H, "Customer messages answered by one turn.", _CLIENTE),
    MetricSpec(
        "conversa_debounce_wait_seconds", _H, "First message of a burst to its turn.", _CLIENTE
    ),
    MetricSpec(
        "conversa_reply_latency_seconds", _H, "Last customer message to reply sent.", _CLIENTE
    ),
    MetricSpec("conversa_retrieval_latency_seconds", _H, "Passages for one turn.", _CLIENTE),
    MetricSpec("conversa_llm_latency_seconds", _H, "One model call.", _CLIENTE),
    MetricSpec(
        "conversa_llm_tokens_total",
        _C,
        "Model tokens used.",
        ("cliente_id", "kind"),
        {"kind": ("prompt", "completion")},
    ),
    MetricSpec("conversa_llm_fallbacks_total", _C, "Turns answered with the fallback.", _CLIENTE),
    MetricSpec(
        "conversa_replies_total",
        _C,
        "Reply parts handed to Evolution, by result.",
        ("cliente_id", "outcome"),
        {"outcome": ("sent", "retried", "failed")},
    ),
    MetricSpec("conversa_sends_owed", _G, "Reply parts recorded but not yet confirmed sent."),
    MetricSpec("conversa_stripe_events_total", _C, "Stripe webhooks.", ("type", "outcome")),
    MetricSpec("conversa_ingestion_chunks_total", _C, "Knowledge chunks stored.", _CLIENTE),
)

METRICS_BY_NAME = {metric.name: metric for metric in METRICS}
