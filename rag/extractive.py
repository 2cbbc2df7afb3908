"""The default answerer: picks the source sentences and table rows that answer the question, cites each.

It adds no clinical words of its own; every sentence of the answer is a verbatim quote of a passage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.embedder import Embedder
from rag.text import content_words, split_sentences, squash
from rag.types import Hit

# Calibrated on ../shared/eval/dev.jsonl (see bench/RESULTS.md, "Abstention"): below this best
# evidence score the documents are taken not to answer the question.
ABSTAIN_BELOW = 0.50
# Sentences within this margin of the best one are included too (multi-part answers).
KEEP_MARGIN = 0.10
MAX_SENTENCES = 4
MAX_PER_PASSAGE = 2
PASSAGES_READ = 6


@dataclass(frozen=True)
class Candidate:
    """One sentence (or table row) of a retrieved passage, with its evidence score."""

    hit: Hit
    text: str
    position: int
    score: float = 0.0
    cosine: float = 0.0
    overlap: float = 0.0


def candidates(hits: list[Hit]) -> list[Candidate]:
    """Sentences of prose passages and rows of table passages, in reading order."""
    out: list[Candidate] = []
    for hit in hits[:PASSAGES_READ]:
        c = hit.chunk
        if c.kind == "table":
            lines = [ln for ln in c.text.split("\n") if ln.strip()]
            head = 2 if len(lines) > 2 else 1  # caption and header travel with every part of a table
            units = lines[head:] or lines
        else:
            units = split_sentences(c.text)
        for i, u in enumerate(units):
            if len(u.split()) >= 3:
                out.append(Candidate(hit, u.strip(), i))
    return out


def score_candidates(question: str, cands: list[Candidate], embedder: Embedder,
                     query_vec: np.ndarray | None = None) -> list[Candidate]:
    """Evidence score = semantic similarity to the question + share of its content words present."""
    if not cands:
        return []
    q = embedder.embed([question])[0] if query_vec is None else query_vec.reshape(-1)
    ctx = [_context(c) for c in cands]
    sims = embedder.embed(ctx) @ q
    qwords = set(_stems(question))
    scored = []
    for c, sim in zip(cands, sims, strict=True):
        present = set(_stems(f"{c.hit.doc.title} {c.hit.chunk.section} {c.text}"))
        overlap = len(qwords & present) / len(qwords) if qwords else 0.0
        prior = 0.03 / c.hit.rank
        scored.append(Candidate(c.hit, c.text, c.position, 0.55 * float(sim) + 0.45 * overlap + prior,
                                float(sim), overlap))
    return scored


def _context(c: Candidate) -> str:
    """What is embedded for a candidate: the passage's title and section give it its subject."""
    return f"{c.hit.doc.title} | {c.hit.chunk.section}\n{c.text}"


def _stems(text: str) -> list[str]:
    return [w[:-1] if len(w) > 4 and w.endswith("s") else w for w in content_words(text)]


def select(scored: list[Candidate]) -> tuple[list[Candidate], bool]:
    """The sentences to answer with, in reading order, and whether to abstain instead."""
    if not scored:
        return [], True
    best = max(scored, key=lambda c: c.score)
    if best.score < ABSTAIN_BELOW:
        return [], True
    chosen: list[Candidate] = []
    per_hit: dict[str, int] = {}
    for c in sorted(scored, key=lambda c: -c.score):
        if len(chosen) >= MAX_SENTENCES or c.score < best.score - KEEP_MARGIN:
            break
        key = c.hit.chunk.chunk_id
        if per_hit.get(key, 0) >= MAX_PER_PASSAGE or _duplicate(c, chosen):
            continue
        per_hit[key] = per_hit.get(key, 0) + 1
        chosen.append(c)
    chosen.sort(key=lambda c: (c.hit.rank, c.position))
    return chosen, False


def _duplicate(c: Candidate, chosen: list[Candidate]) -> bool:
    s = squash(c.text)
    return any(s in squash(o.text) or squash(o.text) in s for o in chosen)
