"""Operator API commands: clientes, instances, documents, knowledge, conversations, messages,
export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.core.formats import CONTENT_TYPES, EXTENSIONS
from engine.core.statuses import ClienteStatus
from serve_app.cli.api import OperatorApi
from serve_app.cli.app import app, cliente_app, docs_app, instance_app, knowledge_app, target
from serve_app.cli.output import CliError, err, out, print_json

POLL_S = 0.5

Nome = Annotated[str, typer.Option("--nome", help="The business's name.")]
Prompt = Annotated[
    str | None, typer.Option("--system-prompt", help="Persona / instructions for the model.")
]
Debounce = Annotated[
    float | None, typer.Option("--debounce-s", help="Quiet time before answering.")
]
MaxWait = Annotated[
    float | None, typer.Option("--max-wait-s", help="Longest wait from a burst's first message.")
]


@cliente_app.command("create")
def cliente_create(
    ctx: typer.Context,
    nome: Nome,
    status: Annotated[
        ClienteStatus | None,
        typer.Option(help="Omit: PENDENTE until it pays (ATIVO serves it without Stripe)."),
    ] = None,
    system_prompt: Prompt = None,
    debounce_s: Debounce = None,
    max_wait_s: MaxWait = None,
) -> None:
    """Create a cliente (a business)."""
    body = _fields(
        nome=nome,
        status=status.value if status else None,
        system_prompt=system_prompt,
        debounce_s=debounce_s,
        max_wait_s=max_wait_s,
    )
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", "/admin/clientes", json=body))


@cliente_app.command("update")
def cliente_update(
    ctx: typer.Context,
    cliente_id: int,
    nome: Annotated[str | None, typer.Option(help="The business's name.")] = None,
    status: Annotated[ClienteStatus | None, typer.Option()] = None,
    system_prompt: Prompt = None,
    debounce_s: Debounce = None,
    max_wait_s: MaxWait = None,
) -> None:
    """Change a cliente's name, status, persona or debounce (only the options given)."""
    body = _fields(
        nome=nome,
        status=status.value if status else None,
        system_prompt=system_prompt,
        debounce_s=debounce_s,
        max_wait_s=max_wait_s,
    )
    if not body:
        raise CliError("nothing to change: give at least one of --nome, --status, … (see --help)")
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("PATCH", f"/admin/clientes/{cliente_id}", json=body))


