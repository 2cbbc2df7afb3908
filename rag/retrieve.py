"""Retrieval over a snapshot: dense (FAISS) search with filters on status, family and document type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.index import search
from rag.snapshot import Snapshot
from rag.types import Hit


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return."""

    families: tuple[str, ...] = ()  # empty: every family
    doc_types: tuple[str, ...] = ()  # empty: every type
    include_superseded: bool = False

    def mask(self, snap: Snapshot) -> np.ndarray:
        """Boolean row mask over the snapshot's chunks."""
        keep = np.ones(snap.size, dtype=bool) if self.include_superseded else snap.current_rows.copy()
        withdrawn = {d.doc_id for d in snap.docs.values() if d.status == "withdrawn"}
        if self.include_superseded and withdrawn:  # a withdrawn document is never served, not even as history
            keep &= np.array([c.doc_id not in withdrawn for c in snap.chunks], dtype=bool)
        if self.families or self.doc_types:
            ok_docs = {
                d.doc_id for d in snap.docs.values()
                if (not self.families or d.family in self.families)
                and (not self.doc_types or d.doc_type in self.doc_types)
            }
            keep &= np.array([c.doc_id in ok_docs for c in snap.chunks], dtype=bool)
        return keep


def dense_ranking(snap: Snapshot, query_vec: np.ndarray, allowed: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, cosine) pairs of the best `k` allowed rows, best first."""
    if snap.size == 0 or not allowed.any():
        return []
    want = min(snap.size, max(4 * k, 64))
    while True:
        scores, rows = search(snap.index, query_vec, want)
        picked = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0 and allowed[r]]
        if len(picked) >= k or want >= snap.size:
            return picked[:k]
        want = min(snap.size, want * 4)


def to_hits(snap: Snapshot, ranked: list[tuple[int, float]]) -> list[Hit]:
    """Turn (row, score) pairs into Hits with 1-based ranks."""
    return [
        Hit(chunk=snap.chunks[r], doc=snap.docs[snap.chunks[r].doc_id], score=s, rank=i + 1)
        for i, (r, s) in enumerate(ranked)
    ]
