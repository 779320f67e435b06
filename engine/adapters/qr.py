"""QR codes drawn as PNG images (segno: pure Python, no image library needed)."""

from __future__ import annotations

import base64
import io

import segno

DATA_URL_PREFIX = "data:image/png;base64,"


def qr_png(code: str, *, scale: int = 8) -> bytes:
    """The PNG of a QR code: drawn from the raw code (what WhatsApp's scanner reads), or, when
    Evolution sent only its own image (a `data:image/png;base64,` URL), that image."""
    if code.startswith(DATA_URL_PREFIX):
        return base64.b64decode(code[len(DATA_URL_PREFIX) :])
    buffer = io.BytesIO()
    segno.make(code, error="l", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
