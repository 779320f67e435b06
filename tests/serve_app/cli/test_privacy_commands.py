"""`conversa contact export|erase` and `conversa cliente delete` against the running stack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from serve_app.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_export_erase_and_delete_from_the_command_line(
    make_tenant: MakeTenant,
    fake_evolution: FakeEvolution,
    conversa: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    async def cli(*args: str) -> tuple[int, str, str]:
        argv = ["--url", conversa.base_url, "--token", ADMIN_TOKEN, *args]
        status = await asyncio.to_thread(main, argv)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    tenant = await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    chat = wa.new_chat()
    await tenant.post(wa.text(tenant.instance, chat, "Oi, sou a Joana"))
    await eventually(lambda: _sent(fake_evolution, chat))
    number, cid = chat.split("@")[0], str(tenant.id)

    saved = tmp_path / "joana.json"
    status, _, err = await cli("contact", "export", cid, f"+{number}", "--out", str(saved))
    assert status == 0 and "1 conversation(s) written" in err
    exported = json.loads(saved.read_text())
    assert exported["conversations"][0]["messages"][0]["text"] == "Oi, sou a Joana"

    status, out, _ = await cli("contact", "erase", cid, chat, "--yes")
    assert status == 0 and json.loads(out)["conversations"] == 1
    status, _, err = await cli("contact", "export", cid, number)
    assert status == 1 and "holds no data about this contact" in err
    status, _, err = await cli("contact", "export", cid, "not-a-number")
    assert status == 1 and "phone number" in err

    status, out, _ = await cli("cliente", "delete", cid, "--yes")
    assert status == 0 and json.loads(out)["cliente_id"] == tenant.id
    status, _, err = await cli("cliente", "delete", cid, "--yes")
    assert status == 1 and "does not exist" in err


async def _sent(fake_evolution: FakeEvolution, chat: str) -> bool:
    return bool(fake_evolution.sent_to(chat))
