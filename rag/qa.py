"""The answering chain used by the CLI, the app and the evaluation: retrieve -> answer -> cite -> verify."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from rag.config import Settings
from rag.embedder import Embedder
from rag.engine import Engine
from rag.errors import ConfigError
from rag.extractive import score_candidates, select
from rag.extractive import candidates as extract_candidates
from rag.retrieve import Filters
from rag.snapshot import database_path
from rag.store import Store
from rag.text import is_verbatim
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The indexed documents do not answer this question."
GENERATORS = ("extractive", "openai", "llamacpp")


class QA:
    """Models and index loaded once; `answer()` is safe to call from several threads."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 engine: Engine | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.engine = engine or Engine(self.settings, embedder)
        self._generators: dict[str, object] = {}

    @property
    def index_version(self) -> str:
        """The published generation this process answers from."""
        return self.engine.snapshot().gen_id

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        """Hybrid retrieval (dense + BM25, fused by reciprocal rank)."""
        return self.engine.retrieve(_check_question(question), k, filters)

    def answer(self, question: str, filters: Filters | None = None, generator: str | None = None,
               k: int | None = None) -> Answer:
        """Answer from the published documents only, citing each sentence, or abstain."""
        question = _check_question(question)
        name = generator or self.settings.generator
        if name not in GENERATORS:
            raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
        t0 = time.perf_counter()
        qvec = self.engine.embedder.embed([question])
        hits = self.engine.retrieve(question, k, filters, query_vec=qvec)
        t1 = time.perf_counter()
        removed: tuple[dict, ...] = ()
        if name == "extractive":
            text, cites, abstained = self._extractive(question, hits, qvec)
        else:
            from rag.llm import llm_answer

            text, cites, abstained, removed = llm_answer(question, hits, self._generator(name), self._quote_page)
        if abstained:
            text, cites = ABSTAIN_TEXT, []
        t2 = time.perf_counter()
        return Answer(
            question=question, text=text, citations=tuple(cites), hits=tuple(hits), abstained=abstained,
            generator=name, removed=removed, index_version=self.engine.snapshot().gen_id,
            timings_ms={"retrieve": round((t1 - t0) * 1000, 1), "answer": round((t2 - t1) * 1000, 1),
                        "total": round((t2 - t0) * 1000, 1)},
        )

    def _extractive(self, question: str, hits: list[Hit], qvec) -> tuple[str, list[Citation], bool]:
        scored = score_candidates(question, extract_candidates(hits), self.engine.embedder, qvec[0])
        chosen, abstained = select(scored)
        if abstained:
            return "", [], True
        cites: list[Citation] = []
        parts: list[str] = []
        for n, c in enumerate(chosen, start=1):
            cites.append(self._quote_page(n, c.hit, c.text))
            parts.append(f"{c.text} [{n}]")
        return " ".join(parts), cites, False

    def _quote_page(self, n: int, hit: Hit, quote: str) -> Citation:
        """A citation whose page is the one (of the passage's span) that holds the quote verbatim."""
        chunk = hit.chunk
        if chunk.page_end > chunk.page:
            store = Store(database_path(self.settings.home), readonly=True)
            try:
                for page in range(chunk.page, chunk.page_end + 1):
                    if is_verbatim(quote, store.page_text(chunk.doc_id, page) or ""):
                        if page != chunk.page:
                            from dataclasses import replace

                            hit = replace(hit, chunk=replace(chunk, page=page, page_end=page))
                        break
            finally:
                store.close()
        return Citation(n=n, hit=hit, quote=quote)

    def _generator(self, name: str):
        if name not in self._generators:
            from rag.llm import make_generator

            self._generators[name] = make_generator(name, self.settings)
        return self._generators[name]


def _check_question(question: str) -> str:
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
