"""Prometheus and Grafana read what Ray writes; the dashboard queries only catalog metrics."""

from __future__ import annotations

import json
import re

from engine.core.metrics import METRICS, METRICS_BY_NAME, RAY_LABELS, MetricKind
from tests.deploy.files import DEPLOY, SERVICES, load_yaml, mounts


def test_prometheus_reads_rays_service_discovery_file_from_the_heads_temp_dir() -> None:
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    (ray_job,) = [job for job in config["scrape_configs"] if "file_sd_configs" in job]
    (sd_file,) = [f for sd in ray_job["file_sd_configs"] for f in sd["files"]]
    ray_temp_dir = "/tmp/ray"  # Ray's default in the image (no --temp-dir, no RAY_TMPDIR)
    assert sd_file == f"{ray_temp_dir}/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"
    # The file is a symlink into the session dir: same volume, same path on both sides.
    assert mounts("conversa")["ray-head"] == mounts("prometheus")["ray-head"] == ray_temp_dir
    assert mounts("prometheus")["./deploy/prometheus/prometheus.yml"] in str(
        SERVICES["prometheus"]["command"]
    )


def test_grafana_provisions_rays_generated_dashboards_and_conversas() -> None:
    from ray._private.ray_constants import SESSION_LATEST

    providers = {
        p["name"]: p["options"]["path"]
        for p in load_yaml(DEPLOY / "grafana/provisioning/dashboards/dashboards.yml")["providers"]
    }
    grafana = mounts("grafana")
    # Ray's metrics head writes them to <temp dir>/<session>/metrics/grafana/dashboards.
    ray_dashboards = f"{grafana['ray-head']}/{SESSION_LATEST}/metrics/grafana/dashboards"
    assert providers == {
        "Conversa": grafana["./deploy/grafana/dashboards"],
        "Ray": ray_dashboards,
    }
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


DASHBOARD = json.loads((DEPLOY / "grafana/dashboards/conversa.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
EXPORTED = {series: metric for metric in METRICS for series in metric.exported_series}


def selectors(expr: str) -> list[tuple[str, str]]:
    """(series name, label matchers) of every series a PromQL expression selects."""
    return re.findall(r"\b(ray_[a-z0-9_]+)(\{[^}]*\})?", expr)


def test_dashboard_queries_only_catalog_metrics_and_their_tags() -> None:
    problems = []
    for panel in PANELS:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            metrics = [EXPORTED.get(name) for name, _ in selectors(expr)]
            if None in metrics or not metrics:
                problems.append(expr)
                continue
            labels = set(RAY_LABELS) | {t for m in metrics if m for t in m.tags}
            if any(m and m.kind is MetricKind.HISTOGRAM for m in metrics):
                labels.add("le")
            used = re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr)
            used += [g for by in re.findall(r"by\s*\(([^)]*)\)", expr) for g in by.split(",")]
            if {label.strip() for label in used} - labels:
                problems.append(expr)
    assert problems == []


def test_every_catalog_metric_has_a_panel_and_panels_are_distinct() -> None:
    shown = {
        EXPORTED[name].name
        for p in PANELS
        for t in p["targets"]
        for name, _ in selectors(t["expr"])
    }
    assert shown == set(METRICS_BY_NAME)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"] == "conversa"
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert selectors(variables["cliente"]["definition"])[0][0] in EXPORTED
