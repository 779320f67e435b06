"""`conversa status` (a glance at health) and `conversa chat` (the terminal as a WhatsApp
customer), against the running stack."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from serve_app.cli import main, ops
from serve_app.cli.ops import terminal_instance
from tests.conftest import ADMIN_TOKEN, MAX_LIVE
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PRODUTO_X = "O produto X custa R$ 100 e é azul."


def status_json(capsys: pytest.CaptureFixture[str], url: str) -> dict[str, Any]:
    assert main(["--url", url, "--token", ADMIN_TOKEN, "status"]) == 0
    printed = capsys.readouterr().out
    assert "\x1b[" not in printed  # piped: plain JSON, no colours
    return json.loads(printed)


async def test_status_shows_live_actors_per_node_and_cliente_pending_bursts_and_failures(
    conversa: Any,
    make_tenant: MakeTenant,
    evolution_faults: FakeEvolution,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=4.0, max_wait_s=8.0)
    cliente = str(tenant.id)
    waiting, failing = wa.new_chat(), wa.new_chat()
    response = await tenant.post(wa.text(tenant.instance, waiting, "Quanto custa?"))
    assert response.json()["status"] == "accepted"

    async def pending() -> dict[str, Any] | None:
        snapshot = status_json(capsys, conversa.base_url)
        live = snapshot["live_per_cliente"].get(cliente)
        return snapshot if live == 1 and snapshot["pending_bursts"].get(cliente) == 1 else None

    snapshot = await eventually(pending, timeout_s=30, interval_s=0.5)
    nodes = snapshot["nodes"]
    assert nodes and all(n["alive"] and n["slots"] == MAX_LIVE for n in nodes)
    assert sum(n["live"] for n in nodes) >= 1
    assert isinstance(snapshot["sends_owed"], int)
    assert set(snapshot["counters"]) == {"evicted", "reaped_idle", "recovered"}

    evolution_faults.fail(status=403, calls=1)  # Evolution refuses the next send
    response = await tenant.post(wa.text(tenant.instance, failing, "E a cor?"))
    assert response.json()["status"] == "accepted"
    # (the waiting chat's reply, due first, takes the refusal: either chat may be the one)

    async def failed() -> dict[str, Any] | None:
        snapshot = status_json(capsys, conversa.base_url)
        ours = [f for f in snapshot["recent_failures"] if f["cliente_id"] == tenant.id]
        return ours[0] if ours else None

    failure = await eventually(failed, timeout_s=60, interval_s=0.5)
    assert failure["what"] == "send" and failure["chat"] in (waiting, failing)
    assert "403" in failure["error"]

    answered = await eventually(
        lambda: _no_pending(capsys, conversa.base_url, cliente), timeout_s=60, interval_s=0.5
    )
    assert answered


async def _no_pending(capsys: pytest.CaptureFixture[str], url: str, cliente: str) -> bool:
    return cliente not in status_json(capsys, url)["pending_bursts"]


def test_status_on_a_terminal_draws_tables_in_colour(
    conversa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system="standard", width=160)
    monkeypatch.setattr(ops, "out", terminal)
    assert main(["--url", conversa.base_url, "--token", ADMIN_TOKEN, "status"]) == 0
    drawn = screen.getvalue()
    assert "Conversation actors per node" in drawn and "Sends owed" in drawn
    assert "\x1b[" in drawn  # colours, because this is a terminal


def run_chat(
    url: str, cliente_id: int, lines: list[str], *extra: str
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    cli = [sys.executable, "-m", "serve_app.cli", "--url", url, "--token", ADMIN_TOKEN]
    return subprocess.run(
        [*cli, "chat", str(cliente_id), *extra],
        cwd=ROOT,
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_chat_posts_webhooks_and_prints_the_typing_then_the_grounded_reply(
    conversa: Any, make_tenant: MakeTenant, fake_llm: FakeOpenAI
) -> None:
    tenant = await make_tenant(documents=(PRODUTO_X,), debounce_s=0.3, max_wait_s=3.0)
    nome = (await tenant.api.get(f"/admin/clientes/{tenant.id}")).json()["nome"]
    number = "5599911112222"
    fake_llm.mode, fake_llm.slow_s = "slow", 1.2  # the model takes a moment: the bot types
    try:
        run = run_chat(
            conversa.base_url, tenant.id, ["Quanto custa o produto X?"], "--number", number
        )
    finally:
        fake_llm.mode = "ok"
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    typing = [i for i, line in enumerate(lines) if f"{nome} está digitando…" in line]
    replies = [i for i, line in enumerate(lines) if line.startswith(f"{nome}: ")]
    assert typing and replies and typing[0] < replies[0], lines
    reply = lines[replies[0]]
    assert "R$ 100" in reply and "Quanto custa o produto X?" in reply
    assert "\x1b[" not in run.stdout  # piped: no colours

    # What the chat posted is a real conversation, on the cliente's terminal instance.
    jid = f"{number}@s.whatsapp.net"
    [message, *_] = await tenant.messages(jid)
    assert message["text"] == "Quanto custa o produto X?" and message["status"] == "RESPONDIDA"
    instances = (await tenant.api.get(f"/admin/clientes/{tenant.id}/instances")).json()
    assert terminal_instance(tenant.id) in {i["instance_id"] for i in instances}

    # Again, same number: the same chat goes on (its memory too), the instance is reused.
    again = run_chat(conversa.base_url, tenant.id, ["E qual é a cor?"], "--number", number)
    assert again.returncode == 0, again.stderr
    assert any(
        line.startswith(f"{nome}: ") and "azul" in line for line in again.stdout.splitlines()
    )
    assert len(await tenant.turns(jid)) == 2


def test_chat_with_a_cliente_that_does_not_exist_is_one_line(conversa: Any) -> None:
    run = run_chat(conversa.base_url, 999_999, ["oi"])
    assert run.returncode == 1 and run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: GET /admin/clientes/999999 → 404: ")


def test_chat_refuses_an_instance_without_its_secret(conversa: Any) -> None:
    run = run_chat(conversa.base_url, 1, ["oi"], "--instance", "loja")
    assert run.returncode == 1
    assert "give --instance and --secret together" in run.stderr


async def test_a_chat_message_refused_by_the_webhook_says_why(
    conversa: Any, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    run = run_chat(
        conversa.base_url, tenant.id, ["oi"], "--instance", tenant.instance, "--secret", "x" * 20
    )
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: the webhook was refused (401): ")
    assert await tenant.conversations() == []  # a refused post changes nothing
