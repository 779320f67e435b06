"""LGPD commands: export or erase one contact of a cliente; delete a cliente."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from serve_app.cli.api import OperatorApi
from serve_app.cli.app import app, cliente_app, target
from serve_app.cli.output import err, print_json

contact_app = typer.Typer(
    help="One customer's data (LGPD): export it, or erase it.", no_args_is_help=True
)
app.add_typer(contact_app, name="contact")

Contact = Annotated[
    str, typer.Argument(help="The customer's phone number or WhatsApp JID (@s.whatsapp.net, @lid).")
]


def _path(cliente_id: int, contact: str) -> str:
    return f"/admin/clientes/{cliente_id}/contacts/{quote(contact, safe='@')}"


@contact_app.command("export")
def contact_export(
    ctx: typer.Context,
    cliente_id: int,
    contact: Contact,
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the JSON ('-' = standard output).")
    ] = Path("-"),
) -> None:
    """Everything the cliente holds about one customer, under any of their JIDs, as JSON."""
    with OperatorApi(target(ctx)) as api:
        data = api.call("GET", _path(cliente_id, contact) + "/export")
    if str(out_file) == "-":
        print_json(data)
        return
    out_file.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    err.print(f"{len(data['conversations'])} conversation(s) written to {out_file}", markup=False)


@contact_app.command("erase")
def contact_erase(
    ctx: typer.Context,
    cliente_id: int,
    contact: Contact,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase one customer: conversations, messages, turns, memory, lid pairs (audited)."""
    if not yes:
        typer.confirm(f"Erase everything cliente {cliente_id} holds about {contact}?", abort=True)
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("DELETE", _path(cliente_id, contact)))


@cliente_app.command("delete")
def cliente_delete(
    ctx: typer.Context,
    cliente_id: int,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a cliente and everything it owns (conversations, knowledge, instances on
    Evolution, API keys); audited. Run it again to finish an interrupted deletion."""
    if not yes:
        typer.confirm(
            f"Delete cliente {cliente_id} and everything it owns? This cannot be undone.",
            abort=True,
        )
    with OperatorApi(target(ctx)) as api:
        print_json(
            api.call("DELETE", f"/admin/clientes/{cliente_id}", params={"confirm": cliente_id})
        )
