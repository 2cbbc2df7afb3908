"""The answering chain used by the CLI, the app and the evaluation: retrieve -> answer -> cite -> verify."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import lru_cache

import numpy as np

from rag.answer_config import AnswerConfig
from rag.config import Settings
from rag.embedder import Embedder
from rag.engine import Engine, View
from rag.errors import ConfigError
from rag.extractive import candidates as extract_candidates
from rag.extractive import named_subjects, rerank, score_candidates, select, unsupported_terms
from rag.retrieve import Filters
from rag.store import Store
from rag.text import is_verbatim
from rag.types import Answer, Citation, Hit, sha256_hex

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The indexed documents do not answer this question."
GENERATORS = ("extractive", "openai", "llamacpp")


class QA:
    """Models and index loaded once; `answer()` is safe to call from several threads."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 engine: Engine | None = None, config: AnswerConfig | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.config = config or AnswerConfig()
        self.engine = engine or Engine(self.settings, embedder)
        self._generators: dict[str, object] = {}

    @property
    def index_version(self) -> str:
        """The published generation this process answers from now."""
        return self.engine.view().gen_id

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 config: AnswerConfig | None = None) -> list[Hit]:
        """Hybrid retrieval (dense + BM25, fused by reciprocal rank), re-ranked by best sentence."""
        question = check_question(question)
        view = self.engine.view()
        qvec = self.engine.embedder.embed([question])
        hits, _ = self._ranked(view, question, k, filters, qvec, config or self.config)
        return hits

    def _ranked(self, view: View, question: str, k: int | None, filters: Filters | None, qvec,
                cfg: AnswerConfig) -> tuple[list[Hit], list]:
        """Fused hits re-ranked by the evidence score of their best sentence, and the scored sentences."""
        k = k or self.settings.top_k
        # more passages are read than shown: the re-ranking by best sentence brings the answer up
        hits = self.engine.retrieve(question, max(k, cfg.passages_read), filters, query_vec=qvec, view=view)
        store = view.pages()
        try:
            scored = score_candidates(question, extract_candidates(hits, cfg), self.engine.embedder,
                                      view.lexical.idf, qvec[0], cfg, lambda texts: self._made(store, texts))
        finally:
            store.close()
        subject = named_subjects(question, view.titles, self._common)
        ranked = rerank(hits, scored, subject, cfg)[:k]
        by_id = {h.chunk.chunk_id: h for h in ranked}  # answers quote only the passages shown
        return ranked, [replace(c, hit=by_id[c.hit.chunk.chunk_id]) for c in scored if c.hit.chunk.chunk_id in by_id]

    def answer(self, question: str, filters: Filters | None = None, generator: str | None = None,
               k: int | None = None, config: AnswerConfig | None = None) -> Answer:
        """Answer from the published documents only, citing each sentence, or abstain.

        The whole answer reads one View of the library (taken first): a publish landing meanwhile
        changes nothing for it, and `index_version` names the generation it was answered from.
        `config`: the answering constants (default: this QA's; bench/cv.py passes each candidate).
        """
        question = check_question(question)
        name = generator or self.settings.generator
        if name not in GENERATORS:
            raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
        t0 = time.perf_counter()
        view = self.engine.view()
        qvec = self.engine.embedder.embed([question])
        cfg = config or self.config
        hits, scored = self._ranked(view, question, k, filters, qvec, cfg)
        t1 = time.perf_counter()
        removed: tuple[dict, ...] = ()
        pages = view.pages()
        try:
            if name == "extractive":
                text, cites, abstained = self._extractive(view, question, hits, scored, pages, cfg)
            else:
                from rag.llm import llm_answer

                text, cites, abstained, removed = llm_answer(
                    question, hits, self._generator(name), lambda n, hit, quote: quote_page(n, hit, quote, pages))
        finally:
            pages.close()
        if abstained:
            text, cites = ABSTAIN_TEXT, []
        t2 = time.perf_counter()
        return Answer(
            question=question, text=text, citations=tuple(cites), hits=tuple(hits), abstained=abstained,
            generator=name, removed=removed, index_version=view.gen_id,
            timings_ms={"retrieve": round((t1 - t0) * 1000, 1), "answer": round((t2 - t1) * 1000, 1),
                        "total": round((t2 - t0) * 1000, 1)},
        )

    def _made(self, store: Store, texts: list[str]) -> dict[str, np.ndarray]:
        """The vectors ingest made for these unit texts (rag.units.context), by text."""
        embedder = self.engine.embedder
        keys = {sha256_hex(f"{embedder.id}\n{t}", 32): t for t in texts}
        found = store.cached_vectors(sorted(keys), embedder.id, embedder.dim)
        return {keys[h]: v for h, v in found.items()}

    def _common(self, term: str) -> bool:
        """One word piece: an everyday English word."""
        return self.engine.embedder.count_tokens([term])[0] == 1

    def _extractive(self, view: View, question: str, hits: list[Hit], scored: list, pages: Store,
                    cfg: AnswerConfig) -> tuple[str, list[Citation], bool]:
        lexical = view.lexical
        common = self._common
        if unsupported_terms(question, hits, lambda p: lexical.prefix_df.get(p, 0), lexical.size, common, cfg):
            return "", [], True
        chosen, abstained = select(question, scored, lexical.idf, common, view.titles, cfg)
        if abstained:
            return "", [], True
        cites: list[Citation] = []
        parts: list[str] = []
        for c in chosen:
            cite = quote_page(len(cites) + 1, c.hit, c.text, pages)
            page = pages.page_text(cite.hit.doc.doc_id, cite.hit.chunk.page, cite.hit.chunk.cut)
            if not page or not is_verbatim(cite.quote, page):  # a guard: chunk text is page text
                log.warning("dropped a quote not found verbatim on %s p.%d: %.80s", cite.hit.doc.file_name,
                            cite.hit.chunk.page, cite.quote)
                continue
            cites.append(cite)
            parts.append(f"{c.shown()} [{cite.n}]")
        if not cites:
            return "", [], True
        return " ".join(parts), cites, False

    def _generator(self, name: str):
        if name not in self._generators:
            from rag.llm import make_generator

            self._generators[name] = make_generator(name, self.settings)
        return self._generators[name]


