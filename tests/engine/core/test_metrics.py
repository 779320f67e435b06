"""The metrics catalog: names as Ray exports them, bounded tags."""

from __future__ import annotations

import re

import pytest

from engine.core.metrics import METRICS, MetricKind, MetricSpec, webhook_reason


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


def test_every_histogram_has_increasing_buckets_and_only_histograms_have_them() -> None:
    for metric in METRICS:
        if metric.kind is MetricKind.HISTOGRAM:
            assert metric.boundaries, metric.name
            assert list(metric.boundaries) == sorted(set(metric.boundaries)), metric.name
            assert metric.boundaries[0] > 0, metric.name
        else:
            assert metric.boundaries == (), metric.name


@pytest.mark.parametrize(
    ("outcome", "detail", "reason"),
    [
        ("accepted", None, ""),
        ("duplicate", "3EB0C767D2A1B2C3D4E5", ""),  # the key id: unbounded, never a tag
        ("ignored", "group", "group"),
        ("ignored", "status_broadcast", "status_broadcast"),
        ("recorded", "paused", "paused"),
        ("recorded", "cliente_suspenso", "cliente_suspenso"),
        ("recorded", "human_takeover", "human_takeover"),
        ("recorded", "instance:CONECTADA", "instance:CONECTADA"),
        ("recorded", "instance:qr_code", "instance:qr_code"),
        ("ignored", "connection:connecting", "connection_update"),
        ("ignored", "connection:anything-a-payload-says", "connection_update"),
        ("ignored", "event:contacts.upsert", "other_event"),
        ("ignored", "something new", "other"),
        ("rejected", "401", "401"),
        ("rejected", "9999", "other"),
    ],
)
def test_a_webhooks_reason_tag_takes_only_bounded_values(
    outcome: str, detail: str | None, reason: str
) -> None:
    assert webhook_reason(outcome, detail) == reason
