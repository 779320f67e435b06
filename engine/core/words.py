"""Text folded for matching: lower case without accents, the way customers type on WhatsApp
("preco" for "preço"). Chunks and questions both go through it before the lexical index sees
them, so a missing accent never misses a match (on any PostgreSQL, no `unaccent` needed)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower case without accents (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
