"""Test doubles with meaning: a hashed bag-of-words embedder whose rankings follow shared words."""

from __future__ import annotations

import re

import numpy as np

from rag.types import sha256_hex


class HashEmbedder:
    """Each word hashes (SHA-256) to a seeded random direction; a text is the normalised sum.

    Texts sharing words are similar, so retrieval over it is testable without a model.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.id = f"hash-bow:dim{dim}"
        self.calls: list[list[str]] = []

    def _word(self, w: str) -> np.ndarray:
        rng = np.random.default_rng(int(sha256_hex(w, 12), 16))
        return rng.standard_normal(self.dim).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text."""
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", t.lower()):
                out[i] += self._word(w)
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else self._word("<empty>") / np.linalg.norm(self._word("<empty>"))
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces as a WordPiece vocabulary would give: short words are one, long ones split."""
        return [sum(1 if len(w) <= 7 else 1 + len(w) // 6 for w in t.split()) for t in texts]
