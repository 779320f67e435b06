"""Sealed secrets (Fernet) and QR codes drawn as PNG."""

from __future__ import annotations

import base64
import io

import pytest
import zxingcpp
from cryptography.fernet import Fernet
from PIL import Image

from engine.adapters.qr import qr_png
from engine.adapters.secrets import SecretBox
from engine.errors import SecretUnreadable


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    sealed = box.seal("B6D9F1E2-7C4A-4E0B-9F3D-1A2B3C4D5E6F")
    assert "B6D9F1E2" not in sealed and box.seal("x") != box.seal("x")  # randomised
    assert box.open(sealed) == "B6D9F1E2-7C4A-4E0B-9F3D-1A2B3C4D5E6F"
    with pytest.raises(SecretUnreadable, match="SECRETS_KEY"):
        SecretBox(Fernet.generate_key().decode()).open(sealed)
    assert box.open_optional(None) is None


def test_the_png_reads_back_as_the_code_evolution_gave() -> None:
    code = "2@y8eKq1R+" + "A" * 80 + ",bXlrZXk=,c2VjcmV0,1"
    png = qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found.text == code


def test_evolutions_own_image_is_served_when_it_sent_no_code() -> None:
    image = qr_png("2@abc")
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    assert qr_png(data_url) == image
