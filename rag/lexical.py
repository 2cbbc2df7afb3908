"""The lexical side of a generation: BM25 (rag.bm25) plus the term statistics the answerer weighs
question words by, and the abbreviations each document defines. Built once, when a generation is
published (`write_tables`, extending the previous generation's tables when rows were only appended),
and loaded by readers from the generation folder (`Lexical.load`), never rebuilt per process.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np

from rag.abbreviations import definitions
from rag.bm25 import BM25, Postings, tokenize
from rag.text import PREFIX, stems  # PREFIX: the letters prefix_df counts

log = logging.getLogger(__name__)

FOLDER = "lexical"  # inside a generation folder
TABLES_VERSION = 1


def row_text(title: str, section: str, text: str) -> str:
    """What BM25 and the term statistics read of a row: `title section text`."""
    return f"{title} {section} {text}"


class TermStats:
    """Rows holding each stem (rag.text.stems) and each stem's first PREFIX letters: additive over rows."""

    def __init__(self, size: int = 0, df: Counter[str] | None = None, prefix_df: Counter[str] | None = None) -> None:
        self.size, self.df, self.prefix_df = size, df or Counter(), prefix_df or Counter()

    def add(self, texts: Iterable[str]) -> None:
        for t in texts:
            words = set(stems(t))
            self.df.update(words)
            self.prefix_df.update({w[:PREFIX] for w in words})
            self.size += 1

    def to_json(self) -> dict:
        return {"size": self.size, "df": self.df, "prefix_df": self.prefix_df}

    @classmethod
    def from_json(cls, d: dict) -> TermStats:
        return cls(d["size"], Counter(d["df"]), Counter(d["prefix_df"]))


