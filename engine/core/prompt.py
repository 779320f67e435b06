"""What the chat model is given, and what Conversa says when there is no model.

The reply must be grounded only in the cliente's own passages: the system prompt carries the
cliente's persona, the grounding rule and the numbered passages; memory turns follow; the current
burst is the last user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GROUNDING_RULE = (
    "Responda apenas com base nos trechos da base de conhecimento abaixo. "
    "Se a resposta não estiver neles, diga que não tem essa informação e ofereça ajuda humana. "
    "Nunca invente preços, prazos ou políticas. Responda no idioma do cliente."
)
NO_PASSAGES = "(Nenhum trecho relevante foi encontrado na base de conhecimento.)"
OFFLINE_PREFIX = (
    "[Modo offline: respondendo direto da base de conhecimento, sem modelo de linguagem.]"
)
OFFLINE_NOTHING_FOUND = "Não encontrei essa informação na nossa base de conhecimento."


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of the cliente's knowledge."""

    text: str
    document_id: int | None
    chunk_index: int
    distance: float


@dataclass(frozen=True)
class Exchange:
    """One exchange of a conversation's memory: the customer's (merged) burst and the reply it
    got. (The persisted answered burst is the ORM `Turn`.)"""

    user_text: str
    reply_text: str


def build_system_prompt(persona: str, passages: Sequence[Passage]) -> str:
    lines = [persona.strip(), "", GROUNDING_RULE, "", "Base de conhecimento:"]
    if passages:
        lines += [f"[{i}] {p.text}" for i, p in enumerate(passages, start=1)]
    else:
        lines.append(NO_PASSAGES)
    return "\n".join(lines)


def build_chat_messages(
    *, persona: str, passages: Sequence[Passage], memory: Sequence[Exchange], user_text: str
) -> list[dict[str, str]]:
    """OpenAI chat `messages` for one turn."""
    messages = [{"role": "system", "content": build_system_prompt(persona, passages)}]
    for turn in memory:
        messages.append({"role": "user", "content": turn.user_text})
        messages.append({"role": "assistant", "content": turn.reply_text})
    messages.append({"role": "user", "content": user_text})
    return messages


def offline_reply(passages: Sequence[Passage], *, max_passages: int = 2) -> str:
    """The answer when no model is configured: the best passages, clearly labelled as offline."""
    if not passages:
        return f"{OFFLINE_PREFIX}\n\n{OFFLINE_NOTHING_FOUND}"
    best = "\n\n".join(p.text for p in passages[:max_passages])
    return f"{OFFLINE_PREFIX}\n\n{best}"
