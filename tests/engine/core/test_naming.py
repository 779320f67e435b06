"""Names keyed by cliente (engine/naming.py)."""

from __future__ import annotations

import pytest

from engine.core.naming import (
    EMBEDDER_NAME,
    cliente_of_session,
    get_collection_name,
    reply_worker_name,
    session_id,
)

CHAT = "5511987654321@s.whatsapp.net"


@pytest.mark.parametrize(
    ("cliente_id", "name"), [(1, "tenant_1"), (2, "tenant_2"), (1234, "tenant_1234")]
)
def test_collection_name_is_tenant_and_cliente_id(cliente_id: int, name: str) -> None:
    assert get_collection_name(cliente_id) == name


def test_collection_names_of_different_clientes_differ() -> None:
    assert get_collection_name(1) != get_collection_name(11)


@pytest.mark.parametrize(
    ("cliente_id", "chat"),
    [(1, CHAT), (7, "123456789012345@lid"), (42, "5521998877665@s.whatsapp.net")],
)
def test_session_id_is_cliente_prefix_and_chat(cliente_id: int, chat: str) -> None:
    assert session_id(cliente_id, chat) == f"cliente_{cliente_id}_{chat}"


def test_same_chat_at_two_clientes_has_two_sessions() -> None:
    assert session_id(1, CHAT) != session_id(2, CHAT)


@pytest.mark.parametrize("chat", ["", None])
def test_session_id_without_a_chat_raises_value_error(chat: str | None) -> None:
    with pytest.raises(ValueError):
        session_id(1, chat)  # type: ignore[arg-type]


def test_worker_and_embedder_names() -> None:
    assert reply_worker_name(0) == "reply_worker_0"
    assert reply_worker_name(3) == "reply_worker_3"
    assert EMBEDDER_NAME == "embedder"


@pytest.mark.parametrize("cliente_id", [1, 7, 1234])
def test_the_cliente_of_a_session_id_is_read_back(cliente_id: int) -> None:
    assert cliente_of_session(session_id(cliente_id, CHAT)) == cliente_id


@pytest.mark.parametrize("name", ["tenant_1", "supervisor", "cliente_x_chat", "cliente_7_", ""])
def test_a_name_that_is_no_session_id_has_no_cliente(name: str) -> None:
    assert cliente_of_session(name) is None
