"""Commands for a business's account, through the operator API: its API keys, its Stripe
subscription, and WhatsApp instances Conversa provisions on Evolution (QR code in the terminal)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import segno
import typer

from serve_app.cli.api import OperatorApi
from serve_app.cli.app import apikey_app, billing_app, instance_app, target
from serve_app.cli.output import out, print_json

ClienteId = Annotated[int, typer.Argument(help="The cliente's id.")]
InstanciaId = Annotated[int, typer.Argument(help="The instance's id (from `instance connect`).")]


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    cliente_id: ClienteId,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
) -> None:
    """Make a tenant API key; it is printed this once (only its hash is kept)."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", f"/admin/clientes/{cliente_id}/api-keys", json={"name": name}))


@apikey_app.command("list")
def apikey_list(ctx: typer.Context, cliente_id: ClienteId) -> None:
    """The cliente's keys: prefix, name, last use, revocation."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("GET", f"/admin/clientes/{cliente_id}/api-keys"))


@apikey_app.command("revoke")
def apikey_revoke(ctx: typer.Context, cliente_id: ClienteId, key_id: int) -> None:
    """Revoke a key: it is refused from now on."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("DELETE", f"/admin/clientes/{cliente_id}/api-keys/{key_id}"))


@billing_app.command("status")
def billing_status(ctx: typer.Context, cliente_id: ClienteId) -> None:
    """Status, whether it is served, the subscription and any grace period."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("GET", f"/admin/clientes/{cliente_id}/billing"))


@billing_app.command("checkout")
def billing_checkout(ctx: typer.Context, cliente_id: ClienteId) -> None:
    """A Stripe Checkout link to send to the business (subscribes it to STRIPE_PRICE_ID)."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", f"/admin/clientes/{cliente_id}/billing/checkout"))


@billing_app.command("portal")
def billing_portal(ctx: typer.Context, cliente_id: ClienteId) -> None:
    """A Stripe Customer Portal link (card, invoices, cancellation)."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", f"/admin/clientes/{cliente_id}/billing/portal"))


@instance_app.command("connect")
def instance_connect(
    ctx: typer.Context,
    cliente_id: ClienteId,
    name: Annotated[str | None, typer.Option(help="Instance name (default: generated).")] = None,
    number: Annotated[
        str | None, typer.Option(help="The phone's number, digits with DDI: adds a pairing code.")
    ] = None,
) -> None:
    """Create the cliente's instance on Evolution (webhook and secret set by Conversa) and show
    the QR code to scan."""
    body = {k: v for k, v in {"name": name, "number": number}.items() if v is not None}
    with OperatorApi(target(ctx)) as api:
        made = api.call("POST", f"/admin/clientes/{cliente_id}/instances/connect", json=body)
    print_json(made)
    if made.get("qr_code"):
        _show_qr(made["qr_code"], made.get("pairing_code"))


@instance_app.command("qr")
def instance_qr(
    ctx: typer.Context,
    cliente_id: ClienteId,
    instancia_id: InstanciaId,
    png: Annotated[Path | None, typer.Option(help="Write the QR code to this PNG file.")] = None,
) -> None:
    """Show the instance's current QR code in the terminal (or save it as a PNG)."""
    base = f"/admin/clientes/{cliente_id}/instances/{instancia_id}"
    with OperatorApi(target(ctx)) as api:
        if png is not None:
            response = api.http.get(f"{base}/qr.png")
            if response.status_code != 200:
                api.call("GET", f"{base}/qr")  # raises the refusal, as one line
            png.write_bytes(response.content)
            out.print(f"QR code written to {png}", markup=False)
            return
        qr = api.call("GET", f"{base}/qr")
    _show_qr(qr["code"], qr.get("pairing_code"))


@instance_app.command("state")
def instance_state(ctx: typer.Context, cliente_id: ClienteId, instancia_id: InstanciaId) -> None:
    """The connection state, asked of Evolution now."""
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("GET", f"/admin/clientes/{cliente_id}/instances/{instancia_id}/state"))


@instance_app.command("rotate-secret")
def instance_rotate_secret(
    ctx: typer.Context, cliente_id: ClienteId, instancia_id: InstanciaId
) -> None:
    """A new webhook secret, on Evolution and in Conversa together."""
    path = f"/admin/clientes/{cliente_id}/instances/{instancia_id}/rotate-secret"
    with OperatorApi(target(ctx)) as api:
        print_json(api.call("POST", path))


@instance_app.command("delete")
def instance_delete(ctx: typer.Context, cliente_id: ClienteId, instancia_id: InstanciaId) -> None:
    """Delete the instance on Evolution and in Conversa (its conversations stay)."""
    with OperatorApi(target(ctx)) as api:
        api.call("DELETE", f"/admin/clientes/{cliente_id}/instances/{instancia_id}")
    out.print(f"instance {instancia_id} deleted", markup=False)


def _show_qr(code: str, pairing_code: str | None) -> None:
    """The QR code as text blocks a phone can scan from the screen, and the pairing code."""
    qr = segno.make(code, error="l", micro=False)
    out.file.write(
        "Scan with WhatsApp → Linked devices → Link a device:\n"
        if out.is_terminal
        else "QR code:\n"
    )
    drawn = io.StringIO()
    qr.terminal(out=drawn, compact=True)
    out.file.write(drawn.getvalue())
    if pairing_code:
        out.print(f"or type the pairing code on the phone: {pairing_code}", markup=False)
