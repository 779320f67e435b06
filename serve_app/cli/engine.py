"""Commands that run the engine itself: `run`, `migrate`, `ray-env`."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from engine.config import Settings
from serve_app.cli.app import app
from serve_app.cli.output import CliError, out


@app.command()
def run(
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Start Ray without it.")
    ] = False,
    serve_config: Annotated[
        Path | None,
        typer.Option(
            "--serve-config",
            help="A `serve deploy` file (e.g. deploy/serve_config.yaml): its args override "
            "settings, and the ingress runs with its replicas, autoscaling and admission.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, Ray, the dashboard and the Serve app (Ctrl-C stops them)."""
    from engine.logs import configure_logging
    from serve_app import runtime

    settings = Settings()
    configure_logging(settings.log_level)
    out.print(f"Starting Conversa (data under {settings.data_dir.resolve()}) …")
    with out.status("starting PostgreSQL, Ray and the Serve app …"):
        try:
            running = runtime.start(settings, dashboard=not no_dashboard, serve_config=serve_config)
        except ValueError as e:
            raise CliError(str(e)) from e
    s = running.settings
    postgres = (
        f"embedded, {(s.data_dir / 'postgres').resolve()}" if running.postgres else "DATABASE_URL"
    )
    llm = s.openai_model if s.llm_enabled else "offline responder (set OPENAI_API_KEY)"
    base = running.base_url
    rows = [
        ("Evolution webhook", f"{base}/webhooks/evolution  (header X-Conversa-Secret)"),
        ("Operator API", f"{base}/admin  (Bearer ADMIN_TOKEN)  docs: {base}/docs"),
        ("Console", f"{base}/console  (sign in with an API key, or ADMIN_TOKEN)"),
        ("Ingress mode", f"{s.ingress_mode.value}, {running.replicas}"),
        ("PostgreSQL", postgres),
        ("LLM", llm),
        ("Evolution", s.evolution_url or "not configured: replies are recorded only"),
    ]
    if running.dashboard_url:
        rows.append(("Ray dashboard", running.dashboard_url))
    rows.append(("Start-up (s)", str(running.timings_s)))
    out.print("\n[bold green]Conversa is running.[/]")
    for name, value in rows:
        out.print(f"  {name:<18}: {value}", markup=False)
    out.print("Try it: [bold]conversa chat 1[/] (after `conversa cliente create`). Ctrl-C stops.")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    out.print("Stopping …")
    running.stop()


@app.command()
def migrate() -> None:
    """Apply the migrations to DATABASE_URL (or the embedded database); check the models agree."""
    from engine.db import migrate as migrations
    from serve_app.runtime import resolve_database

    settings, postgres = resolve_database(Settings())
    try:
        migrations.upgrade(
            settings.database_url or "", secrets_key=settings.secrets_key.get_secret_value()
        )
        drift = migrations.check(settings.database_url or "")
    finally:
        if postgres is not None:
            postgres.cleanup()
    if drift:
        raise CliError(f"models and migrations disagree: {drift}. Add a migration for the change.")
    out.print("database is at the newest revision; models and migrations agree")


@app.command("ray-env")
def ray_env() -> None:
    """Print the environment (and --resources) every `ray start` needs for Conversa."""
    from serve_app.runtime import node_resources, ray_process_env

    settings = Settings()
    # Plain lines on purpose: deploy/entrypoint.sh evaluates them.
    lines = [f"export {key}={value}" for key, value in sorted(ray_process_env(settings).items())]
    lines.append(f"export CONVERSA_RAY_RESOURCES='{json.dumps(node_resources(settings))}'")
    lines.append('# then: ray start ... --resources="$CONVERSA_RAY_RESOURCES"')
    out.file.write("\n".join(lines) + "\n")
