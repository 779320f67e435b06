"""`conversa`: run the engine, migrate, and manage clientes through the operator API.

conversa run                          # everything on one machine (embedded defaults)
conversa cliente create --nome "Loja" # then: instance add, docs upload, conversations …
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from engine.config import Settings
from engine.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


class CliError(Exception):
    """A message for the operator; printed without a traceback."""


# --- engine commands -------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from serve_app import runtime

    settings = Settings()
    configure_logging(settings.log_level)
    print(f"Starting Conversa (data under {settings.data_dir.resolve()}) …", flush=True)
    running = runtime.start(settings, dashboard=not args.no_dashboard)
    s = running.settings
    postgres = (
        f"embedded, {(s.data_dir / 'postgres').resolve()}" if running.postgres else "DATABASE_URL"
    )
    llm = s.openai_model if s.llm_enabled else "offline responder (set OPENAI_API_KEY)"
    base = running.base_url
    lines = [
        "",
        "Conversa is running.",
        f"  Evolution webhook : {base}/webhooks/evolution  (header X-Conversa-Secret)",
        f"  Operator API      : {base}/admin  (Bearer ADMIN_TOKEN)  docs: {base}/docs",
        f"  Ingress mode      : {s.ingress_mode.value}, {s.ingress_replicas} replica(s)",
        f"  PostgreSQL        : {postgres}",
        f"  LLM               : {llm}",
        f"  Evolution         : {s.evolution_url or 'not configured: replies are recorded only'}",
    ]
    if running.dashboard_url:
        lines.append(f"  Ray dashboard     : {running.dashboard_url}")
    lines.append(f"  Start-up (s)      : {running.timings_s}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    print("Stopping …", flush=True)
    running.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from engine.db import migrate
    from serve_app.runtime import resolve_database

    settings, postgres = resolve_database(Settings())
    try:
        migrate.upgrade(settings.database_url or "")
        drift = migrate.check(settings.database_url or "")
    finally:
        if postgres is not None:
            postgres.cleanup()
    if drift:
        raise CliError(f"models and migrations disagree: {drift}")
    print("database is at the newest revision; models and migrations agree")
    return 0


def cmd_ray_env(args: argparse.Namespace) -> int:
    """Environment to export before `ray start` on a cluster Conversa will attach to."""
    from serve_app.runtime import node_resources, ray_process_env

    settings = Settings()
    for key, value in sorted(ray_process_env(settings).items()):
        print(f"export {key}={value}")
    print(f"export CONVERSA_RAY_RESOURCES='{json.dumps(node_resources(settings))}'")
    print('# then: ray start ... --resources="$CONVERSA_RAY_RESOURCES"')
    return 0


# --- operator API commands -------------------------------------------------------------------


def _client(args: argparse.Namespace) -> httpx.Client:
    token = args.token or Settings().admin_token.get_secret_value()
    return httpx.Client(
        base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as e:
        raise CliError(
            f"cannot reach Conversa at {client.base_url}: {e}. Is `conversa run` up?"
        ) from e
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise CliError(f"{method} {path} → {response.status_code}: {detail}")
    return response.json()


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_cliente_create(args: argparse.Namespace) -> int:
    body = {"nome": args.nome, "status": args.status}
    for field in ("system_prompt", "debounce_s", "max_wait_s"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    with _client(args) as client:
        _print(_call(client, "POST", "/admin/clientes", json=body))
    return 0


def cmd_cliente_update(args: argparse.Namespace) -> int:
    body = {
        f: getattr(args, f)
        for f in ("nome", "status", "system_prompt", "debounce_s", "max_wait_s")
        if getattr(args, f) is not None
    }
    with _client(args) as client:
        _print(_call(client, "PATCH", f"/admin/clientes/{args.cliente_id}", json=body))
    return 0


def cmd_instance_add(args: argparse.Namespace) -> int:
    body = {
        "instance_id": args.instance_id,
        "numero": args.numero,
        "webhook_secret": args.secret,
        "api_key": args.api_key,
    }
    with _client(args) as client:
        _print(_call(client, "POST", f"/admin/clientes/{args.cliente_id}/instances", json=body))
    return 0


def cmd_docs_upload(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for path in args.files:
            file = Path(path)
            if not file.is_file():
                raise CliError(f"{file} is not a file")
            content_type = (
                "text/markdown" if file.suffix.lower() in (".md", ".markdown") else "text/plain"
            )
            document = _call(
                client,
                "POST",
                f"/admin/clientes/{args.cliente_id}/documents",
                params={"title": file.name},
                content=file.read_bytes(),
                headers={"Content-Type": content_type},
            )
            while document["status"] == "PROCESSANDO":
                _progress(file.name, document["chunks_done"], document["chunks_total"])
                time.sleep(0.5)
                document = _call(
                    client, "GET", f"/admin/clientes/{args.cliente_id}/documents/{document['id']}"
                )
            _progress(file.name, document["chunks_done"], document["chunks_total"])
            print()
            if document["status"] == "ERRO":
                raise CliError(f"{file.name}: {document['error']}")
    return 0


def _progress(name: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else 0
    print(
        f"\r{name}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks",
        end="",
        flush=True,
    )


def cmd_knowledge_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print(_call(client, "DELETE", f"/admin/clientes/{args.cliente_id}/knowledge"))
    return 0


def cmd_conversations(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print(_call(client, "GET", f"/admin/clientes/{args.cliente_id}/conversations"))
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    path = f"/admin/clientes/{args.cliente_id}/conversations/{args.conversation_id}/messages"
    with _client(args) as client:
        for m in _call(client, "GET", path):
            who = {"customer": "cliente", "bot": "bot", "human": "humano"}[m["author"]]
            extra = (
                f" ({m['ignored_reason'] or m['error']})"
                if m["ignored_reason"] or m["error"]
                else ""
            )
            print(f"{m['created_at']}  {who:>7} [{m['status']}]{extra}: {m['text']}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conversa", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("CONVERSA_URL", "http://127.0.0.1:8000"),
        help="Conversa's base URL (env CONVERSA_URL)",
    )
    parser.add_argument("--token", default=None, help="operator token (default: ADMIN_TOKEN)")
    commands = parser.add_subparsers(required=True, metavar="command")

    run = commands.add_parser("run", help="start PostgreSQL, Ray, the dashboard and the Serve app")
    run.add_argument("--no-dashboard", action="store_true")
    run.set_defaults(func=cmd_run)
    commands.add_parser(
        "migrate", help="apply migrations and check they match the models"
    ).set_defaults(func=cmd_migrate)
    commands.add_parser(
        "ray-env", help="print the env `ray start` needs for Conversa's ingress"
    ).set_defaults(func=cmd_ray_env)

    cliente = commands.add_parser("cliente", help="create or change a cliente")
    cliente_commands = cliente.add_subparsers(required=True, metavar="action")
    for name, func in (("create", cmd_cliente_create), ("update", cmd_cliente_update)):
        p = cliente_commands.add_parser(name)
        if name == "update":
            p.add_argument("cliente_id", type=int)
        p.add_argument("--nome", required=name == "create")
        p.add_argument(
            "--status",
            default="ATIVO" if name == "create" else None,
            choices=["PENDENTE", "ATIVO", "INADIMPLENTE", "SUSPENSO", "CANCELADO"],
        )
        p.add_argument("--system-prompt", dest="system_prompt")
        p.add_argument("--debounce-s", dest="debounce_s", type=float)
        p.add_argument("--max-wait-s", dest="max_wait_s", type=float)
        p.set_defaults(func=func)

    instance = commands.add_parser("instance", help="register a WhatsApp (Evolution) instance")
    add = instance.add_subparsers(required=True, metavar="action").add_parser("add")
    add.add_argument("cliente_id", type=int)
    add.add_argument("--instance-id", required=True, help="Evolution instance name")
    add.add_argument("--numero", help="the number, digits only with country code")
    add.add_argument("--secret", required=True, help="webhook secret (>= 16 chars)")
    add.add_argument("--api-key", help="the instance's Evolution API key")
    add.set_defaults(func=cmd_instance_add)

    docs = commands.add_parser("docs", help="upload knowledge documents (text/markdown)")
    upload = docs.add_subparsers(required=True, metavar="action").add_parser("upload")
    upload.add_argument("cliente_id", type=int)
    upload.add_argument("files", nargs="+")
    upload.set_defaults(func=cmd_docs_upload)

    knowledge = commands.add_parser("knowledge", help="delete a cliente's knowledge")
    delete = knowledge.add_subparsers(required=True, metavar="action").add_parser("delete")
    delete.add_argument("cliente_id", type=int)
    delete.set_defaults(func=cmd_knowledge_delete)

    conversations = commands.add_parser("conversations", help="list a cliente's conversations")
    conversations.add_argument("cliente_id", type=int)
    conversations.set_defaults(func=cmd_conversations)
    messages = commands.add_parser("messages", help="show a conversation's messages")
    messages.add_argument("cliente_id", type=int)
    messages.add_argument("conversation_id", type=int)
    messages.set_defaults(func=cmd_messages)
    return parser


if __name__ == "__main__":
    sys.exit(main())