class Lexical:
    """BM25 over every row of a generation (`title | section | text`), with the same row order as FAISS."""

    def __init__(self, bm25: BM25, terms: TermStats, abbreviations: dict[str, dict[str, frozenset[str]]]) -> None:
        self.bm25, self.abbreviations = bm25, abbreviations
        self._long_forms: set[tuple[str, frozenset[str]]] | None = None  # abbreviating's, made once
        self.size, self.df, self.prefix_df = terms.size, terms.df, terms.prefix_df

    @classmethod
    def build(cls, rows: list[tuple[str, str]]) -> Lexical:
        """In memory, from (doc_id, row text) per row: for a generation written before tables existed,
        and for benchmarks."""
        bm25 = BM25.build(Postings.empty().extend(tokenize([t for _, t in rows])))
        terms = TermStats()
        terms.add(t for _, t in rows)
        return cls(bm25, terms, _abbreviations(rows))

    @classmethod
    def of(cls, snap) -> Lexical:
        """Built in memory over a snapshot's rows (`Lexical.build`)."""
        return cls.build([(c.doc_id, row_text(snap.docs[c.doc_id].title, c.section, c.text)) for c in snap.chunks])

    @classmethod
    def load(cls, generation: Path, n_rows: int) -> Lexical | None:
        """The tables a publish wrote into a generation folder, memory-mapped; None when it has none."""
        folder = generation / FOLDER
        try:
            meta = json.loads((folder / "terms.json").read_text())
            if meta.get("version") != TABLES_VERSION or meta["size"] != n_rows:
                return None
            vocab = tuple(json.loads((folder / "vocab.json").read_text()))
            abbr = json.loads((folder / "abbreviations.json").read_text())
        except (OSError, ValueError, KeyError):
            return None
        return cls(BM25.load(folder, vocab, n_rows), TermStats.from_json(meta),
                   {d: {k: frozenset(v) for k, v in a.items()} for d, a in abbr.items()})

    def spelled_out(self, doc_id: str, words: frozenset[str]) -> frozenset[str]:
        """The stems of the long forms of the abbreviations among `words` that the document defines.

        Example: ('<atorvastatin label>', {'hefh', 'dose'}) -> {'heterozygou', 'familial', 'hypercholesterolemia'}
        """
        defined = self.abbreviations.get(doc_id)
        if not defined:
            return frozenset()
        return frozenset(s for w in words if w in defined for s in defined[w])

    def abbreviating(self, words: AbstractSet[str]) -> frozenset[str]:
        """The abbreviations some document defines whose long form's stems are all among `words`, so
        that BM25 also finds the passages that write only the short form.

        Example: {'heterozygou', 'familial', 'hypercholesterolemia', 'dose'} -> {'hefh'}
        """
        if self._long_forms is None:
            self._long_forms = {(short, long) for defined in self.abbreviations.values()
                                for short, long in defined.items() if len(long) >= 2}
        return frozenset(short for short, long in self._long_forms if long <= words)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stem (rare terms weigh more; unknown terms the most)."""
        return math.log(1 + (self.size + 1) / (self.df.get(term, 0) + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query."""
        return self.bm25.scores(tokenize([query])[0])

    def ranking(self, query: str, allowed: np.ndarray | None, k: int) -> list[tuple[int, float]]:
        """(row, score) of the best `k` allowed rows (None: all) with a positive score, best first."""
        s = self.scores(query)
        if allowed is not None:
            s = np.where(allowed, s, 0.0)
        k = min(k, int((s > 0).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [(int(r), float(s[r])) for r in top]


def _abbreviations(rows: Iterable[tuple[str, str]]) -> dict[str, dict[str, frozenset[str]]]:
    """The abbreviations each document's rows define ('HeFH'), so its passages match the long form."""
    by_doc: dict[str, list[str]] = {}
    for doc_id, text in rows:
        by_doc.setdefault(doc_id, []).append(text)
    return {d: definitions(ts) for d, ts in by_doc.items()}


def write_tables(folder: Path, chunk_ids: list[str], rows_of: Callable[[list[str]], list[tuple[str, str]]],
                 previous: Path | None = None, previous_ids: list[str] | None = None) -> None:
    """Write a generation's lexical tables into `folder` (a generation folder being written).

    rows_of(chunk_ids) -> (doc_id, row text) per chunk. When the previous generation's rows are a prefix
    of these (a publish that adds documents or changes only statuses), only the new rows are tokenized
    and read; otherwise (a re-cut) every row is.
    """
    out = folder / FOLDER
    out.mkdir()
    base = _previous(previous, previous_ids, chunk_ids)
    if base is None:
        postings, terms, abbr, new_ids = Postings.empty(), TermStats(), {}, chunk_ids
    else:
        postings, terms, abbr = base
        new_ids = chunk_ids[postings.rows:]
    rows = rows_of(new_ids) if new_ids else []
    postings = postings.extend(tokenize([t for _, t in rows]))
    add_rows(terms, abbr, rows)
    postings.save(out)
    BM25.build(postings).save(out)
    (out / "abbreviations.json").write_text(json.dumps(abbr))
    (out / "terms.json").write_text(json.dumps({"version": TABLES_VERSION, **terms.to_json()}))


def add_rows(terms: TermStats, abbr: dict[str, dict[str, list[str]]], rows: list[tuple[str, str]]) -> None:
    """Extend a generation's term statistics and abbreviations (as stored: JSON lists) by new rows
    (doc_id, row text), in place. A new document's definitions are added; documents already tabled keep
    theirs (their rows did not change)."""
    terms.add(t for _, t in rows)
    fresh = _abbreviations(r for r in rows if r[0] not in abbr)
    abbr.update({d: {k: sorted(v) for k, v in a.items()} for d, a in fresh.items()})


def _previous(previous: Path | None, previous_ids: list[str] | None, chunk_ids: list[str]):
    """The previous generation's postings, term statistics and abbreviations, when its rows are a
    prefix of `chunk_ids` and its tables are readable; else None."""
    if previous is None or not previous_ids or chunk_ids[:len(previous_ids)] != previous_ids:
        return None
    folder = previous / FOLDER
    try:
        meta = json.loads((folder / "terms.json").read_text())
        if meta.get("version") != TABLES_VERSION or meta["size"] != len(previous_ids):
            return None
        postings = Postings.load(folder)
        abbr = json.loads((folder / "abbreviations.json").read_text())
    except (OSError, ValueError, KeyError) as exc:
        log.info("lexical tables of %s unreadable (%s): tabling every row", previous.name, exc)
        return None
    return postings, TermStats.from_json(meta), abbr


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
