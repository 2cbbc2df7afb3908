"""What a reader holds: one published generation (index, row tables, documents) loaded consistently;
passage texts are read from the database when a question needs them."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag import tables
from rag.errors import IndexError_
from rag.index import read_generation, to_device
from rag.store import Store
from rag.types import Chunk, Document

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """An immutable view of one generation: row i of `index` is `chunks[i]` of document `docs[...]`.

    `row_doc[i]` is the position in `doc_order` of row i's document: filters are array lookups over
    it (doc_mask), never a loop over chunks. Both are computed from `chunks` when not given.
    """

    gen_id: str
    index: object
    chunks: Sequence[Chunk]
    docs: dict[str, Document]  # doc_id -> document, with its status as of this generation
    current_rows: np.ndarray  # bool per row: its document is current in this generation
    row_doc: np.ndarray | None = None
    doc_order: tuple[str, ...] = ()
    generation: Path | None = None  # the generation folder, when loaded from one
    lexical: object = None  # the generation's lexical side when its store ranks it (rag.pg.reader.PgLexical)
    opener: Callable[[], Store] | None = None  # a read-only store of its pages, when not <home>/gqa.sqlite
    _masks: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.row_doc is None:
            self.doc_order = tuple(dict.fromkeys(c.doc_id for c in self.chunks))
            code = {d: i for i, d in enumerate(self.doc_order)}
            self.row_doc = np.fromiter((code[c.doc_id] for c in self.chunks), np.int32, len(self.chunks))

    @property
    def size(self) -> int:
        """Number of indexed chunks."""
        return len(self.chunks)

    def doc_mask(self, keep: Callable[[Document], bool], key: object = None) -> np.ndarray:
        """Bool per row: `keep` holds for its document. `key` names a predicate whose mask is kept."""
        if key is not None and key in self._masks:
            return self._masks[key]
        ok = np.array([d in self.docs and keep(self.docs[d]) for d in self.doc_order] or [False], dtype=bool)
        mask = ok[self.row_doc] if self.size else np.zeros(0, dtype=bool)
        if key is not None:
            self._masks[key] = mask
        return mask


class StoredChunks(Sequence[Chunk]):
    """A generation's chunks by row, read from the database on first use (a few thousand kept).

    A reader never holds every passage's text: a question reads the few dozen it shows or scores.
    """

    KEEP = 4096

    def __init__(self, db: Path | None, chunk_ids: list[str], opener: Callable[[], Store] | None = None) -> None:
        self.db, self.ids = db, chunk_ids
        # how to open a read-only store (default: the SQLite file `db`; rag.pg.reader passes its own)
        self.opener: Callable[[], Store] = opener or (lambda: Store(self.db, readonly=True))  # type: ignore[arg-type]
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, Chunk] = OrderedDict()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        with self._lock:
            if row in self._kept:
                self._kept.move_to_end(row)
                return self._kept[row]
        return self.many([row])[0]

    def many(self, rows: list[int]) -> list[Chunk]:
        """The chunks of `rows`, in one read for those not kept."""
        with self._lock:
            missing = [r for r in dict.fromkeys(rows) if r not in self._kept]
            if missing:
                if self._store is None:
                    self._store = self.opener()
                found = self._store.chunks([self.ids[r] for r in missing])
                for r in missing:
                    if self.ids[r] not in found:
                        raise IndexError_(f"chunk {self.ids[r]} of the published generation is missing from "
                                          f"{self.db or 'the database'}; re-ingest")
                    self._kept[r] = found[self.ids[r]]
            out = [self._kept[r] for r in rows]
            for r in rows:
                self._kept.move_to_end(r)
            while len(self._kept) > self.KEEP:
                self._kept.popitem(last=False)
            return out

    def __iter__(self) -> Iterator[Chunk]:
        """Every chunk in row order, read in batches (for pages that list all sections)."""
        step = 2000
        with self._lock:
            if self._store is None:
                self._store = self.opener()
            store = self._store
        for start in range(0, len(self.ids), step):
            part = self.ids[start:start + step]
            with self._lock:
                found = store.chunks(part)
            yield from (found[c] for c in part)


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
    files, cpu_index = read_generation(home, gen_id, embedder_id, mapped=True)
    store = Store(database_path(home), readonly=True)
    try:
        statuses: dict[str, str] = files.manifest.get("documents", {})
        docs = {d.doc_id: replace(d, status=statuses.get(d.doc_id, d.status)) for d in store.documents()
                if d.doc_id in statuses}
        rows = tables.read_rows(files.path, len(files.chunk_ids))
        if rows is None:  # a generation written before row tables: read every chunk once, as before
            by_id = store.chunks(files.chunk_ids)
            missing = [c for c in files.chunk_ids if c not in by_id]
            if missing:
                raise IndexError_(f"generation {gen_id} refers to {len(missing)} chunks missing from the "
                                  "database; re-ingest")
            snap = Snapshot(gen_id, to_device(cpu_index), [by_id[c] for c in files.chunk_ids], docs,
                            np.zeros(0, dtype=bool), generation=files.path)
        else:
            absent = [d for d in rows[1] if d not in docs]
            if absent:
                raise IndexError_(f"generation {gen_id} refers to {len(absent)} documents missing from the "
                                  "database; re-ingest")
            snap = Snapshot(gen_id, to_device(cpu_index), StoredChunks(database_path(home), files.chunk_ids),
                            docs, np.zeros(0, dtype=bool), rows[0], rows[1], files.path)
    finally:
        store.close()
    snap.current_rows = snap.doc_mask(lambda d: d.status == "current")
    log.info("loaded generation %s: %d chunks, %d documents", gen_id, snap.size, len(docs))
    return snap
