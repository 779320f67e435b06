"""What the chat model is given, and what Conversa says when there is no model.

The reply must be grounded only in the cliente's own passages: the system prompt carries the
cliente's persona, the grounding rule and the numbered passages; memory turns follow; the current
burst is the last user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.extractive import best_sentences

GROUNDING_RULE = (
    "Responda apenas com base nos trechos da base de conhecimento abaixo; não use nenhum outro "
    "conhecimento. Se os trechos não contiverem a resposta, diga claramente que não tem essa "
    "informação e ofereça ajuda humana (um atendente da equipe). Nunca invente preços, prazos ou "
    "políticas. Responda no idioma do cliente, em mensagens curtas separadas por linhas em branco."
)
NO_PASSAGES = "(Nenhum trecho relevante foi encontrado na base de conhecimento.)"
OFFLINE_PREFIX = (
    "[Modo offline: respondendo direto da base de conhecimento, sem modelo de linguagem.]"
)
OFFLINE_NOTHING_FOUND = "Não encontrei essa informação na nossa base de conhecimento."


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of the cliente's knowledge, where it came from, and how it scored.

    `similarity` is the cosine between the question's and the chunk's embeddings; `coverage` the
    IDF-weighted share of the question's words the chunk contains (see `engine.core.relevance`);
    `score` the fused rank score that ordered it."""

    text: str
    document_id: int | None
    chunk_index: int
    title: str = ""  # the document's title
    section: str = ""  # the heading path of the chunk's section
    chunk_id: int | None = None
    similarity: float = 0.0
    coverage: float = 0.0
    score: float = 0.0

    def citation(self) -> dict[str, object]:
        """Which document and section a reply used (the turns API)."""
        return {
            "document_id": self.document_id,
            "title": self.title,
            "section": self.section,
            "chunk_index": self.chunk_index,
        }


@dataclass(frozen=True)
class Exchange:
    """One exchange of a conversation's memory: the customer's (merged) burst and the reply it
    got. (The persisted answered burst is the ORM `Turn`.)"""

    user_text: str
    reply_text: str


def build_system_prompt(persona: str, passages: Sequence[Passage]) -> str:
    lines = [persona.strip(), "", GROUNDING_RULE, "", "Base de conhecimento:"]
    if passages:
        lines += [f"[{i}] {_source(p)}{p.text}" for i, p in enumerate(passages, start=1)]
    else:
        lines.append(NO_PASSAGES)
    return "\n".join(lines)


def _source(passage: Passage) -> str:
    """The document a passage is from (its text already starts with its section's title)."""
    return f"({passage.title}) " if passage.title else ""


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


def offline_reply(question: str, passages: Sequence[Passage]) -> str:
    """The answer when no model is configured: the one to three sentences of the passages that
    best match the question (one short message), clearly labelled as offline."""
    sentences = best_sentences(question, [(p.text, p.section) for p in passages])
    if not sentences:
        return f"{OFFLINE_PREFIX}\n\n{OFFLINE_NOTHING_FOUND}"
    return f"{OFFLINE_PREFIX}\n\n{' '.join(sentences)}"
