"""The seams of the answering chain: a Reranker orders the fused passages, an Answerer writes the answer.

rag.qa.QA runs understand -> retrieve -> rerank -> answer -> verify -> cite, with one View of the library
per question. The defaults: EvidenceReranker (passages by their best unit's evidence score, rag.extractive)
and ExtractiveAnswerer (a lead quote and at most two supports); LLMAnswerer prompts a configured model
and verifies its reply, without the extractive unit selection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from rag.answer_config import AnswerConfig
from rag.embedder import Embedder
from rag.engine import View
from rag.extractive import Candidate, candidates, rerank, score_candidates, select, unsupported_terms
from rag.query import Query
from rag.store import Store
from rag.text import quoted_on_page, squash
from rag.types import Citation, Hit, sha256_hex
from rag.units import quotable

log = logging.getLogger(__name__)

# Longest section title shown before a list item or row (list_heading); longer ones are sentences.
HEADING_WORDS = 8
# (n, hit, quote) -> the citation on the page of the hit that holds the quote (rag.qa.quote_page)
QuotePage = Callable[[int, Hit, str], Citation]


@dataclass(frozen=True)
class Draft:
    """What an answerer gives back: the text with its [n] markers, the citations, whether it abstained."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    removed: tuple[dict, ...] = field(default_factory=tuple)  # generated sentences verification dropped

    @classmethod
    def abstain(cls) -> Draft:
        return cls("", (), True)


class Reranker(Protocol):
    def rerank(self, query: Query, hits: list[Hit], view: View) -> list[Hit]:
        """The hits in a better order, ranks renumbered from 1."""
        ...


class Answerer(Protocol):
    name: str

    def answer(self, query: Query, hits: list[Hit], view: View, pages: Store, quote: QuotePage) -> Draft:
        """An answer quoting only `hits` (the passages shown), or an abstention."""
        ...


class UnitScores:
    """The evidence score of every quotable unit of the passages read, from the vectors ingest made.

    One per question: the re-ranker scores the passages read, and the answerer reads the scores of
    those it shows from here rather than scoring them again (Candidate.hit is the hit as given).
    """

    def __init__(self, embedder: Embedder, config: AnswerConfig, common: Callable[[str], bool]) -> None:
        self.embedder, self.config, self.common = embedder, config, common
        self._scored: dict[str, list[Candidate]] = {}  # by chunk id, for the one question being answered

    def __call__(self, query: Query, hits: list[Hit], view: View, qvec: np.ndarray) -> list[Candidate]:
        new = [h for h in hits if h.chunk.chunk_id not in self._scored]
        if new:
            store = view.pages()
            try:
                scored = score_candidates(query, candidates(new), self.embedder, view.lexical.idf,
                                          qvec, self.config, lambda texts: self._made(store, texts),
                                          view.lexical.df.__contains__, view.lexical.spelled_out)
            finally:
                store.close()
            for h in new:
                self._scored[h.chunk.chunk_id] = []
            for c in scored:
                self._scored[c.hit.chunk.chunk_id].append(c)
        return [replace(c, hit=h) for h in hits for c in self._scored[h.chunk.chunk_id]]

    def _made(self, store: Store, texts: list[str]) -> dict[str, np.ndarray]:
        """The vectors ingest made for these unit texts (rag.units.context), by text."""
        keys = {sha256_hex(f"{self.embedder.id}\n{t}", 32): t for t in texts}
        found = store.cached_vectors(sorted(keys), self.embedder.id, self.embedder.dim)
        return {keys[h]: v for h, v in found.items()}


class EvidenceReranker:
    """Passages ordered by the evidence score of their best unit (rag.extractive.rerank)."""

    def __init__(self, scores: UnitScores, qvec: np.ndarray) -> None:
        self.scores, self.qvec = scores, qvec

    def rerank(self, query: Query, hits: list[Hit], view: View) -> list[Hit]:
        return rerank(hits, self.scores(query, hits, view, self.qvec), query, self.scores.config)