def _fields(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@instance_app.command("add")
def instance_add(
    ctx: typer.Context,
    cliente_id: int,
    instance_id: Annotated[str, typer.Option(help="The Evolution instance name.")],
    secret: Annotated[str, typer.Option(help="The webhook secret (>= 16 characters).")],
    numero: Annotated[
        str | None, typer.Option(help="The number: digits, with country code.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="The instance's Evolution key.")] = None,
) -> None:
    """Register a cliente's WhatsApp instance and its webhook secret."""
    body = {"instance_id": instance_id, "numero": numero, "webhook_secret": secret}
    body["api_key"] = api_key
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", f"/admin/clientes/{cliente_id}/instances", json=body))


@docs_app.command("upload")
def docs_upload(
    ctx: typer.Context,
    cliente_id: int,
    files: Annotated[
        list[Path],
        typer.Argument(help="PDF, DOCX, HTML, Markdown, text, or CSV/XLSX of Q&A pairs."),
    ],
) -> None:
    """Upload documents; a progress bar per document follows its embedding."""
    for file in files:
        if not file.is_file():
            raise CliError(f"{file} is not a file")
    with (
        OperatorApi(target(ctx)) as api,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("chunks"),
            TimeElapsedColumn(),
            console=out,
        ) as progress,
    ):
        for file in files:
            task = progress.add_task(file.name, total=None)
            document = api.call(
                "POST",
                f"/admin/clientes/{cliente_id}/documents",
                params={"title": file.name},
                content=file.read_bytes(),
                headers={"Content-Type": _content_type(file)},
            )
            while True:
                progress.update(
                    task, completed=document["chunks_done"], total=document["chunks_total"] or None
                )
                if document["status"] != "PROCESSANDO":
                    break
                time.sleep(POLL_S)
                document = api.call(
                    "GET", f"/admin/clientes/{cliente_id}/documents/{document['id']}"
                )
            if document["status"] == "ERRO":
                raise CliError(f"{file.name}: {document['error']}")
    if not out.is_terminal:  # no live bars when piped: one line per document instead
        for file in files:
            out.print(f"{file.name}: ready", markup=False)


def _content_type(file: Path) -> str:
    """The file's type by its extension; the server reads the extension of an octet-stream."""
    fmt = EXTENSIONS.get(file.suffix.lower())
    types = [name for name, f in CONTENT_TYPES.items() if f is fmt]
    return types[0] if types else "application/octet-stream"


@docs_app.command("delete")
def docs_delete(ctx: typer.Context, cliente_id: int, document_id: int) -> None:
    """Delete one document: its chunks and vectors go with it."""
    with OperatorApi(target(ctx)) as api:
        api.call("DELETE", f"/admin/clientes/{cliente_id}/documents/{document_id}")
    out.print(f"document {document_id} deleted", markup=False)


@knowledge_app.command("delete")
def knowledge_delete(
    ctx: typer.Context,
    cliente_id: int,
    force: Annotated[
        bool, typer.Option("--force", help="Also stop documents still being ingested.")
    ] = False,
) -> None:
    """Delete a cliente's knowledge: its Chroma collection, documents and chunks."""
    with OperatorApi(target(ctx)) as api:
        print_json(
            api.call(
                "DELETE",
                f"/admin/clientes/{cliente_id}/knowledge",
                params={"force": str(force).lower()},
            )
        )


@knowledge_app.command("stats")
def knowledge_stats(ctx: typer.Context, cliente_id: int) -> None:
    """Documents, chunks and vectors of a cliente."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("GET", f"/admin/clientes/{cliente_id}/knowledge"))


@app.command("needs-human")
def needs_human(ctx: typer.Context, cliente_id: int) -> None:
    """Chats waiting for a human (the bot did not know), oldest first."""
    with OperatorApi(target(ctx)) as api:
        waiting = api.call("GET", f"/admin/clientes/{cliente_id}/needs-human")
    if not out.is_terminal:
        print_json(waiting)
        return
    table = Table("id", "chat", "name", "waiting since")
    for c in waiting["conversations"]:
        table.add_row(
            str(c["id"]), c["chat_jid"], c.get("push_name") or "", str(c["needs_human_since"])
        )
    out.print(table)


@app.command()
def conversations(ctx: typer.Context, cliente_id: int) -> None:
    """List a cliente's conversations."""
    with OperatorApi(target(ctx)) as api:
        rows = api.call("GET", f"/admin/clientes/{cliente_id}/conversations")
    if not out.is_terminal:
        print_json(rows)
        return
    table = Table("id", "chat", "name", "last message", "paused until")
    for c in rows:
        table.add_row(
            str(c["id"]),
            c["chat_jid"],
            c.get("push_name") or "",
            str(c.get("last_message_at") or ""),
            str(c.get("paused_until") or ""),
        )
    out.print(table)


AUTHOR_LABEL = {
    "customer": ("cliente", "cyan"),
    "bot": ("bot", "green"),
    "human": ("humano", "magenta"),
}


@app.command()
def messages(ctx: typer.Context, cliente_id: int, conversation_id: int) -> None:
    """Show every message of a conversation, in and out, with its status."""
    path = f"/admin/clientes/{cliente_id}/conversations/{conversation_id}/messages"
    with OperatorApi(target(ctx)) as api:
        rows = api.call("GET", path)
    for m in rows:
        who, colour = AUTHOR_LABEL.get(m["author"], (m["author"], "white"))
        reason = m.get("ignored_reason") or m.get("error")
        extra = f" ({escape(reason)})" if reason else ""
        line = f"{m['created_at']}  [{colour}]{who:>7}[/] [dim]\\[{m['status']}]{extra}[/]: "
        out.print(line, end="")
        out.print(m["text"], markup=False)


@app.command()
def export(
    ctx: typer.Context,
    cliente_id: int,
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write (JSON lines; '-' = standard output).")
    ] = Path("-"),
) -> None:
    """Export a cliente's conversations: one JSON line per conversation, with its messages and
    turns (replies and the passages they used). A progress bar follows the conversations."""
    with OperatorApi(target(ctx)) as api:
        base = f"/admin/clientes/{cliente_id}/conversations"
        rows = api.call("GET", base)
        to_stdout = str(out_file) == "-"
        sink = out.file if to_stdout else out_file.open("w", encoding="utf-8")
        try:
            with Progress(
                TextColumn("[bold]exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("conversations"),
                TimeElapsedColumn(),
                console=err,  # the bar never mixes with the data
                disable=to_stdout and not err.is_terminal,
            ) as progress:
                task = progress.add_task("export", total=len(rows))
                for conversation in rows:
                    conversation["messages"] = api.call(
                        "GET", f"{base}/{conversation['id']}/messages"
                    )
                    conversation["turns"] = api.call("GET", f"{base}/{conversation['id']}/turns")
                    sink.write(json.dumps(conversation, ensure_ascii=False) + "\n")
                    progress.advance(task)
        finally:
            if not to_stdout:
                sink.close()
    if not to_stdout:
        err.print(f"{len(rows)} conversation(s) written to {out_file}", markup=False)
