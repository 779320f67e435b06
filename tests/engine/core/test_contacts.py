from __future__ import annotations

import pytest

from engine.core.contacts import contact_jid, masked


@pytest.mark.parametrize(
    ("raw", "jid"),
    [
        ("5511987654321", "5511987654321@s.whatsapp.net"),
        ("+55 (11) 98765-4321", "5511987654321@s.whatsapp.net"),
        (" 5511987654321@s.whatsapp.net ", "5511987654321@s.whatsapp.net"),
        ("5511987654321:12@s.whatsapp.net", "5511987654321@s.whatsapp.net"),
        ("123456789012345@lid", "123456789012345@lid"),
        ("123456789012345:3@lid", "123456789012345@lid"),
        ("1203630000@g.us", None),
        ("status@broadcast", None),
        ("abc@s.whatsapp.net", None),
        ("1234567", None),
        ("1234567890123456", None),
        ("５５１１９８７６５４３２１", None),
        ("", None),
        ("'; DROP TABLE messages; --", None),
    ],
)
def test_contact_jid(raw: str, jid: str | None) -> None:
    assert contact_jid(raw) == jid


def test_masked_never_carries_the_whole_number() -> None:
    text = masked(["5511987654321@s.whatsapp.net", "123456789012345@lid"])
    assert text == "12345******2345@lid, 55119****4321@s.whatsapp.net"
