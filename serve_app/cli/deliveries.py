"""Replies not delivered yet: list the owed and dead-lettered ones, re-send a dead-lettered one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from serve_app.cli.api import OperatorApi
from serve_app.cli.app import app, target
from serve_app.cli.output import out, print_json


class State(StrEnum):
    OWED = "owed"
    DEAD = "dead"
    ALL = "all"


@app.command()
def deliveries(
    ctx: typer.Context,
    cliente_id: int,
    state: Annotated[
        State, typer.Option(help="owed (being retried), dead (FALHOU: re-sendable) or all.")
    ] = State.ALL,
) -> None:
    """List a cliente's reply parts not delivered yet: owed or dead-lettered."""
    with OperatorApi(target(ctx)) as api:
        rows = api.call(
            "GET", f"/admin/clientes/{cliente_id}/deliveries", params={"state": state.value}
        )
    if not out.is_terminal:
        print_json(rows)
        return
    table = Table("turn", "chat", "status", "attempts", "next attempt", "error", "text")
    for d in rows:
        table.add_row(
            str(d["turn_id"]),
            d["chat_jid"],
            d["status"],
            str(d["attempts"]),
            str(d.get("next_attempt_at") or ""),
            escape(d.get("error") or ""),
            escape(d["text"][:60]),
        )
    out.print(table)
    if any(d["status"] == "FALHOU" for d in rows):
        out.print("Re-send a dead-lettered reply with: conversa resend CLIENTE_ID TURN_ID")


@app.command()
def resend(ctx: typer.Context, cliente_id: int, turn_id: int) -> None:
    """Deliver a dead-lettered (FALHOU) reply again, after fixing what made it fail."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", f"/admin/clientes/{cliente_id}/turns/{turn_id}/resend"))
