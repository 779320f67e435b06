"""The offline responder's answer: the one to three sentences of the retrieved passages that best
match the question (extractive), not whole chunks, so a phone shows a short reply.

Words are compared folded (lower case, no accents) and cut to a 5-letter prefix, a crude stemmer
that is enough for Portuguese inflections ("preço"/"preços", "entrega"/"entregam"). A word that
occurs in many candidate sentences counts less (IDF), so "vocês" does not pick a sentence.
Markdown table rows are read with their header ("Calabresa — Broto: R$ 40,00; Grande: R$ 64,00").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.words import fold

MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 300
STEM_CHARS = 5
# A sentence is kept only if it scores at least this share of the best one.
KEEP_RATIO = 0.5

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-Ú0-9\"'(])")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}")
_MARKUP = re.compile(r"(\*\*|__|`|^#+\s*|^[-*+]\s+|^\d+[.)]\s+)")
# Function words and WhatsApp shorthand that say nothing about what is asked.
_STOPWORDS = frozenset(
    """a o as os um uma uns umas de do da dos das no na nos nas em por para pra pro com sem e ou
    que qual quais quanto quanta quantos quantas como onde quando se ja eu voce voces vc vcs tu
    me te lhe nos eles elas ele ela meu minha seu sua isso isto esse essa este esta aqui ai la
    tem ter tenho temos sao ser esta estao foi vai vou pode posso queria quero gostaria saber
    oi ola bom boa dia tarde noite obrigado obrigada por favor pf pfv q qto qta qtos tb tbm blz
    hj ne ta to nao sim mais muito mt mto so ok okay valeu vlw beleza tchau ate entao certo show
    legal perfeito top tudo bem obg brigado brigada kkk kkkk rs haha""".split()
)


@dataclass(frozen=True)
class _Candidate:
    text: str
    terms: frozenset[str]
    passage_rank: int
    position: int


def terms_of(text: str) -> frozenset[str]:
    """The informative words of `text`, folded and cut to their stem prefix."""
    words = _WORD.findall(fold(text))
    return frozenset(w[:STEM_CHARS] for w in words if w not in _STOPWORDS and len(w) > 1)


def sentences_of(passage_text: str, *, section: str = "") -> list[str]:
    """Readable sentences of a chunk: the section title line dropped, table rows read with their
    header, markup removed, long lines cut into sentences."""
    lines = passage_text.splitlines()
    if section and lines and lines[0].strip() == section.strip():
        lines = lines[1:]
    out: list[str] = []
    header: list[str] | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            header = None
            continue
        if _TABLE_RULE.match(line):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            out.append(_table_row(header, cells))
            continue
        header = None
        line = _MARKUP.sub("", line).strip()
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return [s if len(s) <= MAX_SENTENCE_CHARS else s[: MAX_SENTENCE_CHARS - 1] + "…" for s in out]


def _table_row(header: list[str], cells: list[str]) -> str:
    if len(cells) < 2 or len(header) != len(cells):
        return "; ".join(c for c in cells if c)
    values = "; ".join(f"{h}: {c}" for h, c in zip(header[1:], cells[1:], strict=True) if c)
    return f"{cells[0]} — {values}" if values else cells[0]


def best_sentences(
    question: str,
    passages: Sequence[tuple[str, str]],
    *,
    max_sentences: int = MAX_SENTENCES,
) -> list[str]:
    """Up to `max_sentences` sentences of `passages` ((text, section) pairs, best passage first)
    that best match `question`, best first. With no word in common, the best passage's first
    sentence (retrieval already judged that passage the closest)."""
    candidates: list[_Candidate] = []
    for rank, (text, section) in enumerate(passages):
        for sentence in sentences_of(text, section=section):
            position = len(candidates)
            candidates.append(_Candidate(sentence, terms_of(sentence), rank, position))
    if not candidates:
        return []
    asked = terms_of(question)
    frequency = {t: sum(1 for c in candidates if t in c.terms) for t in asked}
    weight = {t: math.log(1 + len(candidates) / n) for t, n in frequency.items() if n}

    def score(candidate: _Candidate) -> float:
        matched = sum(weight.get(t, 0.0) for t in asked & candidate.terms)
        return matched / (1 + 0.1 * candidate.passage_rank)  # earlier passages win ties

    scored = sorted(candidates, key=lambda c: (-score(c), c.position))
    best = score(scored[0])
    if best <= 0:
        return [candidates[0].text]
    kept: list[str] = []
    for candidate in scored:
        if len(kept) == max_sentences or score(candidate) < KEEP_RATIO * best:
            break
        if candidate.text not in kept:  # the same sentence in two overlapping chunks
            kept.append(candidate.text)
    return kept
