"""BM25 over tables a publish writes once and every reader memory-maps (never rebuilt per process).

Scores are bm25s's ("lucene" variant, k1 1.5, b 0.75: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), term
weight idf * tf / (tf + k1 * (1 - b + b * len / avg_len))), with bm25s's tokenizer (English stop words,
Snowball stemmer, digits kept), so rankings are the ones bm25s gave. bm25s itself builds its index with
Python loops over every passage and cannot add one: 8 s at 100,000 passages in every reader at every
generation. Here:

- `Postings` holds each row's term counts (row-major: what the next publish extends with a new
  document's rows, and the only part that needs tokenizing);
- `BM25.build` turns postings into the term-major weight table in vectorised code (a new document's
  publish re-weights every row, since N and the average length change, in a few numpy passes);
- `BM25.save` / `BM25.load` write and memory-map it: a reader loads a generation in milliseconds.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

K1 = 1.5  # bm25s's defaults, kept so that rankings did not move when the index moved here
B = 0.75
# \w+ keeps single digits and drug-strength numbers ('5', '325'); bm25s's default drops them.
TOKEN_PATTERN = r"(?u)\b\w+\b"


@lru_cache(maxsize=1)
def stemmer():
    """The Snowball English stemmer (PyStemmer), one per process: BM25's, and the answerer's for inflections."""
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Each text's BM25 tokens (stop words dropped, stemmed), as bm25s tokenizes."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every call at DEBUG
    if not texts:
        return []
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer(), token_pattern=TOKEN_PATTERN,
                          return_ids=False, show_progress=False)


@dataclass(frozen=True)
class Postings:
    """Term counts of every row, row-major: row r's terms are terms[indptr[r]:indptr[r + 1]]."""

    indptr: np.ndarray  # int64, rows + 1
    terms: np.ndarray  # int32 ids into vocab
    counts: np.ndarray  # int32 term frequency
    vocab: tuple[str, ...]

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def empty(cls) -> Postings:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), ())

    def extend(self, token_lists: list[list[str]]) -> Postings:
        """These postings with one more row per token list (new terms appended to the vocabulary)."""
        ids = {t: i for i, t in enumerate(self.vocab)}
        vocab = list(self.vocab)
        terms, counts, lengths = [], [], []
        for tokens in token_lists:
            row = np.fromiter((ids.setdefault(t, len(ids)) for t in tokens), np.int32, len(tokens))
            u, c = np.unique(row, return_counts=True)
            terms.append(u.astype(np.int32))
            counts.append(c.astype(np.int32))
            lengths.append(len(u))
        vocab += [t for t, i in sorted(ids.items(), key=lambda kv: kv[1])[len(vocab):]]
        if not token_lists:
            return self
        more = np.cumsum(lengths, dtype=np.int64) + self.indptr[-1]
        return Postings(np.concatenate([self.indptr, more]), np.concatenate([self.terms, *terms]),
                        np.concatenate([self.counts, *counts]), tuple(vocab))

    def take(self, rows: np.ndarray) -> Postings:
        """The postings of `rows`, in that order (a publish that drops or reorders rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # positions of every kept posting: each row's start repeated, plus 0..len-1
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Postings(indptr, self.terms[pos], self.counts[pos], self.vocab)

    def save(self, folder: Path) -> None:
        for name in ("indptr", "terms", "counts"):
            np.save(folder / f"postings_{name}.npy", getattr(self, name))
        (folder / "vocab.json").write_text(json.dumps(list(self.vocab)))

    @classmethod
    def load(cls, folder: Path) -> Postings:
        indptr, terms, counts = (np.load(folder / f"postings_{n}.npy", mmap_mode="r")
                                 for n in ("indptr", "terms", "counts"))
        return cls(indptr, terms, counts, tuple(json.loads((folder / "vocab.json").read_text())))


class BM25:
    """The term-major weight table: term t's rows are rows[indptr[t]:indptr[t + 1]], ascending."""

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, weights: np.ndarray, vocab: tuple[str, ...],
                 n_rows: int) -> None:
        self.indptr, self.rows, self.weights, self.n_rows = indptr, rows, weights, n_rows
        self.ids = {t: i for i, t in enumerate(vocab)}

    @classmethod
    def build(cls, p: Postings) -> BM25:
        """Weights of every (term, row) posting, grouped by term (a counting sort, as a CSC matrix)."""
        from scipy import sparse

        n, v = p.rows, len(p.vocab)
        if n == 0:
            return cls(np.zeros(v + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), p.vocab, 0)
        row_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(p.indptr))
        lengths = np.bincount(row_of, weights=p.counts, minlength=n)  # tokens per row, duplicates included
        df = np.bincount(p.terms, minlength=v)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = p.counts.astype(np.float32)
        norm = K1 * ((1 - B) + B * lengths / lengths.mean())  # float64, as bm25s computes it
        w = (idf[p.terms] * (tf / (norm[row_of] + tf))).astype(np.float32)
        m = sparse.csr_matrix((w, p.terms, p.indptr), shape=(n, v)).tocsc()
        m.sort_indices()
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), p.vocab, n)

    def save(self, folder: Path) -> None:
        np.save(folder / "bm25_indptr.npy", self.indptr)
        np.save(folder / "bm25_rows.npy", self.rows)
        np.save(folder / "bm25_weights.npy", self.weights)

    @classmethod
    def load(cls, folder: Path, vocab: tuple[str, ...], n_rows: int) -> BM25:
        """Memory-mapped: pages are read when a question's terms touch them."""
        indptr, rows, weights = (np.load(folder / f"bm25_{n}.npy", mmap_mode="r")
                                 for n in ("indptr", "rows", "weights"))
        return cls(indptr, rows, weights, vocab, n_rows)

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for a tokenized query (a repeated term counts again, as in bm25s)."""
        out = np.zeros(self.n_rows, dtype=np.float32)
        for t in tokens:
            i = self.ids.get(t)
            if i is None:
                continue
            s, e = self.indptr[i], self.indptr[i + 1]
            out[self.rows[s:e]] += self.weights[s:e]  # a term's rows are distinct: no lost updates
        return out
