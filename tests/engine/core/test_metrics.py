"""The metrics catalog: names as Ray exports them, bounded tags."""

from __future__ import annotations

import re

import pytest

from engine.core.metrics import METRICS, MetricKind, MetricSpec


@pytest.mark.parametrize(
    ("metric", "series"),
    [
        (MetricSpec("conversa_a_total", MetricKind.COUNTER, ""), ("ray_conversa_a_total",)),
        (MetricSpec("conversa_b", MetricKind.COUNTER, ""), ("ray_conversa_b_total",)),
        (MetricSpec("conversa_c", MetricKind.GAUGE, ""), ("ray_conversa_c",)),
        (
            MetricSpec("conversa_d_seconds", MetricKind.HISTOGRAM, ""),
            (
                "ray_conversa_d_seconds_bucket",
                "ray_conversa_d_seconds_sum",
                "ray_conversa_d_seconds_count",
            ),
        ),
    ],
)
def test_exported_series_names_follow_rays_prometheus_naming(
    metric: MetricSpec, series: tuple[str, ...]
) -> None:
    from ray._private.telemetry.open_telemetry_metric_recorder import NAMESPACE

    assert metric.exported_series == series
    assert series[0].startswith(f"{NAMESPACE}_")


def test_catalog_names_are_conversa_metrics_with_declared_tag_values() -> None:
    for metric in METRICS:
        assert re.fullmatch(r"conversa_[a-z0-9_]+", metric.name), metric.name
        assert set(metric.values) <= set(metric.tags), metric.name
        assert not {"chat", "phone", "chat_jid"} & set(metric.tags)  # unbounded: never a tag
