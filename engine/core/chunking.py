"""Split knowledge documents into retrieval chunks of at most `size` characters.

Prefers paragraph, then sentence, then word boundaries, and repeats up to `overlap` characters of
the previous chunk's end (whole words) at the start of the next, so a fact split across a boundary
is still found whole in one of them.
"""

from __future__ import annotations

import re

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
