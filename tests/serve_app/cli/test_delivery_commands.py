"""`conversa deliveries` and `conversa resend` against the running stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serve_app.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.support import evolution_payloads as wa
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, url: str) -> tuple[int, str, str]:
    status = main(["--url", url, "--token", ADMIN_TOKEN, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_an_operator_finds_a_dead_lettered_reply_and_resends_it(
    make_tenant: MakeTenant,
    evolution_faults: FakeEvolution,
    conversa: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, tenant = conversa.base_url, await make_tenant(debounce_s=0.3, max_wait_s=1.0)
    cid, chat = str(tenant.id), wa.new_chat()
    evolution_faults.fail("sendText", status=403, number=chat)
    await tenant.post(wa.text(tenant.instance, chat, "Qual o endereço da loja?"))

    async def dead() -> list[dict[str, Any]]:
        status, out, _ = run_cli(capsys, "deliveries", cid, "--state", "dead", url=url)
        assert status == 0
        return json.loads(out)

    [part] = await eventually(dead, timeout_s=30)
    assert part["status"] == "FALHOU" and "403" in part["error"] and part["chat_jid"] == chat

    evolution_faults.clear_faults()
    status, out, _ = run_cli(capsys, "resend", cid, str(part["turn_id"]), url=url)
    assert status == 0 and json.loads(out) == {"turn_id": part["turn_id"], "parts_requeued": 1}
    [reply] = await eventually(lambda: _sent(evolution_faults, chat))
    assert reply.text.endswith("Qual o endereço da loja?")

    status, out, err = run_cli(capsys, "resend", cid, str(part["turn_id"]), url=url)
    assert status == 1 and out == ""
    assert "→ 409" in err and "only a dead-lettered reply is re-sent" in err

    async def nothing_undelivered() -> bool:
        status, out, _ = run_cli(capsys, "deliveries", cid, url=url)
        return status == 0 and json.loads(out) == []

    await eventually(nothing_undelivered)


async def _sent(fake: FakeEvolution, chat: str) -> list[Any] | None:
    return fake.sent_to(chat) or None
