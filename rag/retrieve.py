"""Retrieval over a snapshot: dense (FAISS) search with filters on status, family and document type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.index import search, search_allowed
from rag.snapshot import Snapshot
from rag.types import Document, Hit


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return."""

    families: tuple[str, ...] = ()  # empty: every family
    doc_types: tuple[str, ...] = ()  # empty: every type
    include_superseded: bool = False
    also: tuple[str, ...] = ()  # doc_ids admitted though superseded (an earlier version a question names)

    def mask(self, snap: Snapshot) -> np.ndarray:
        """Boolean row mask over the snapshot's chunks: a lookup of each row's document (Snapshot.doc_mask)."""
        return snap.doc_mask(self.admits, key=self)

    def admits(self, d: Document) -> bool:
        """Whether this filter lets a document's passages through (a withdrawn one never, not even as history)."""
        history = self.include_superseded or d.doc_id in self.also
        status = d.status == "current" or (d.status != "withdrawn" and history)
        return status and (not self.families or d.family in self.families) and \
            (not self.doc_types or d.doc_type in self.doc_types)


def dense_ranking(snap: Snapshot, query_vec: np.ndarray, allowed: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, cosine) pairs of the best `k` allowed rows, best first.

    The index skips rows not allowed (a faiss ID selector: superseded and filtered-out rows cost no
    over-fetching); where the index cannot take one (a GPU index), it over-fetches and drops them.
    """
    if snap.size == 0 or not allowed.any():
        return []
    in_sql = getattr(snap.index, "ranking", None)  # a store that searches in SQL (rag.pg.reader.PgIndex)
    if in_sql is not None:
        return in_sql(query_vec, allowed, k)
    if allowed.all():
        scores, rows = search(snap.index, query_vec, k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    found = search_allowed(snap.index, query_vec, allowed, k)
    if found is not None:
        return found
    want = min(snap.size, max(4 * k, 64))
    while True:
        scores, rows = search(snap.index, query_vec, want)
        picked = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0 and allowed[r]]
        if len(picked) >= k or want >= snap.size:
            return picked[:k]
        want = min(snap.size, want * 4)


def to_hits(snap: Snapshot, ranked: list[tuple[int, float]]) -> list[Hit]:
    """Turn (row, score) pairs into Hits with 1-based ranks (their chunks read in one go)."""
    rows = [r for r, _ in ranked]
    many = getattr(snap.chunks, "many", None)
    chunks = many(rows) if many else [snap.chunks[r] for r in rows]
    return [Hit(chunk=c, doc=snap.docs[c.doc_id], score=s, rank=i + 1)
            for i, (c, (_, s)) in enumerate(zip(chunks, ranked, strict=True))]
