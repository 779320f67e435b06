"""The promises the repository makes about itself: README and CI (deployment files:
tests/deploy/)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == []


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(python3\.11 -m venv[^\n]*)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def metrics_table_rows() -> list[str]:
    """The README's metrics table, as the catalogue (`engine/core/metrics.py`) defines it."""
    from engine.core.metrics import METRICS

    rows = []
    for metric in METRICS:
        tags = ", ".join(
            f"`{tag}`" + (f" ({' · '.join(metric.values[tag])})" if tag in metric.values else "")
            for tag in metric.tags
        )
        rows.append(
            f"| `{metric.name}` | {metric.kind.value} | {tags or '—'} | {metric.description} |"
        )
    return rows


def test_the_readme_lists_every_metric_as_the_catalogue_defines_it() -> None:
    documented = [line for line in README.splitlines() if line.startswith("| `conversa_")]
    assert documented == metrics_table_rows()


def test_every_operator_command_and_endpoint_is_in_the_readme() -> None:
    from serve_app.app import build_app
    from serve_app.cli import app

    commands = [
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    ]
    groups = [g.name for g in app.registered_groups]
    missing = [f"conversa {n}" for n in [*commands, *groups] if f"conversa {n}" not in README]
    readme = README.replace("[", "").replace("]", "")  # `…/documents[/{doc}]`: both paths
    for path, operations in build_app().openapi()["paths"].items():
        written = path.replace("{cliente_id}", "{id}").replace("{conversation_id}", "{conv}")
        written = written.replace("{document_id}", "{doc}").replace("{instancia_id}", "{inst}")
        written = written.replace("{key_id}", "{key}").replace("{turn_id}", "{turn}")
        for method in operations:
            if f"{method.upper()} {written}" not in readme and f" {written}`" not in readme:
                missing.append(f"{method.upper()} {path}")
    assert missing == []
