"""Split knowledge documents into retrieval chunks of at most `size` characters.

`chunk_document` follows a Markdown document's headings and paragraphs (every converted upload is
Markdown) and keeps the section title with each chunk; `chunk_text` splits plain text.

Prefers paragraph, then sentence, then word boundaries, and repeats up to `overlap` characters of
the previous chunk's end (whole words) at the start of the next, so a fact split across a boundary
is still found whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?;:])\s+")


def _pieces(text: str, size: int) -> list[str]:
    """Units no longer than `size`, coarsest boundaries first."""
    out: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append(paragraph)
            continue
        for sentence in _SENTENCES.split(paragraph):
            if len(sentence) <= size:
                out.append(sentence)
                continue
            words, current = sentence.split(" "), ""
            for word in words:
                while len(word) > size:  # a single "word" longer than a chunk: hard split
                    if current:
                        out.append(current)
                        current = ""
                    out.append(word[:size])
                    word = word[size:]
                candidate = f"{current} {word}" if current else word
                if len(candidate) <= size:
                    current = candidate
                else:
                    out.append(current)
                    current = word
            if current:
                out.append(current)
    return out


def _tail(text: str, overlap: int) -> str:
    """The last whole words of `text`, at most `overlap` characters."""
    if overlap <= 0 or len(text) <= overlap:
        return text if overlap > 0 else ""
    cut = text[-overlap:]
    space = cut.find(" ")
    return cut[space + 1 :] if space >= 0 else ""


def chunk_text(text: str, *, size: int = 800, overlap: int = 120) -> list[str]:
    """Chunks of at most `size` characters covering all of `text`'s words, in order."""
    if size <= 0:
        raise ValueError("size must be > 0")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be >= 0 and < size")
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, size):
        separator = "\n" if current else ""
        if len(current) + len(separator) + len(piece) <= size:
            current = f"{current}{separator}{piece}"
            continue
        chunks.append(current)
        carried = _tail(current, overlap)
        if carried and len(carried) + 1 + len(piece) <= size:
            current = f"{carried} {piece}"
        else:
            current = piece
    if current:
        chunks.append(current)
    return chunks


# --------------------------------------------------------------------------- sections

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
SECTION_SEPARATOR = " > "


@dataclass(frozen=True)
class Chunk:
    """A retrieval chunk: the title of the section it came from, and its text (which starts with
    that title, so the words of the heading are searchable with every piece of the section)."""

    section: str
    text: str


@dataclass(frozen=True)
class Section:
    title: str  # the heading path, outermost last two levels ("Cardápio > Pizzas")
    body: str


def split_sections(markdown: str) -> list[Section]:
    """The document's sections in order (text before the first heading has an empty title).

    A section is the text under a heading up to the next heading of any level; its title keeps
    the parent heading for context ("Cardápio > Pizzas salgadas")."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def close() -> None:
        body = "\n".join(lines).strip()
        if body:
            title = SECTION_SEPARATOR.join(heading for _, heading in path[-2:])
            sections.append(Section(title, body))
        lines.clear()

    for line in markdown.splitlines():
        match = _HEADING.match(line.strip())
        if match is None:
            lines.append(line.rstrip())
            continue
        close()
        level, heading = len(match.group(1)), match.group(2).strip()
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
    close()
    return sections


def _blocks(body: str, budget: int, overlap: int) -> list[str]:
    """Paragraphs (lines kept, so table rows stay rows) no longer than `budget`; a longer one is
    cut at line, then sentence, then word boundaries."""
    out: list[str] = []
    for paragraph in _PARAGRAPHS.split(body):
        lines = [" ".join(line.split()) for line in paragraph.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        joined = "\n".join(lines)
        if len(joined) <= budget:
            out.append(joined)
            continue
        current = ""
        for line in lines:
            pieces = (
                [line] if len(line) <= budget else chunk_text(line, size=budget, overlap=overlap)
            )
            for piece in pieces:
                candidate = f"{current}\n{piece}" if current else piece
                if len(candidate) <= budget:
                    current = candidate
                else:
                    out.append(current)
                    current = piece
        if current:
            out.append(current)
    return out


def chunk_document(markdown: str, *, size: int = 800, overlap: int = 120) -> list[Chunk]:
    """Chunks of at most `size` characters that follow the document's headings and paragraphs:
    a chunk never spans two sections, whole paragraphs are packed together, and each chunk starts
    with its section's title."""
    if size <= 0:
        raise ValueError("size must be > 0")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be >= 0 and < size")
    chunks: list[Chunk] = []
    for section in split_sections(markdown):
        title = section.title[: size // 4]  # a heading never leaves no room for its text
        budget = size - (len(title) + 1 if title else 0)
        packed = ""
        for block in _blocks(section.body, budget, min(overlap, budget - 1)):
            candidate = f"{packed}\n\n{block}" if packed else block
            if len(candidate) <= budget:
                packed = candidate
                continue
            chunks.append(Chunk(title, f"{title}\n{packed}" if title else packed))
            packed = block
        if packed:
            chunks.append(Chunk(title, f"{title}\n{packed}" if title else packed))
    return chunks
