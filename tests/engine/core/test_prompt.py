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
HORARIO = Passage("Abrimos de segunda a sexta, das 9h às 19h.", 11, 0, similarity=0.88)
SABADO = Passage("Aos sábados abrimos das 9h às 14h.", 11, 1, similarity=0.82)
ENTREGA = Passage("Entregamos em Curitiba em até 2 dias úteis.", 12, 3, similarity=0.59)
PIX = Passage("Aceitamos Pix, cartões e boleto.", None, 0, similarity=0.45)
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


def test_system_prompt_names_the_document_of_each_passage_and_the_answer_only_rule() -> None:
    titled = Passage("Entregas\nEntregamos em 2 dias.", 3, 0, title="frete.pdf", section="Entregas")

    system = system_of(
        build_chat_messages(persona=PERSONA, passages=[titled], memory=[], user_text="prazo?")
    )

    assert "[1] (frete.pdf) Entregas\nEntregamos em 2 dias." in system
    assert "apenas com base nos trechos" in GROUNDING_RULE
    assert "não tem essa informação" in GROUNDING_RULE
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


LONG_PASSAGE = Passage(
    "Entregas\nEntregamos em Curitiba em até 2 dias úteis. O frete é grátis acima de R$ 200,00. "
    "Para outras cidades, o prazo é de 5 a 8 dias úteis pelos Correios. Pedidos feitos até as "
    "14h saem no mesmo dia. Não entregamos aos domingos.",
    12,
    0,
    section="Entregas",
)


def test_offline_reply_is_labelled_and_extracts_the_sentence_that_answers() -> None:
    reply = offline_reply("qual o horario de sabado?", PASSAGES)

    assert reply.startswith(OFFLINE_PREFIX)
    body = reply.removeprefix(OFFLINE_PREFIX).strip()
    assert body.startswith(SABADO.text)
    assert ENTREGA.text not in body
    assert OFFLINE_NOTHING_FOUND not in reply


def test_offline_reply_is_one_to_three_sentences_not_the_whole_chunk() -> None:
    reply = offline_reply("o frete é gratis? qual o prazo pra outras cidades", [LONG_PASSAGE])

    body = reply.removeprefix(OFFLINE_PREFIX).strip()
    assert "frete é grátis acima de R$ 200,00" in body
    assert "Não entregamos aos domingos" not in body
    assert body.count(". ") + 1 <= 3
    assert "\n\n" not in body  # one message on the phone, after the offline label
    assert not body.startswith("Entregas")  # the section title is not a sentence


def test_offline_reply_reads_a_table_row_with_its_header() -> None:
    table = Passage(
        "Pizzas\n| Sabor | Broto | Grande |\n|---|---|---|\n| Calabresa | R$ 40,00 | R$ 64,00 |\n"
        "| Margherita | R$ 42,00 | R$ 69,00 |",
        1,
        0,
        section="Pizzas",
    )

    reply = offline_reply("qto ta a calabresa grande", [table])

    assert "Calabresa — Broto: R$ 40,00; Grande: R$ 64,00" in reply
    assert "Margherita" not in reply


def test_offline_reply_without_a_word_in_common_gives_the_best_passages_first_sentence() -> None:
    assert offline_reply("???", [PIX, HORARIO]) == f"{OFFLINE_PREFIX}\n\n{PIX.text}"


def test_offline_reply_without_passages_says_nothing_was_found() -> None:
    reply = offline_reply("qual o horario?", [])

    assert reply.startswith(OFFLINE_PREFIX)
    assert OFFLINE_NOTHING_FOUND in reply


def test_offline_prefix_says_it_is_offline() -> None:
    assert "offline" in OFFLINE_PREFIX.lower()
