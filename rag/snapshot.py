"""What a reader holds: one published generation (index, chunks, documents) loaded consistently."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag.errors import IndexError_
from rag.index import read_generation, to_device
from rag.store import Store
from rag.types import Chunk, Document

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """An immutable view of one generation: row i of `index` is `chunks[i]` of document `docs[...]`."""

    gen_id: str
    index: object
    chunks: list[Chunk]
    docs: dict[str, Document]  # doc_id -> document, with its status as of this generation
    current_rows: np.ndarray  # bool per row: its document is current in this generation

    @property
    def size(self) -> int:
        """Number of indexed chunks."""
        return len(self.chunks)


def database_path(home: Path) -> Path:
    """The SQLite file under a home folder."""
    return home / "gqa.sqlite"


def published_generation(home: Path) -> str | None:
    """The generation id readers should load now, or None when nothing is published."""
    db = database_path(home)
    if not db.exists():
        return None
    store = Store(db, readonly=True)
    try:
        return store.get_meta("current_generation")
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a database an ingest has only begun to create: nothing published
            return None
        raise
    finally:
        store.close()


def load_snapshot(home: Path, embedder_id: str, gen_id: str | None = None) -> Snapshot:
    """Load generation `gen_id` (default: the published one); raise IndexError_ with the fix when there is none."""
    gen_id = gen_id or published_generation(home)
    if not gen_id:
        raise IndexError_(f"nothing is published in {home}; run `guideline-qa ingest PATH` first")
    files, cpu_index = read_generation(home, gen_id, embedder_id)
    store = Store(database_path(home), readonly=True)
    try:
        by_id = store.chunks(files.chunk_ids)
        statuses: dict[str, str] = files.manifest.get("documents", {})
        docs = {d.doc_id: replace(d, status=statuses.get(d.doc_id, d.status)) for d in store.documents()
                if d.doc_id in statuses}
    finally:
        store.close()
    missing = [c for c in files.chunk_ids if c not in by_id]
    if missing:
        raise IndexError_(f"generation {gen_id} refers to {len(missing)} chunks missing from the database; re-ingest")
    chunks = [by_id[c] for c in files.chunk_ids]
    current = np.array([docs[c.doc_id].status == "current" for c in chunks], dtype=bool)
    log.info("loaded generation %s: %d chunks, %d documents", gen_id, len(chunks), len(docs))
    return Snapshot(gen_id, to_device(cpu_index), chunks, docs, current)
