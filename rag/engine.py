"""The reader-side entry point: an embedder and the published snapshot, loaded once per process."""

from __future__ import annotations

import logging
import threading

from rag.config import Settings
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.lexical import Lexical, rrf
from rag.retrieve import Filters, dense_ranking, to_hits
from rag.snapshot import Snapshot, load_snapshot, published_generation
from rag.types import Hit

log = logging.getLogger(__name__)


class Engine:
    """Holds the models and the published index; picks up a newly published generation on demand."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or SentenceTransformerEmbedder(
            settings.embed_model, settings.device, settings.embed_batch_size,
            query_runtime=settings.query_runtime, cache_dir=settings.home / "models",
        )
        self._snap: Snapshot | None = None
        self._lexical: Lexical | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The current published generation, reloaded if a newer one was published since."""
        latest = published_generation(self.settings.home)
        with self._lock:
            if self._snap is None or (latest and latest != self._snap.gen_id):
                snap = load_snapshot(self.settings.home, self.embedder.id)
                self._lexical = Lexical(snap)
                self._snap = snap
            return self._snap

    def lexical(self) -> Lexical:
        """The BM25 index of the current snapshot."""
        self.snapshot()
        assert self._lexical is not None
        return self._lexical

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 query_vec=None) -> list[Hit]:
        """The top-k passages for a question: dense and BM25 rankings fused by reciprocal rank."""
        snap = self.snapshot()
        lexical = self.lexical()
        k = k or self.settings.top_k
        allowed = (filters or Filters()).mask(snap)
        qvec = self.embedder.embed([question]) if query_vec is None else query_vec
        depth = max(50, 3 * k)  # candidates per ranking before fusion
        dense = dense_ranking(snap, qvec, allowed, depth)
        lexical_rank = lexical.ranking(question, allowed, depth)
        return to_hits(snap, rrf([dense, lexical_rank], k, self.settings.rrf_k))
