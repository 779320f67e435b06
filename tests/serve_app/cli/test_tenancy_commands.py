"""`conversa apikey|billing|instance connect…` against the running stack: a business's path."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from serve_app.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_stripe import FakeStripe

pytestmark = pytest.mark.integration


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, url: str) -> tuple[int, str, str]:
    status = main(["--url", url, "--token", ADMIN_TOKEN, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_business_gets_a_key_pays_and_connects_its_number_from_the_cli(
    conversa: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_stripe: FakeStripe,
    fake_evolution: FakeEvolution,
) -> None:
    url = conversa.base_url
    status, out, _ = run_cli(capsys, "cliente", "create", "--nome", "Loja Terminal", url=url)
    assert status == 0
    cliente = json.loads(out)
    assert cliente["status"] == "PENDENTE"
    cid = str(cliente["id"])

    status, out, _ = run_cli(capsys, "apikey", "create", cid, "--name", "erp", url=url)
    assert status == 0
    key = json.loads(out)["key"]
    me = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["id"] == int(cid)
    status, out, _ = run_cli(capsys, "apikey", "list", cid, url=url)
    assert key not in out and key[:12] in out

    status, out, _ = run_cli(capsys, "billing", "checkout", cid, url=url)
    assert status == 0
    session_id = json.loads(out)["url"].rsplit("/", 1)[-1]
    for event in fake_stripe.complete_checkout(session_id):
        signed = fake_stripe.sign(event)
        response = httpx.post(
            f"{url}/webhooks/stripe", content=signed.payload, headers=signed.headers
        )
        assert response.status_code == 200, response.text
    status, out, _ = run_cli(capsys, "billing", "status", cid, url=url)
    assert json.loads(out)["status"] == "ATIVO"

    status, out, _ = run_cli(
        capsys, "instance", "connect", cid, "--number", "5511955550002", url=url
    )
    assert status == 0, out
    made = json.loads(out[: out.index("\nQR code:")])
    name, iid = made["instance_id"], str(made["id"])
    assert "▀" in out or "█" in out  # the QR code drawn in the terminal
    assert f"pairing code on the phone: {made['pairing_code']}" in out

    png = tmp_path / "qr.png"
    status, out, _ = run_cli(capsys, "instance", "qr", cid, iid, "--png", str(png), url=url)
    assert status == 0
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.read_bytes())))
    assert read.text == fake_evolution.instances[name].qrcode["code"]  # type: ignore[index]

    old = fake_evolution.instances[name].webhook.headers["x-conversa-secret"]  # type: ignore[union-attr]
    status, out, _ = run_cli(capsys, "instance", "rotate-secret", cid, iid, url=url)
    assert status == 0
    assert fake_evolution.instances[name].webhook.headers["x-conversa-secret"] != old  # type: ignore[union-attr]

    status, out, _ = run_cli(capsys, "instance", "delete", cid, iid, url=url)
    assert status == 0 and name in fake_evolution.deleted
    status, _, err = run_cli(capsys, "instance", "state", cid, iid, url=url)
    assert status == 1 and "404" in err and "does not exist" in err
