"""The reader-side entry point: an embedder and the published snapshot, loaded once per process."""

from __future__ import annotations

import logging
import threading

from rag.config import Settings
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.retrieve import Filters, dense_ranking, to_hits
from rag.snapshot import Snapshot, load_snapshot, published_generation
from rag.types import Hit

log = logging.getLogger(__name__)


class Engine:
    """Holds the models and the published index; picks up a newly published generation on demand."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or SentenceTransformerEmbedder(
            settings.embed_model, settings.device, settings.embed_batch_size
        )
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The current published generation, reloaded if a newer one was published since."""
        latest = published_generation(self.settings.home)
        with self._lock:
            if self._snap is None or (latest and latest != self._snap.gen_id):
                self._snap = load_snapshot(self.settings.home, self.embedder.id)
            return self._snap

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        """The top-k passages for a question."""
        snap = self.snapshot()
        k = k or self.settings.top_k
        flt = filters or Filters()
        qvec = self.embedder.embed([question])
        return to_hits(snap, dense_ranking(snap, qvec, flt.mask(snap), k))
