"""The answering chain used by the CLI, the app and the evaluation: understand -> retrieve -> rerank ->
answer -> verify -> cite (the seams: rag/answering.py)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from functools import lru_cache

from rag.answer_config import AnswerConfig
from rag.answering import Answerer, EvidenceReranker, ExtractiveAnswerer, LLMAnswerer, Reranker, UnitScores
from rag.config import Settings
from rag.embedder import Embedder
from rag.engine import Engine, View
from rag.errors import ConfigError
from rag.query import Query, understand
from rag.retrieve import Filters
from rag.store import Store
from rag.text import is_verbatim
from rag.types import Answer, Citation, Hit

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
        """Hybrid retrieval (dense + BM25, fused by reciprocal rank), re-ranked by best unit."""
        question = check_question(question)
        view = self.engine.view()
        query = self.understand(question, view)
        query, filters = with_history(query, filters, view)
        qvec = self.engine.embedder.embed([question])
        cfg = config or self.config
        return self._ranked(view, query, k, filters, qvec, cfg, EvidenceReranker(self._scores(cfg), qvec[0]))

    def understand(self, question: str, view: View | None = None) -> Query:
        """The question parsed once (rag.query), against the documents of `view` (default: the current)."""
        return understand(question, (view or self.engine.view()).library)

    def _ranked(self, view: View, query: Query, k: int | None, filters: Filters | None, qvec,
                cfg: AnswerConfig, reranker: Reranker) -> list[Hit]:
        """The fused hits (BM25 also searching the synonyms the library uses), re-ranked, the top k."""
        k = k or self.settings.top_k
        known = view.lexical.df.__contains__
        # a drug's other names, and the short forms of long forms the question spells out ('HeFH')
        short = view.lexical.abbreviating(frozenset(query.terms))
        lexical_text = " ".join([query.text, *(e for e in query.expansions if known(e)), *sorted(short)])
        # more passages are read than shown: the re-ranking brings the answer up
        hits = self.engine.retrieve(query.text, max(k, cfg.passages_read), filters, query_vec=qvec, view=view,
                                    lexical_text=lexical_text)
        ranked = reranker.rerank(query, hits[:cfg.passages_read], view)
        rest = hits[cfg.passages_read:]
        return (ranked + [replace(h, rank=len(ranked) + i + 1) for i, h in enumerate(rest)])[:k]

    def answer(self, question: str, filters: Filters | None = None, generator: str | None = None,
               k: int | None = None, config: AnswerConfig | None = None) -> Answer:
        """Answer from the published documents only, citing each statement, or abstain.

        understand -> retrieve -> rerank -> answer -> verify -> cite. The whole answer reads one View of
        the library (taken first): a publish landing meanwhile changes nothing for it, and
        `index_version` names the generation it was answered from.
        `config`: the answering constants (default: this QA's; bench/cv.py passes each candidate).
        """
        question = check_question(question)
        name = generator or self.settings.generator
        if name not in GENERATORS:
            raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
        cfg = config or self.config
        t0 = time.perf_counter()
        view = self.engine.view()
        query = self.understand(question, view)
        query, filters = with_history(query, filters, view)
        qvec = self.engine.embedder.embed([question])
        scores = self._scores(cfg)  # the units scored for re-ranking are read again by the answerer
        hits = self._ranked(view, query, k, filters, qvec, cfg, EvidenceReranker(scores, qvec[0]))
        t1 = time.perf_counter()
        pages = view.pages()
        try:
            draft = self._answerer(name, scores, qvec).answer(
                query, hits, view, pages, lambda n, hit, quote: quote_page(n, hit, quote, pages))
        finally:
            pages.close()
        text, cites = (ABSTAIN_TEXT, ()) if draft.abstained else (draft.text, draft.citations)
        t2 = time.perf_counter()
        return Answer(
            question=question, text=text, citations=tuple(cites), hits=tuple(hits), abstained=draft.abstained,
            generator=name, removed=draft.removed, index_version=view.gen_id, lead=1 if cites else None,
            timings_ms={"retrieve": round((t1 - t0) * 1000, 1), "answer": round((t2 - t1) * 1000, 1),
                        "total": round((t2 - t0) * 1000, 1)},
        )

    def _scores(self, cfg: AnswerConfig) -> UnitScores:
        return UnitScores(self.engine.embedder, cfg, self.engine.common)

    def _answerer(self, name: str, scores: UnitScores, qvec) -> Answerer:
        if name == "extractive":
            return ExtractiveAnswerer(scores, qvec[0])
        return LLMAnswerer(name, self._generator(name))


    def _generator(self, name: str):
        if name not in self._generators:
            from rag.llm import make_generator

            self._generators[name] = make_generator(name, self.settings)
        return self._generators[name]


def with_history(query: Query, filters: Filters | None, view: View) -> tuple[Query, Filters | None]:
    """A question that names an earlier version of a document it is about ('moved from the 2022 warfarin
    label to the 2025 version') also reads that version, as one more subject; other superseded
    versions stay out of the search.

    Example: 'Did the 2022 warfarin label's storage change?' -> subjects and filters gain the 2022 label
    """
    if filters is not None and filters.include_superseded:
        return query, filters
    families = {d.family for d in view.snap.docs.values() if d.doc_id in query.subjects}
    named = set(re.findall(r"\b(?:19|20)\d\d\b", query.text))
    earlier = tuple(sorted(d.doc_id for d in view.snap.docs.values() if d.status == "superseded"
                           and d.family in families and d.version in named))
    if not earlier:
        return query, filters
    filters = replace(filters or Filters(), also=(*(filters.also if filters else ()), *earlier))
    return replace(query, subjects=query.subjects | set(earlier)), filters


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
