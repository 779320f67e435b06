"""Commands for a glance and a demo: `conversa status`, `conversa chat CLIENTE_ID`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
import time
import uuid
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from serve_app.cli.api import OperatorApi
from serve_app.cli.app import app, target
from serve_app.cli.output import CliError, out, print_json

POLL_S = 0.4
IN_PROGRESS = ("PROCESSANDO", "ENVIANDO")  # a turn being produced or sent: the bot is typing


@app.command()
def status(ctx: typer.Context) -> None:
    """A glance at health: live actors, pending bursts, sends owed, recent failures.

    Live conversation actors per node (beside its slots) and per cliente, bursts waiting for a
    reply, reply parts not yet confirmed sent, and the last hour's failed sends and ingestions."""
    with OperatorApi(target(ctx)) as api:
        snapshot = api.call("GET", "/admin/status")
    if not out.is_terminal:
        print_json(snapshot)
        return
    nodes = Table("node", "address", "live", "slots", title="Conversation actors per node")
    for node in snapshot["nodes"]:
        state = "" if node["alive"] else " [red](dead)[/]"
        nodes.add_row(node["node_id"][:12] + state, node["address"], *_counts(node))
    out.print(nodes)
    clientes = Table("cliente", "live actors", "pending bursts", title="Per cliente")
    pending = snapshot["pending_bursts"]
    for cliente in sorted({*snapshot["live_per_cliente"], *pending}, key=int):
        live = snapshot["live_per_cliente"].get(cliente, 0)
        clientes.add_row(cliente, str(live), str(pending.get(cliente, 0)))
    out.print(clientes)
    owed = snapshot["sends_owed"]
    out.print(f"Sends owed: [{'yellow' if owed else 'green'}]{owed}[/]   " + _counters(snapshot))
    failures = snapshot["recent_failures"]
    if not failures:
        out.print("[green]No failures in the last hour.[/]")
        return
    table = Table("at", "cliente", "what", "error", title="Failures in the last hour")
    for f in failures:
        table.add_row(f["at"], str(f["cliente_id"]), f["what"], f["error"], style="red")
    out.print(table)


def _counts(node: dict[str, Any]) -> tuple[str, str]:
    full = node["slots"] and node["live"] >= node["slots"]
    live = f"[{'red' if full else 'green'}]{node['live']}[/]"
    return live, str(node["slots"])


def _counters(snapshot: dict[str, Any]) -> str:
    return "   ".join(f"{name}: {value}" for name, value in snapshot["counters"].items())


# --- chat -----------------------------------------------------------------------------------


def terminal_instance(cliente_id: int) -> str:
    """The Evolution instance name `conversa chat` registers for a cliente."""
    return f"conversa-chat-{cliente_id}"


def terminal_secret(admin_token: str, cliente_id: int) -> str:
    """The terminal instance's webhook secret: derived from the operator token, so whoever holds
    the token can chat again later without the secret being stored anywhere."""
    message = f"conversa chat {cliente_id}".encode()
    return hmac.new(admin_token.encode(), message, hashlib.sha256).hexdigest()


@app.command()
def chat(
    ctx: typer.Context,
    cliente_id: int,
    number: Annotated[
        str | None, typer.Option(help="Your number (digits); default: a new chat each time.")
    ] = None,
    name: Annotated[str, typer.Option(help="The name the business sees.")] = "Cliente Teste",
    instance: Annotated[
        str | None,
        typer.Option(help="Post as this registered instance (default: the terminal instance)."),
    ] = None,
    secret: Annotated[str | None, typer.Option(help="That instance's webhook secret.")] = None,
    wait_s: Annotated[
        float, typer.Option(help="How long to wait for the last replies after input ends.")
    ] = 60.0,
) -> None:
    """Talk to a cliente's bot from the terminal, as a WhatsApp customer.

    Each line you type is posted as an Evolution webhook; replies are printed as they are sent
    ("digitando…" while the bot types).

    Without --instance, a terminal instance (`conversa-chat-ID`) is registered for the cliente.
    Ctrl-D ends the chat (after the last replies)."""
    if (instance is None) != (secret is None):
        raise CliError("give --instance and --secret together (or neither: the terminal instance)")
    with OperatorApi(target(ctx)) as api:
        cliente = api.call("GET", f"/admin/clientes/{cliente_id}")
        if instance is None:
            instance, secret = _ensure_terminal_instance(api, cliente_id)
        assert secret is not None
        digits = number or "5599" + "".join(secrets.choice("0123456789") for _ in range(9))
        jid = digits if "@" in digits else f"{digits}@s.whatsapp.net"
        conversation = Conversation(api, cliente_id, jid, bot=cliente["nome"])
        out.print(
            f"[bold]{cliente['nome']}[/] — you are {jid} on instance {instance}. "
            "Type a message and Enter; Ctrl-D to finish.",
            highlight=False,
        )
        poller = threading.Thread(target=conversation.follow, daemon=True)
        poller.start()
        try:
            for line in sys.stdin:
                text = line.strip()
                if text:
                    _post(api, instance=instance, secret=secret, jid=jid, name=name, text=text)
                    conversation.sent += 1
            conversation.wait_until_answered(timeout_s=wait_s)
        finally:
            conversation.stop.set()
            poller.join(timeout=5)


