"""What the chat model is given, and the offline answer (engine/prompt.py)."""

from __future__ import annotations

import pytest

from engine.core.prompt import (
    GROUNDING_RULE,
    NO_PASSAGES,
    OFFLINE_NOTHING_FOUND,
    OFFLINE_PREFIX,
    Exchange,
    Passage,
    build_chat_messages,
    offline_reply,
)

PERSONA = "Você é a Ana, atendente virtual da Loja Centro. Seja cordial e breve."
HORARIO = Passage("Abrimos de segunda a sexta, das 9h às 19h.", 11, 0, 0.12)
SABADO = Passage("Aos sábados abrimos das 9h às 14h.", 11, 1, 0.18)
ENTREGA = Passage("Entregamos em Curitiba em até 2 dias úteis.", 12, 3, 0.41)
PIX = Passage("Aceitamos Pix, cartões e boleto.", None, 0, 0.55)
PASSAGES = [HORARIO, SABADO, ENTREGA]
MEMORY = [
    Exchange("oi\nvocês abrem amanhã?", "Olá! Abrimos amanhã das 9h às 19h."),
    Exchange("e no sábado?", "No sábado abrimos das 9h às 14h."),
]


def system_of(messages: list[dict[str, str]]) -> str:
    assert messages[0]["role"] == "system"
    return messages[0]["content"]


def test_system_prompt_has_persona_rule_and_numbered_passages_in_that_order() -> None:
    messages = build_chat_messages(
        persona=PERSONA, passages=PASSAGES, memory=[], user_text="Qual o horário?"
    )
    system = system_of(messages)

    assert system.startswith(PERSONA)
    lines = system.split("\n")
    numbered = [line for line in lines if line.startswith("[")]
    assert numbered == [f"[{i}] {p.text}" for i, p in enumerate(PASSAGES, start=1)]
    assert system.index(PERSONA) < system.index(GROUNDING_RULE) < system.index("[1] ")
    assert NO_PASSAGES not in system


def test_persona_is_stripped_of_surrounding_whitespace() -> None:
    messages = build_chat_messages(
        persona=f"\n   {PERSONA}  \n\n", passages=PASSAGES, memory=[], user_text="Oi"
    )

    assert system_of(messages).startswith(PERSONA + "\n")


def test_passages_keep_the_retrieval_order_in_their_numbers() -> None:
    reversed_passages = list(reversed(PASSAGES))
    system = system_of(
        build_chat_messages(persona=PERSONA, passages=reversed_passages, memory=[], user_text="?")
    )

    assert f"[1] {ENTREGA.text}" in system
    assert f"[3] {HORARIO.text}" in system
    assert system.index(ENTREGA.text) < system.index(SABADO.text) < system.index(HORARIO.text)


def test_without_passages_the_system_prompt_says_nothing_was_found() -> None:
    system = system_of(
        build_chat_messages(
            persona=PERSONA, passages=[], memory=[], user_text="Vocês vendem pneus?"
        )
    )

    assert NO_PASSAGES in system
    assert GROUNDING_RULE in system
    assert "[1]" not in system


def test_grounding_rule_forbids_inventing_and_offers_a_human() -> None:
    assert "apenas com base" in GROUNDING_RULE
    assert "Nunca invente" in GROUNDING_RULE
    assert "ajuda humana" in GROUNDING_RULE


@pytest.mark.parametrize(
    ("memory", "expected_roles"),
    [
        pytest.param([], ["system", "user"], id="no-memory"),
        pytest.param(MEMORY[:1], ["system", "user", "assistant", "user"], id="one-turn"),
        pytest.param(
            MEMORY, ["system", "user", "assistant", "user", "assistant", "user"], id="two-turns"
        ),
    ],
)
def test_memory_turns_become_user_assistant_pairs_before_the_current_text(
    memory: list[Exchange], expected_roles: list[str]
) -> None:
    messages = build_chat_messages(
        persona=PERSONA, passages=PASSAGES, memory=memory, user_text="e domingo?"
    )

    assert [m["role"] for m in messages] == expected_roles
    assert messages[-1] == {"role": "user", "content": "e domingo?"}


def test_memory_turns_keep_their_order_and_texts() -> None:
    messages = build_chat_messages(
        persona=PERSONA, passages=PASSAGES, memory=MEMORY, user_text="e domingo?\nabre?"
    )

    assert messages[1:] == [
        {"role": "user", "content": "oi\nvocês abrem amanhã?"},
        {"role": "assistant", "content": "Olá! Abrimos amanhã das 9h às 19h."},
        {"role": "user", "content": "e no sábado?"},
        {"role": "assistant", "content": "No sábado abrimos das 9h às 14h."},
        {"role": "user", "content": "e domingo?\nabre?"},
    ]


def test_memory_and_current_text_stay_out_of_the_system_prompt() -> None:
    system = system_of(
        build_chat_messages(
            persona=PERSONA, passages=PASSAGES, memory=MEMORY, user_text="texto atual único"
        )
    )

    assert "texto atual único" not in system
    assert MEMORY[0].reply_text not in system


def test_every_message_is_a_plain_role_and_content_dict() -> None:
    messages = build_chat_messages(persona=PERSONA, passages=PASSAGES, memory=MEMORY, user_text="?")

    for message in messages:
        assert set(message) == {"role", "content"}
        assert isinstance(message["content"], str)


# --------------------------------------------------------------------------- offline


def test_offline_reply_is_labelled_and_uses_the_two_best_passages() -> None:
    reply = offline_reply(PASSAGES)

    assert reply.startswith(OFFLINE_PREFIX)
    assert HORARIO.text in reply and SABADO.text in reply
    assert ENTREGA.text not in reply
    assert reply.index(HORARIO.text) < reply.index(SABADO.text)
    assert OFFLINE_NOTHING_FOUND not in reply


@pytest.mark.parametrize(
    ("max_passages", "included", "excluded"),
    [
        pytest.param(1, [HORARIO], [SABADO, ENTREGA, PIX], id="one"),
        pytest.param(2, [HORARIO, SABADO], [ENTREGA, PIX], id="two"),
        pytest.param(3, [HORARIO, SABADO, ENTREGA], [PIX], id="three"),
        pytest.param(10, [HORARIO, SABADO, ENTREGA, PIX], [], id="more-than-available"),
    ],
)
def test_offline_reply_includes_at_most_max_passages_best_first(
    max_passages: int, included: list[Passage], excluded: list[Passage]
) -> None:
    reply = offline_reply([*PASSAGES, PIX], max_passages=max_passages)

    positions = [reply.index(p.text) for p in included]
    assert positions == sorted(positions)
    for passage in excluded:
        assert passage.text not in reply


def test_offline_reply_with_one_passage_is_prefix_and_passage() -> None:
    assert offline_reply([PIX]) == f"{OFFLINE_PREFIX}\n\n{PIX.text}"


def test_offline_reply_without_passages_says_nothing_was_found() -> None:
    reply = offline_reply([])

    assert reply.startswith(OFFLINE_PREFIX)
    assert OFFLINE_NOTHING_FOUND in reply


def test_offline_prefix_says_it_is_offline() -> None:
    assert "offline" in OFFLINE_PREFIX.lower()
