"""The `conversa` operator commands against the running stack: what they print and change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_app.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.support import evolution_payloads as wa

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, url: str) -> tuple[int, str, str]:
    status = main(["--url", url, "--token", ADMIN_TOKEN, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_cliente_is_created_given_an_instance_and_documents_then_shows_its_conversation(
    conversa: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = conversa.base_url
    status, out, _ = run_cli(
        capsys, "cliente", "create", "--nome", "Loja CLI", "--debounce-s", "0.3", url=url
    )
    assert status == 0
    cliente = json.loads(out)  # piped: plain JSON a script can read
    assert cliente["nome"] == "Loja CLI" and cliente["debounce_s"] == 0.3
    cid = str(cliente["id"])

    status, out, _ = run_cli(capsys, "cliente", "update", cid, "--status", "SUSPENSO", url=url)
    assert status == 0 and json.loads(out)["status"] == "SUSPENSO"
    status, out, _ = run_cli(capsys, "cliente", "update", cid, "--status", "ATIVO", url=url)
    assert status == 0 and json.loads(out)["status"] == "ATIVO"

    instance, secret = f"cli-{cid}", "segredo-da-loja-cli-0123456789"
    status, out, _ = run_cli(
        capsys, "instance", "add", cid, "--instance-id", instance, "--secret", secret, url=url
    )
    assert status == 0 and json.loads(out)["instance_id"] == instance

    produtos = tmp_path / "produtos.md"
    produtos.write_text("O produto X custa R$ 100 e é azul.\n\n" + "Mais detalhes. " * 120)
    horario = tmp_path / "horario.txt"
    horario.write_text("Abrimos de segunda a sexta, das 9h às 18h.")
    status, out, _ = run_cli(capsys, "docs", "upload", cid, str(produtos), str(horario), url=url)
    assert status == 0, out
    assert "produtos.md: ready" in out and "horario.txt: ready" in out
    documents = httpx.get(
        f"{url}/admin/clientes/{cid}/documents",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()
    assert {d["title"]: d["status"] for d in documents} == {
        "produtos.md": "PRONTO",
        "horario.txt": "PRONTO",
    }

    chat = wa.new_chat()
    ack = httpx.post(
        f"{url}/webhooks/evolution",
        json=wa.text(instance, chat, "Quanto custa o produto X?"),
        headers={"X-Conversa-Secret": secret},
    )
    assert ack.json()["status"] == "accepted"
    status, out, _ = run_cli(capsys, "conversations", cid, url=url)
    (conversation,) = json.loads(out)
    assert conversation["chat_jid"] == chat

    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lines and "RESPONDIDA" in lines[0]):
        time.sleep(0.3)
        status, out, _ = run_cli(capsys, "messages", cid, str(conversation["id"]), url=url)
        lines = out.splitlines()
    assert "cliente [RESPONDIDA]: Quanto custa o produto X?" in lines[0]
    assert any(" bot " in line and "R$ 100" in line for line in lines[1:]), lines

    status, out, _ = run_cli(capsys, "knowledge", "delete", cid, url=url)
    assert status == 0 and json.loads(out) == {
        "collection": f"tenant_{cid}",
        "documents_deleted": 2,
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("cliente", "update", "999999", "--nome", "x"), "→ 404: cliente 999999"),
        (
            ("cliente", "create", "--nome", "x", "--debounce-s", "5", "--max-wait-s", "1"),
            "→ 422: max_wait_s must be >= debounce_s",
        ),
        (("instance", "add", "1", "--instance-id", "x", "--secret", "short"), "webhook_secret"),
        (("docs", "upload", "1", "/no/such/file.md"), "/no/such/file.md is not a file"),
        (("cliente", "update", "1"), "nothing to change"),
    ],
)
def test_a_refused_command_says_why_in_one_line(
    conversa: Any, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    status, out, err = run_cli(capsys, *args, url=conversa.base_url)
    assert status == 1 and out == ""
    assert err.startswith("error: ") and expected in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_wrong_token_or_a_server_that_is_not_there_is_one_line_saying_what_to_do(
    conversa: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--url", conversa.base_url, "--token", "wrong", "conversations", "1"])
    err = capsys.readouterr().err
    assert status == 1 and "token was refused" in err and "--token" in err

    from tests.support.http_server import free_port

    # The real entry point, as a shell runs it: exit status 1, one line, no traceback.
    nowhere = f"http://127.0.0.1:{free_port()}"
    run = subprocess.run(
        [sys.executable, "-m", "serve_app.cli", "conversations", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CONVERSA_URL": nowhere},
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"error: cannot reach Conversa at {nowhere} (ConnectError). Is `conversa run` up? "
        "Point elsewhere with --url or CONVERSA_URL."
    ]


def test_usage_errors_name_the_missing_option() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "serve_app.cli", "cliente", "create"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Missing option '--nome'" in run.stderr
    assert "Traceback" not in run.stderr


def test_ray_env_prints_plain_export_lines_for_the_entrypoint_to_evaluate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ray-env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith(("export ", "# ")) for line in lines)
    assert "\x1b" not in "".join(lines)  # no colour codes, even from rich
    resources = 'export CONVERSA_RAY_RESOURCES=\'{"conversation_slot"'
    assert any(line.startswith(resources) for line in lines)


def test_documents_of_any_format_are_uploaded_counted_and_deleted_from_the_cli(
    conversa: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.support.documents import make_docx, make_pdf

    url = conversa.base_url
    status, out, _ = run_cli(capsys, "cliente", "create", "--nome", "Loja Docs", url=url)
    cid = str(json.loads(out)["id"])
    guia = tmp_path / "guia.docx"
    guia.write_bytes(make_docx([("Trocas", ["Trocas em até 30 dias."])]))
    tabela = tmp_path / "tabela.pdf"
    tabela.write_bytes(make_pdf(["Frete grátis acima de R$ 199,00."]))
    status, out, _ = run_cli(capsys, "docs", "upload", cid, str(guia), str(tabela), url=url)
    assert status == 0, out
    assert "guia.docx: ready" in out and "tabela.pdf: ready" in out

    status, out, _ = run_cli(capsys, "knowledge", "stats", cid, url=url)
    stats = json.loads(out)
    assert stats["documents"] == 2 and stats["vectors"] == stats["chunks"] == 2

    documents = httpx.get(
        f"{url}/admin/clientes/{cid}/documents",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()
    pdf = next(d for d in documents if d["title"] == "tabela.pdf")
    status, out, _ = run_cli(capsys, "docs", "delete", cid, str(pdf["id"]), url=url)
    assert status == 0 and f"document {pdf['id']} deleted" in out
    status, out, _ = run_cli(capsys, "knowledge", "stats", cid, url=url)
    assert json.loads(out)["documents"] == 1

    status, out, _ = run_cli(capsys, "needs-human", cid, url=url)
    assert status == 0 and json.loads(out) == {"count": 0, "conversations": []}
    status, out, _ = run_cli(capsys, "knowledge", "delete", cid, "--force", url=url)
    assert status == 0 and json.loads(out)["documents_deleted"] == 1


async def test_export_writes_each_conversation_with_its_messages_and_turns(
    conversa: Any, make_tenant: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.support.waiting import eventually

    tenant = await make_tenant(documents=("O produto X custa R$ 100 e é azul.",))
    chats = [wa.new_chat(), wa.new_chat()]
    for chat in chats:
        assert (await tenant.post(wa.text(tenant.instance, chat, "Quanto custa?"))).is_success

    async def answered() -> bool:
        turns = [await tenant.turns(chat) for chat in chats]
        return all(len(t) == 1 and t[0]["status"] == "RESPONDIDA" for t in turns)

    await eventually(answered, timeout_s=60)
    exported = tmp_path / "conversas.jsonl"
    status, out, err = run_cli(
        capsys, "export", str(tenant.id), "--out", str(exported), url=conversa.base_url
    )
    assert status == 0 and out == ""
    assert "2 conversation(s) written to" in err
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert sorted(c["chat_jid"] for c in lines) == sorted(chats)
    for conversation in lines:
        texts = [m["text"] for m in conversation["messages"]]
        assert texts[0] == "Quanto custa?" and any("R$ 100" in t for t in texts[1:])
        [turn] = conversation["turns"]
        assert turn["sources"] and "R$ 100" in turn["reply_text"]

    # To standard output when piped: the data only, one JSON object per line, no bar.
    status, out, err = run_cli(capsys, "export", str(tenant.id), url=conversa.base_url)
    assert status == 0 and "\x1b[" not in out
    assert [json.loads(line)["id"] for line in out.splitlines()] == [c["id"] for c in lines]