def _ensure_terminal_instance(api: OperatorApi, cliente_id: int) -> tuple[str, str]:
    token = api.token
    name, secret = terminal_instance(cliente_id), terminal_secret(token, cliente_id)
    registered = api.call("GET", f"/admin/clientes/{cliente_id}/instances")
    if not any(i["instance_id"] == name for i in registered):
        body = {"instance_id": name, "webhook_secret": secret, "numero": None, "api_key": None}
        api.call("POST", f"/admin/clientes/{cliente_id}/instances", json=body)
    return name, secret


def _post(api: OperatorApi, *, instance: str, secret: str, jid: str, name: str, text: str) -> None:
    """One `messages.upsert` webhook, as Evolution v2 posts it."""
    body = {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {"remoteJid": jid, "fromMe": False, "id": uuid.uuid4().hex[:20].upper()},
            "pushName": name,
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
        },
    }
    try:
        response = api.http.post(
            "/webhooks/evolution", json=body, headers={"X-Conversa-Secret": secret}
        )
    except httpx.HTTPError as e:
        raise CliError(f"cannot post to {api.url}/webhooks/evolution ({type(e).__name__})") from e
    ack = response.json() if response.headers.get("content-type") == "application/json" else {}
    if response.status_code >= 400:
        raise CliError(f"the webhook was refused ({response.status_code}): {ack.get('detail')}")
    if ack.get("status") != "accepted":
        out.print(f"[dim]({ack.get('status')}: {ack.get('detail')})[/]", highlight=False)


class Conversation:
    """Follows one chat through the operator API and prints what the bot sends, as it is sent."""

    def __init__(self, api: OperatorApi, cliente_id: int, jid: str, *, bot: str):
        self._api = api
        self._cliente_id = cliente_id
        self._jid = jid
        self._bot = bot
        self._id: int | None = None
        self._printed: set[int] = set()
        self._typing_shown: set[int] = set()
        self._idle = threading.Event()
        self.sent = 0  # customer messages posted
        self.stop = threading.Event()

    def follow(self) -> None:
        while not self.stop.wait(POLL_S):
            try:
                self._poll()
            except CliError as e:  # the server went away mid-chat: say so, keep trying
                out.print(f"[red]{e}[/]", highlight=False)

    def wait_until_answered(self, *, timeout_s: float) -> None:
        """After the last line: wait for every message posted to be answered (or recorded)."""
        self._idle.clear()  # a poll before the last post may have seen an idle chat
        if self.sent and not self._idle.wait(timeout_s):
            raise CliError(f"no reply within {timeout_s:g} s; see `conversa status`")
        self._poll()  # print anything sent in the last moments

    def _poll(self) -> None:
        if self._id is None:
            found = [
                c
                for c in self._api.call("GET", f"/admin/clientes/{self._cliente_id}/conversations")
                if c["chat_jid"] == self._jid
            ]
            if not found:
                return
            self._id = found[0]["id"]
        base = f"/admin/clientes/{self._cliente_id}/conversations/{self._id}"
        turns = self._api.call("GET", f"{base}/turns")
        messages = self._api.call("GET", f"{base}/messages")
        for turn in turns:
            if turn["status"] in IN_PROGRESS and turn["id"] not in self._typing_shown:
                self._typing_shown.add(turn["id"])
                out.print(f"[dim italic]{self._bot} está digitando…[/]", highlight=False)
        for message in messages:
            if message["direction"] != "outbound" or message["id"] in self._printed:
                continue
            if message["status"] == "ENVIANDO":
                continue  # not sent yet
            self._printed.add(message["id"])
            failed = f" [red](not sent: {message['error']})[/]" if message["error"] else ""
            out.print(f"[bold green]{self._bot}:[/]{failed} ", end="", highlight=False)
            out.print(message["text"], markup=False, highlight=False)
        inbound = [m for m in messages if m["direction"] == "inbound"]
        answered = len(inbound) >= self.sent and all(m["status"] != "RECEBIDA" for m in inbound)
        busy = any(t["status"] in IN_PROGRESS for t in turns) or any(
            m["status"] == "ENVIANDO" for m in messages
        )
        if answered and not busy:
            self._idle.set()
        else:
            self._idle.clear()