def quote_page(n: int, hit: Hit, quote: str, pages: Store) -> Citation:
    """A citation on the one page (of the passage's span) that holds the quote verbatim.

    A sentence that runs over a page break is quoted up to the break (or from it), so that the
    quote is always verbatim on the page the citation names. `pages`: an open reader (View.pages).
    """
    chunk = hit.chunk
    if chunk.page_end <= chunk.page:
        return Citation(n=n, hit=hit, quote=quote)
    # the pages of the chunk's own cut: a later `reindex` may have re-read them differently
    span = {p.number: p for p in pages.pages(chunk.doc_id, chunk.cut) if chunk.page <= p.number <= chunk.page_end}
    for page in span.values():
        if is_verbatim(quote, page.text):
            return Citation(n=n, hit=_on_page(hit, page.number, page.label), quote=quote)
    words = quote.split()
    first, last = span.get(chunk.page), span.get(chunk.page_end)
    for cut in range(len(words) - 1, 0, -1):  # longest part on the first page, else on the last
        head, tail = " ".join(words[:cut]), " ".join(words[len(words) - cut:])
        if first and is_verbatim(head, first.text):
            return Citation(n=n, hit=_on_page(hit, first.number, first.label), quote=head)
        if last and is_verbatim(tail, last.text):
            return Citation(n=n, hit=_on_page(hit, last.number, last.label), quote=tail)
    return Citation(n=n, hit=hit, quote=quote)


def _on_page(hit: Hit, page: int, label: str) -> Hit:
    """The hit with its chunk narrowed to one page and that page's printed label."""
    c = hit.chunk
    if (c.page, c.page_end) == (page, page):
        return hit
    return replace(hit, chunk=replace(c, page=page, page_end=page, page_label=label))


def check_question(question: str) -> str:
    """The question with its whitespace collapsed; ConfigError when it is empty or over 2000 characters."""
    q = " ".join((question or "").split())
    if not q:
        raise ConfigError("the question is empty; type a question")
    if len(q) > 2000:
        raise ConfigError(f"the question is {len(q)} characters long; keep it under 2000")
    return q


@lru_cache(maxsize=4)
def _shared(settings: Settings) -> QA:
    return QA(settings)


def answer(question: str, filters: Filters | None = None, generator: str | None = None,
           settings: Settings | None = None) -> Answer:
    """Answer with a process-wide QA (models and index load once per process and settings)."""
    return _shared(settings or Settings.from_env()).answer(question, filters, generator)
