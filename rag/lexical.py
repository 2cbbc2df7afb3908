"""BM25 over a snapshot's chunks (bm25s), with the same row order as the FAISS index."""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np

from rag.abbreviations import definitions
from rag.snapshot import Snapshot
from rag.text import stems

PREFIX = 6  # letters compared by prefix_df (see rag.extractive.unsupported_terms)

# \w+ keeps single digits and drug-strength numbers ('5', '325'); bm25s's default drops them.
TOKEN_PATTERN = r"(?u)\b\w+\b"


class Lexical:
    """A BM25 index of `title | section | text` for every row of a snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        import bm25s
        import Stemmer

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

        self._bm25s = bm25s
        self.stemmer = Stemmer.Stemmer("english")
        texts = [
            f"{snap.docs[c.doc_id].title} {c.section} {c.text}" for c in snap.chunks
        ]
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, token_pattern=TOKEN_PATTERN,
                                show_progress=False)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)
        self.size = len(texts)
        # document frequency of each stem, for weighting question terms by how specific they are
        self.df: Counter[str] = Counter()
        self.prefix_df: Counter[str] = Counter()  # chunks holding a word that starts with a prefix
        for t in texts:
            words = set(stems(t))
            self.df.update(words)
            self.prefix_df.update({w[:PREFIX] for w in words})
        # the abbreviations each document defines ('HeFH'), so its passages using them match the long form
        by_doc: dict[str, list[str]] = {}
        for c in snap.chunks:
            by_doc.setdefault(c.doc_id, []).append(c.text)
        self.abbreviations = {d: definitions(ts) for d, ts in by_doc.items()}

    def spelled_out(self, doc_id: str, words: frozenset[str]) -> frozenset[str]:
        """The stems of the long forms of the abbreviations among `words` that the document defines.

        Example: ('<atorvastatin label>', {'hefh', 'dose'}) -> {'heterozygou', 'familial', 'hypercholesterolemia'}
        """
        defined = self.abbreviations.get(doc_id)
        if not defined:
            return frozenset()
        return frozenset(s for w in words if w in defined for s in defined[w])

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stem (rare terms weigh more; unknown terms the most)."""
        return math.log(1 + (self.size + 1) / (self.df.get(term, 0) + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query."""
        q = self._bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, token_pattern=TOKEN_PATTERN,
                                 return_ids=False, show_progress=False)[0]
        if not q or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(q), dtype=np.float32)

    def ranking(self, query: str, allowed: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, score) of the best `k` allowed rows with a positive score, best first."""
        s = np.where(allowed, self.scores(query), 0.0)
        k = min(k, int((s > 0).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [(int(r), float(s[r])) for r in top]


def rrf(rankings: list[list[tuple[int, float]]], k: int, rrf_k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(row) = sum over rankings of 1 / (rrf_k + rank).

    Example: rrf([[(1, .9), (2, .5)], [(2, 7.), (3, 1.)]], 3) ranks row 2 first.
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (row, _score) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
    return best[:k]
