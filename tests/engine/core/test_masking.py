"""A customer's number is never written down whole."""

from __future__ import annotations

import pytest

from engine.core.masking import mask_jid, mask_session_id


@pytest.mark.parametrize(
    ("jid", "masked"),
    [
        ("5511987654321@s.whatsapp.net", "55119****4321@s.whatsapp.net"),
        ("551187654321@s.whatsapp.net", "55118***4321@s.whatsapp.net"),
        ("123456789012345@lid", "12345******2345@lid"),
        ("120363025246125486@g.us", "12036*********5486@g.us"),
        ("5511987654321", "55119****4321"),
        ("98765432@s.whatsapp.net", "****5432@s.whatsapp.net"),
        ("1234@s.whatsapp.net", "****@s.whatsapp.net"),
        ("", ""),
    ],
)
def test_a_jid_keeps_its_first_five_and_last_four_digits(jid: str, masked: str) -> None:
    assert mask_jid(jid) == masked


def test_the_middle_digits_of_a_phone_number_never_survive_masking() -> None:
    assert "8765" not in mask_jid("5511987654321@s.whatsapp.net")


@pytest.mark.parametrize(
    ("session_id", "masked"),
    [
        ("cliente_7_5511987654321@s.whatsapp.net", "cliente_7_55119****4321@s.whatsapp.net"),
        ("cliente_12_123456789012345@lid", "cliente_12_12345******2345@lid"),
        ("not-a-session", "not-a****sion"),
    ],
)
def test_a_session_id_keeps_its_cliente_and_masks_its_chat(session_id: str, masked: str) -> None:
    assert mask_session_id(session_id) == masked
