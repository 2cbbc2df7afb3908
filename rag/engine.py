"""The reader-side entry point: an embedder and the published library, one immutable View per question."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embedder import Embedder
from rag.embedder import from_settings as embedder_from
from rag.errors import IndexError_
from rag.lexical import Lexical, rrf
from rag.query import Library
from rag.retrieve import Filters, dense_ranking, to_hits
from rag.snapshot import Snapshot, database_path
from rag.storage import load_snapshot, published
from rag.store import Store
from rag.types import Hit

log = logging.getLogger(__name__)

# Loads tried when the generation named as current was collected before it could be read (several
# publishes landed during one load); each try follows the newest generation.
LOAD_TRIES = 3


@dataclass(frozen=True)
class View:
    """One published generation as a question reads it: index and chunks, BM25 tables, and what subject
    matching needs of its documents (rag.query.Library).

    Everything a question uses comes from one View taken once at its start, so a publish landing
    mid-question changes nothing for that question (its rows, BM25 scores and documents always agree).
    Pages are read from the database by document id and cut (rag.types.Chunk.cut): a cut's pages are
    written once, with its chunks, and never change (`reindex` adds a new cut beside them), so any
    connection reads the pages a View's chunks were cut from.
    """

    snap: Snapshot
    lexical: Lexical
    home: Path
    library: Library = field(default=Library(()))  # the current documents, as understand() reads them

    @property
    def gen_id(self) -> str:
        """The published generation this view holds (the answer's `index_version`)."""
        return self.snap.gen_id

    def pages(self) -> Store:
        """A read-only connection for page texts (close it when done)."""
        if self.snap.opener is not None:  # a store other than <home>/gqa.sqlite (PostgreSQL)
            return self.snap.opener()
        return Store(database_path(self.home), readonly=True)


def make_view(snap: Snapshot, home: Path, common: Callable[[str], bool] = lambda t: False) -> View:
    """A View over a loaded snapshot: its lexical tables (mapped from the generation folder, where the
    publish wrote them; built here only for a generation written before them) and its current
    documents' Library.

    `common`: whether a word is everyday English (Engine.common), so names no document's subject.
    """
    library = Library.build((d for d in snap.docs.values() if d.status == "current"), common)
    lexical = snap.lexical if isinstance(snap.lexical, Lexical) else \
        (Lexical.load(snap.generation, snap.size) if snap.generation else None)
    if lexical is None:
        log.info("generation %s has no lexical tables: building them in memory", snap.gen_id)
        lexical = Lexical.of(snap)
    return View(snap, lexical, home, library)


class Engine:
    """Holds the models and the latest View; picks up a newly published generation on demand."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or embedder_from(settings)
        self._view: View | None = None
        # held only by the thread loading a new generation; questions never wait on it once a view exists
        self._loading = threading.Lock()

    def view(self) -> View:
        """The view to answer one question from: the published generation, loaded if it is new.

        While one thread loads a new generation, the others keep answering from the previous view
        (they are not blocked); only a process's very first question waits for a load.
        """
        current = self._view
        latest = published(self.settings)
        if current is not None and (latest is None or latest == current.gen_id):
            return current
        if not self._loading.acquire(blocking=current is None):
            assert current is not None
            return current
        try:
            if self._view is None or self._view.gen_id != published(self.settings):
                self._view = self._load(self._view)
            return self._view
        finally:
            self._loading.release()

    def _load(self, previous: View | None) -> View:
        """Load the published generation; follow newer ones if it was collected meanwhile."""
        for attempt in range(LOAD_TRIES):
            gen_id = published(self.settings)
            try:
                view = make_view(load_snapshot(self.settings, self.embedder.id, gen_id), self.settings.home,
                                 self.common)
            except IndexError_ as exc:
                newer = published(self.settings)
                if newer and newer != gen_id and attempt + 1 < LOAD_TRIES:
                    continue  # superseded and collected while we read it: load the newer one
                if previous is not None:
                    log.warning("keeping generation %s: the new one cannot be loaded (%s)", previous.gen_id, exc)
                    return previous
                raise
            return view
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def common(self, term: str) -> bool:
        """One word piece of the embedder's vocabulary: an everyday English word."""
        return self.embedder.count_tokens([term])[0] == 1

    def snapshot(self) -> Snapshot:
        """The snapshot of the current view (for pages that list documents)."""
        return self.view().snap

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 query_vec: np.ndarray | None = None, view: View | None = None,
                 lexical_text: str | None = None) -> list[Hit]:
        """The top-k passages for a question: dense and BM25 rankings fused by reciprocal rank.

        `view`: the question's view (taken now when not given); every row number refers to it.
        `lexical_text`: what BM25 searches for, when not the question itself (the question with the
        synonyms of the drugs it names: rag.query.Query.expansions).
        """
        view = view or self.view()
        snap = view.snap
        k = k or self.settings.top_k
        allowed = (filters or Filters()).mask(snap)
        qvec = self.embedder.embed([question]) if query_vec is None else query_vec
        depth = max(50, 3 * k)  # candidates per ranking before fusion
        dense = dense_ranking(snap, qvec, allowed, depth)
        lexical_rank = view.lexical.ranking(lexical_text or question, allowed, depth)
        return to_hits(snap, rrf([dense, lexical_rank], k, self.settings.rrf_k))