class ExtractiveAnswerer:
    """A lead quote that answers and at most two supports, each cited; or an abstention."""

    name = "extractive"

    def __init__(self, scores: UnitScores, qvec: np.ndarray) -> None:
        self.scores, self.qvec = scores, qvec

    def answer(self, query: Query, hits: list[Hit], view: View, pages: Store, quote: QuotePage) -> Draft:
        cfg, lexical, common = self.scores.config, view.lexical, self.scores.common
        if unsupported_terms(query, hits, lambda p: lexical.prefix_df.get(p, 0), lexical.size, common, cfg):
            return Draft.abstain()
        chosen, abstained = select(query, self.scores(query, hits, view, self.qvec), lexical.idf, common, cfg)
        if abstained:
            return Draft.abstain()
        cites: list[Citation] = []
        parts: list[str] = []
        for c in chosen:
            cite = quote(len(cites) + 1, c.hit, c.text)
            page = pages.page_text(cite.hit.doc.doc_id, cite.hit.chunk.page, cite.hit.chunk.cut)
            header = (cite.hit.chunk.table or {}).get("header") or []
            if not page or not quoted_on_page(cite.quote, page, header):
                # a guard: chunk text is page text (a continued table's row: its cells, under its header)
                log.warning("dropped a quote not found verbatim on %s p.%d: %.80s", cite.hit.doc.file_name,
                            cite.hit.chunk.page, cite.quote)
                continue
            if cite.quote != c.text and not quotable(cite.quote, c.kind, c.piece):
                # a unit run over a page break is quoted by its part on the cited page, which may be a
                # title or a fragment by itself
                continue
            cites.append(cite)
            parts.append(f"{list_heading(c)}{c.shown()}{strength(c)} [{cite.n}]")
        if not cites:
            return Draft.abstain()
        return Draft(" ".join(parts), tuple(cites), False)  # the lead first: Answer.lead is citation 1


def list_heading(c: Candidate) -> str:
    """The heading a list item or table row is filed under, to show before it ('CONTRAINDICATIONS: '):
    'Acute or chronic metabolic acidosis' says what it is only under its heading. The heading is the
    document's own words: the item's list stem where it has one, else the chunk's section (its number
    left out); '' for sentences and records.

    Example: an item 'Severe renal impairment (eGFR below 30 mL/min/1.73 m2)' of section
        '4 CONTRAINDICATIONS' -> 'CONTRAINDICATIONS: '
    """
    if c.kind not in ("item", "row"):
        return ""
    if c.kind == "item" and c.head:  # its list's stem: 'Lisinopril tablets are contraindicated in patients with:'
        return f"{c.head} "
    last = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", c.hit.chunk.section.split(">")[-1].strip())
    if not last or len(last.split()) > HEADING_WORDS or squash(last) in squash(c.text):
        return ""
    return f"{last}: "


def strength(c: Candidate) -> str:
    """A recommendation's strength and certainty of evidence, as the record states them, to show after
    it when its quote does not already say them (a long record is cut at words, its grading last).

    Example: a record quoted as 'WHO suggests ... a two-step diagnostic process.' with fields
        {'strength': 'conditional', 'certainty': 'low'} -> ' (conditional recommendation; certainty of evidence: low)'
    """
    fields = c.hit.chunk.recommendation if c.kind == "recommendation" else None
    grade, _, direction = (fields or {}).get("strength", "").partition(" ")  # 'conditional for' (WHO malaria)
    if not grade or squash(f"{grade} recommendation") in squash(c.text):
        return ""
    certainty = f"; certainty of evidence: {fields['certainty']}" if fields and fields.get("certainty") else ""
    return f" ({grade} recommendation{' ' + direction if direction else ''}{certainty})"


class LLMAnswerer:
    """A configured language model answers from the passages; verification keeps only cited, supported
    sentences (rag.verify). No extractive unit selection is paid for."""

    def __init__(self, name: str, generator: object) -> None:
        self.name, self.generator = name, generator

    def answer(self, query: Query, hits: list[Hit], view: View, pages: Store, quote: QuotePage) -> Draft:
        from rag.llm import llm_answer

        text, cites, abstained, removed = llm_answer(query.text, hits, self.generator, quote)  # type: ignore[arg-type]
        return Draft(text, tuple(cites), abstained, removed)
