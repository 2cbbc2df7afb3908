"""The ingest pipeline: collect -> hash -> extract -> chunk -> embed -> publish.

One file's failure never stops the rest, and nothing published is lost.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.chunk import CHUNKER_VERSION, chunk_pages
from ingest.extract import BadDocument, Extracted, PdfBytes, extract_pdf
from ingest.naming import clean_title, derive_doc_type, derive_family, derive_version
from ingest.ocr import extract_with_ocr, mark_ocr
from ingest.versions import regroup, report_moves, resolve_versions
from rag import tables
from rag.config import Settings
from rag.embedder import Embedder
from rag.errors import GQAError, IndexError_
from rag.index import collect_garbage, generations_dir, new_index, read_generation, write_generation
from rag.lexical import row_text
from rag.storage import open_store
from rag.store import Store, dumps
from rag.types import Chunk, Document, Page, sha256_hex
from rag.units import context, units

log = logging.getLogger(__name__)

# on_progress(stage, done, total): stage is "pages" or "chunks"; the CLI and the app draw bars from it.
Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What an ingest did: the `--json` summary plus measurements."""

    added: list[dict] = field(default_factory=list)
    new_version: list[dict] = field(default_factory=list)
    unchanged: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    pages: int = 0
    chunks: int = 0
    embedded: int = 0  # chunks sent to the embedder (the rest came from the cache)
    units_embedded: int = 0  # quotable units (rag.units) sent to the embedder, for the answerer
    generation: str | None = None  # the published generation, None when nothing changed
    ray: dict = field(default_factory=dict)  # where `ingest --ray` ran its stages (ingest/ray_ingest.py)

    def to_json(self) -> dict:
        """The `ingest --json` shape."""
        return {
            "added": self.added, "new_version": self.new_version, "unchanged": self.unchanged,
            "failed": self.failed, "generation": self.generation, "pages": self.pages,
            "chunks": self.chunks, "embedded": self.embedded, "units_embedded": self.units_embedded,
            "chunker": CHUNKER_VERSION,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        } | ({"ray": self.ray} if self.ray else {})


@dataclass
class _Prepared:
    doc: Document
    pages: list[Page]
    chunks: list[Chunk]
    hashes: list[str]
    source: str
    explicit_family: bool = False  # --family given: it joins that family without a title check
    hint: Document | None = None  # same name-derived family but an unrelated title: a possible version


def collect_pdfs(paths: list[str | Path]) -> tuple[list[Path], list[dict]]:
    """Expand files and folders into PDF files; bad paths become failures that name them."""
    files: list[Path] = []
    failed: list[dict] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            failed.append({"file": str(raw), "error": "path does not exist"})
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() == ".pdf")
            if not found:
                failed.append({"file": str(raw), "error": "folder contains no PDF files (*.pdf)"})
            files += found
        elif p.suffix.lower() != ".pdf":
            failed.append({"file": str(raw), "error": f"not a PDF file name ({p.suffix or 'no extension'}); "
                                                      "only .pdf files are ingested"})
        else:
            files.append(p)
    return files, failed


# Homes this process is ingesting into: record locks (below) do not exclude threads of one process.
_ACTIVE: set[Path] = set()
_ACTIVE_GUARD = threading.Lock()


@contextmanager
def store_lock(settings: Settings) -> Iterator[None]:
    """One ingest at a time on the configured store: the home's lock file, or PostgreSQL's advisory lock
    (held by a connection of its own: a killed ingest's lock goes with its connection)."""
    if settings.database_url:
        from rag.pg.connect import advisory_lock

        with advisory_lock(settings.database_url):
            yield
    else:
        with ingest_lock(settings.home):
            yield


@contextmanager
def ingest_lock(home: Path) -> Iterator[None]:
    """One ingest at a time per home (readers never wait).

    A POSIX record lock (lockf), not flock: extraction workers are forked while the lock is held and
    share an flock, so after a SIGKILL the orphaned worker kept it and every later ingest failed. A
    record lock belongs to this process only and is released when it dies.
    """
    home.mkdir(parents=True, exist_ok=True)
    key = home.resolve()
    busy = GQAError(f"another ingest is running on {home}; wait for it to finish")
    with _ACTIVE_GUARD:
        if key in _ACTIVE:
            raise busy
        _ACTIVE.add(key)
    try:
        # opened only while this process holds no lock on it: closing any descriptor of the file
        # would drop the process's record lock
        with open(home / "ingest.lock", "w") as fh:
            try:
                fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another process holds it
                raise busy from None
            yield
    finally:
        with _ACTIVE_GUARD:
            _ACTIVE.discard(key)


def ingest(
    paths: list[str | Path], settings: Settings, embedder: Embedder, family: str | None = None,
    version: str | None = None, on_progress: Progress | None = None, extract_workers: int = 1,
) -> IngestReport:
    """Ingest PDFs and publish a new index generation atomically (nothing published is ever lost)."""
    def prepare(todo: Iterable[_New], store: Store, report: IngestReport, tick: Progress) -> list[_Prepared]:
        return _prepare_all(todo, settings, embedder, store, family, version, report, tick, extract_workers)

    return ingest_with(prepare, paths, settings, embedder, family, on_progress)


# prepare(new files, store, report, tick) -> the documents to publish, their vectors in the store's cache:
# extraction in local worker processes (ingest) or on a Ray cluster (ingest/ray_ingest.py).
Prepare = Callable[[Iterable["_New"], Store, IngestReport, Progress], list["_Prepared"]]


def ingest_with(prepare: Prepare, paths: list[str | Path], settings: Settings, embedder: Embedder,
                family: str | None = None, on_progress: Progress | None = None) -> IngestReport:
    """Lock the home, sort the files by their bytes, `prepare` the new ones, and publish them once."""
    report = IngestReport()
    tick = on_progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    with store_lock(settings):
        store = open_store(settings)
        try:
            collect_leftovers(settings, store)
            files, report.failed = collect_pdfs(paths)
            todo = _Triage(files, store, report)  # each file read and hashed as extraction asks for it
            prepared = prepare(todo, store, report, tick)
            _publish(prepared, settings, embedder, store, report, family)
            todo.settle(prepared)
        finally:
            store.close()
    report.seconds["total"] = time.perf_counter() - started
    return report


def collect_leftovers(settings: Settings, store: Store) -> None:
    """Remove what killed ingests left: temporary and never-published generation folders (any ingest, first).

    Runs under the ingest lock, so no writer of this home is alive; the published generation and the
    last `keep_generations` stay, and a temporary folder of a live process is never touched.
    """
    if store.shared:  # no generation folders: a generation is a row, kept
        return
    keep = store.generations()[-settings.keep_generations:]
    current = store.get_meta("current_generation")
    collect_garbage(settings.home, keep + ([current] if current else []))


def parser_failure(path: Path, exc: BaseException) -> str:
    """The one-line summary entry for a file that made the PDF reader fail.

    Example: (deep.pdf, RecursionError('maximum recursion depth exceeded')) -> 'deep.pdf: the PDF reader
    failed (RecursionError: maximum recursion depth exceeded); ...'
    """
    why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
    return (f"{path.name}: the PDF reader failed ({why}); the file is damaged or built in a way it cannot read: "
            "open it and save or print it to a new PDF, then ingest that")


# A new file: its path, the sha256 of its bytes, and those bytes (which are what is parsed).
_New = tuple[Path, str, PdfBytes]


class _Triage:
    """Reads each file once and sorts it by the hash of its bytes: the same name held already is
    `unchanged`; a copy under another name (held already, or earlier in this batch) is `unchanged` with
    `duplicate_of`. Iterating yields the new files with the bytes that were hashed, one at a time as
    extraction asks for them, so a batch's bytes are never all in memory at once.
    """

    def __init__(self, files: list[Path], store: Store, report: IngestReport) -> None:
        self.files, self.store, self.report = files, store, report
        self.new: dict[str, Path] = {}  # sha -> the batch's first file with these bytes
        self.copies: dict[str, list[Path]] = {}  # sha -> the batch's later files with them

    def __iter__(self) -> Iterator[_New]:
        # filter and map keep no reference to the last file's bytes (a generator's frame would)
        return filter(None, map(self._sort, self.files))

    def _sort(self, f: Path) -> _New | None:
        t = time.perf_counter()
        try:
            data = f.read_bytes()
        except OSError as exc:
            self.report.failed.append({"file": str(f), "error": f"cannot be read ({exc.strerror})"})
            return None
        sha = sha256_hex(data)
        self.report.seconds["hash"] = self.report.seconds.get("hash", 0.0) + time.perf_counter() - t
        if sha in self.new:  # reported by `settle`, once the first copy is published or has failed
            self.copies.setdefault(sha, []).append(f)
            return None
        known = self.store.document_by_sha(sha)
        if known is None:
            self.new[sha] = f
            return f, sha, PdfBytes(f.name, data)
        entry = {"file": str(f), "family": known.family, "version": known.version,
                 "chunker": self.store.chunker_version(known.doc_id), "doc_id": known.doc_id}
        self.report.unchanged.append(entry if known.file_name == f.name else {**entry, "duplicate_of": known.file_name})
        return None

    def settle(self, prepared: list[_Prepared]) -> None:
        """Report this batch's copies of new files: `unchanged` beside the ingested first copy, or
        failed with it when it could not be ingested."""
        held = {p.doc.sha256: p.doc for p in prepared}
        for sha, copies in self.copies.items():
            first, doc = self.new[sha], held.get(sha)
            for f in copies:
                if doc is None:
                    self.report.failed.append({"file": str(f), "error": f"{f.name}: identical bytes to {first.name}, "
                                                                        "which could not be ingested (see its entry)"})
                else:
                    self.report.unchanged.append({"file": str(f), "family": doc.family, "version": doc.version,
                                                  "chunker": CHUNKER_VERSION, "doc_id": doc.doc_id,
                                                  "duplicate_of": first.name})


def _prepare_all(
    todo: Iterable[_New], settings: Settings, embedder: Embedder, store: Store, family: str | None,
    version: str | None, report: IngestReport, tick: Progress, workers: int,
) -> list[_Prepared]:
    """Extract in worker processes while the main process chunks and embeds the file before."""
    prepared: list[_Prepared] = []
    jobs = _Extractions(todo, workers, settings.ocr)
    threads = _TorchThreads(workers if jobs.pool else 0, jobs.finished)
    try:
        pages_done = chunks_done = 0
        for path, sha, outcome, waited in jobs:
            if isinstance(outcome, BadDocument):
                report.failed.append({"file": str(path), "error": str(outcome)})
                continue
            if isinstance(outcome, Exception):  # a crash in one file must not stop the others
                # the summary names the file in one line; the traceback is for a developer, at DEBUG only
                log.debug("extracting %s failed", path, exc_info=outcome)
                report.failed.append({"file": str(path), "error": parser_failure(path, outcome)})
                continue
            ext, secs = outcome
            report.seconds["extract"] = report.seconds.get("extract", 0.0) + secs
            # the main process idle on extraction: near 0 when extraction overlaps the embedding
            report.seconds["wait"] = report.seconds.get("wait", 0.0) + waited
            pages_done += len(ext.pages)
            tick("pages", pages_done, 0)
            item = _prepare_one(path, sha, ext, settings, embedder, family, version, report)
            if item is None:
                continue
            _embed_missing(item, embedder, store, report, threads.poll)
            prepared.append(item)
            chunks_done += len(item.chunks)
            tick("chunks", chunks_done, 0)
    finally:
        threads.restore()
        jobs.close()
    return prepared


class _Extractions:
    """The new files' extractions in order, `workers` processes running ahead of the file handed out.

    A file's bytes go to a worker as it is read and are dropped when its extraction returns: at most
    workers + 1 files' bytes are held at once, whatever the batch (a 3,000-page PDF alone: one). One
    new file is extracted in this process: starting a worker for it would only cost time.
    """

    def __init__(self, todo: Iterable[_New], workers: int, ocr: bool = False) -> None:
        self.left, self.ocr = iter(todo), ocr  # ocr: pages without a text layer are read by OCR
        first = next(self.left, None)
        second = next(self.left, None) if first is not None and workers > 0 else None
        self.ahead = [x for x in (first, second) if x is not None]  # read to decide on the pool
        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent,
                                        initargs=(os.getpid(),)) if second is not None else None
        self.size = workers + 1 if self.pool else 1
        self.queue: deque[tuple[Path, str, Future | PdfBytes]] = deque()
        self.exhausted = False

    def _fill(self) -> None:
        while len(self.queue) < self.size and not self.exhausted:
            item = self.ahead.pop(0) if self.ahead else next(self.left, None)
            if item is None:
                self.exhausted = True
                return
            path, sha, src = item
            self.queue.append((path, sha, self.pool.submit(_timed_extract, src, self.ocr) if self.pool else src))

    def __iter__(self) -> Iterator[tuple[Path, str, tuple[Extracted, float] | Exception, float]]:
        """(path, sha, (extracted, seconds) or the exception it raised, seconds waited), in order."""
        while True:
            self._fill()
            if not self.queue:
                return
            path, sha, job = self.queue.popleft()
            waited = time.perf_counter()
            try:
                outcome: tuple[Extracted, float] | Exception = (
                    job.result() if isinstance(job, Future) else _timed_extract(job, self.ocr))
            except Exception as exc:  # noqa: BLE001 - reported for this file by the caller
                outcome = exc
            del job  # the file's bytes, no longer needed while its pages are chunked and embedded
            yield path, sha, outcome, time.perf_counter() - waited

    def finished(self) -> bool:
        """True once every file is extracted (nothing left to read, nothing running)."""
        return self.exhausted and all(isinstance(j, PdfBytes) or j.done() for _, _, j in self.queue)

    def close(self) -> None:
        """Stop the workers (pending extractions are cancelled)."""
        if self.pool:
            self.pool.shutdown(cancel_futures=True)


class _TorchThreads:
    """Lower torch's intra-op threads to the cores the extraction workers leave, until `restore`.

    On 2 cores, 2 torch threads beside a busy extraction worker are 3 runnable threads: the torch
    threads wait on each other at every operator while the worker holds a core (1 thread embedded
    1.2-1.9x more texts per CPU-second on the busy host, see bench/RESULTS.md). Torch is only touched
    when an embedder already loaded it. The setting is process-wide and applies to the calling thread
    (OpenMP), so the main loop polls between encode calls and restores it once every file is
    extracted.
    """

    def __init__(self, workers: int, finished: Callable[[], bool]) -> None:
        self.torch = sys.modules.get("torch") if workers > 0 else None
        self.finished = finished
        self.before = 0
        if self.torch is not None:
            self.before = self.torch.get_num_threads()
            self.torch.set_num_threads(max(1, min(self.before, (os.cpu_count() or 1) - workers)))

    def poll(self) -> None:
        """Restore the thread count once extraction is over: embedding the backlog gets every core."""
        if self.torch is not None and self.finished():
            self.restore()

    def restore(self) -> None:
        """Give torch back the thread count it had (idempotent)."""
        if self.torch is not None:
            self.torch.set_num_threads(self.before)
            self.torch = None


def exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    """In an extraction worker: exit once the ingest that started it is gone.

    A worker of a SIGKILLed ingest is adopted by init and would wait on its task queue for ever,
    holding its memory; a daemon thread notices the new parent and ends the process.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _timed_extract(src: PdfBytes, ocr: bool = False) -> tuple[Extracted, float]:
    t = time.perf_counter()
    ext = extract_with_ocr(src) if ocr else extract_pdf(src)
    return ext, time.perf_counter() - t


def _prepare_one(
    path: Path, sha: str, ext: Extracted, settings: Settings, embedder: Embedder, family: str | None,
    version: str | None, report: IngestReport,
) -> _Prepared | None:
    """Chunk one extracted document and describe it (its vectors are cached by _embed_missing)."""
    doc_id = sha[:16]
    title = clean_title(ext.title)
    t = time.perf_counter()
    chunks = mark_ocr(chunk_pages(doc_id, title, ext.pages, embedder.count_tokens, settings.max_seq_tokens,
                                  settings.chunk_tokens, settings.overlap_sentences), ext.pages)
    report.seconds["chunk"] = report.seconds.get("chunk", 0.0) + time.perf_counter() - t
    if not chunks:
        report.failed.append({"file": str(path), "error": f"{path.name}: no extractable text; OCR is not supported"})
        return None
    hashes = [sha256_hex(f"{embedder.id}\n{c.embed_text(title)}", 32) for c in chunks]
    report.pages += len(ext.pages)
    report.chunks += len(chunks)
    doc = Document(
        doc_id=doc_id, sha256=sha, file_name=path.name, title=title,
        family=family or derive_family(path.name),
        version=version or derive_version(path.name, ext.title, ext.meta_year),
        doc_type=derive_doc_type(path.name, ext.title), status="current", pages=len(ext.pages),
        chunks=len(chunks), ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return _Prepared(doc, ext.pages, chunks, hashes, str(path.resolve()), explicit_family=family is not None)


# Texts per encode call: the pipeline polls between calls (see _TorchThreads), and a crash keeps
# the slices already cached.
EMBED_SLICE = 128


def _embed_missing(item: _Prepared, embedder: Embedder, store: Store, report: IngestReport,
                   between: Callable[[], None]) -> None:
    """Make sure every chunk of `item`, and every quotable unit of its chunks, has its vector in the cache.

    The unit vectors (rag.units.context: sentence or row with its title and section) let the answerer
    score every unit of the passages it reads without embedding any at question time.
    `between` runs before each encode call.
    """
    t = time.perf_counter()
    missing = missing_texts(item, embedder, store, report)
    # sorted by length so that each slice holds similar lengths and its batches carry little padding
    todo = sorted(missing.items(), key=lambda hx: len(hx[1]))
    for i in range(0, len(todo), EMBED_SLICE):
        between()
        part = todo[i : i + EMBED_SLICE]
        vecs = embedder.embed([x for _, x in part])
        store.cache_vectors(dict(zip([h for h, _ in part], vecs, strict=True)), embedder.id)
    report.seconds["embed"] = report.seconds.get("embed", 0.0) + time.perf_counter() - t


def missing_texts(item: _Prepared, embedder: Embedder, store: Store, report: IngestReport,
                  pending: Container[str] = ()) -> dict[str, str]:
    """hash -> text of `item`'s chunks and quotable units that neither the cache nor `pending` (texts
    already due to be embedded) holds; counts them in `report`."""
    texts = [c.embed_text(item.doc.title) for c in item.chunks]
    cached = store.cached_vectors(sorted(set(item.hashes)), embedder.id, embedder.dim)
    missing = {h: x for h, x in zip(item.hashes, texts, strict=True) if h not in cached and h not in pending}
    unit_texts = {context(item.doc.title, c.section, u) for c in item.chunks for u in units(c)}
    unit_hashes = {sha256_hex(f"{embedder.id}\n{x}", 32): x for x in sorted(unit_texts)}
    unit_cached = store.cached_vectors(sorted(unit_hashes), embedder.id, embedder.dim)
    new_units = {h: x for h, x in unit_hashes.items()
                 if h not in unit_cached and h not in missing and h not in pending}
    report.units_embedded += len(new_units)
    report.embedded += len(missing)
    return {**missing, **new_units}


@dataclass
class Update:
    """What a publish changes besides adding documents."""

    statuses: dict[str, tuple[str, str | None]]  # doc_id -> (status, superseded_by)
    families: dict[str, str] = field(default_factory=dict)  # doc_id -> new family (--family on known bytes)
    event: dict | None = None  # a withdrawal or reinstatement, recorded in the same transaction
    recuts: list = field(default_factory=list)  # (doc_id, cut, pages, chunks, hashes): ingest/reindex.py


def _publish(prepared: list[_Prepared], settings: Settings, embedder: Embedder, store: Store,
             report: IngestReport, family: str | None = None) -> None:
    """Decide families and statuses, write the next index generation, and switch to it in one transaction."""
    t = time.perf_counter()
    existing, moved = regroup(store.documents(), report, family)
    docs, changes = resolve_versions(existing, prepared, report)
    report_moves(report, moved, existing, docs, changes)
    if not prepared and not changes and not moved:
        report.seconds["publish"] = time.perf_counter() - t
        return
    prev_id = store.get_meta("current_generation")
    prev_ids: list[str] = []
    index = None
    if prev_id:
        try:
            prev_ids, index = previous_rows(settings, store, prev_id, embedder.id)
        except GQAError as exc:
            if store.shared:  # no index to rebuild: the database's chunks carry one embedder's vectors
                raise
            log.warning("rebuilding the index from the embedding cache: %s", exc)  # e.g. another embedder
    rebuild = index is None and not store.shared  # PostgreSQL: the chunks carry their vectors, no index
    if not prev_id or rebuild:
        prev_ids = [k.chunk_id for d in existing for k in store.chunks_of(d.doc_id)]
    if rebuild:
        index = new_index(embedder.dim, len(prev_ids) + sum(len(p.chunks) for p in prepared))
        _add(index, store, store.content_hashes(), prev_ids, embedder)
    new_ids = [k.chunk_id for p in prepared for k in p.chunks]
    if index is not None:
        _add(index, store, {k.chunk_id: h for p in prepared for k, h in zip(p.chunks, p.hashes, strict=True)},
             new_ids, embedder)
    report.generation = publish_generation(
        settings, store, embedder.id, index, prev_ids + new_ids, docs,
        Update(changes, {doc_id: str(family) for doc_id in moved}),
        [(p.doc, p.pages, p.chunks, p.hashes, p.source) for p in prepared])
    report.seconds["publish"] = time.perf_counter() - t


def publish_generation(settings: Settings, store: Store, embedder_id: str, index, chunk_ids: list[str],
                       docs: list[Document], update: Update, new_docs: list | None = None) -> str:
    """Write generation files for `index` and `docs`' statuses, with the tables readers load instead of
    building (rag.tables), then switch readers to it in one transaction (Store.publish); returns its id.
    Ingest, withdraw, reinstate and reindex all publish here."""
    statuses = {d.doc_id: d.status for d in docs}
    key: dict = {"chunks": chunk_ids, "status": statuses, "embedder": embedder_id}
    if update.families or update.event:  # the same statuses can come back: a distinct id for each publish
        key["update"] = {"families": update.families, "event": update.event, "at": time.time_ns()}
    gen_id = sha256_hex(dumps(key), 16)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    fresh = [c for _, _, chunks, _, _ in new_docs or [] for c in chunks] + \
        [c for _, _, _, chunks, _ in update.recuts for c in chunks]
    rows_of = _row_texts(store, docs + [d for d, *_ in new_docs or []], fresh)
    gen = {"gen_id": gen_id, "created_at": now, "embedder_id": embedder_id, "vectors": len(chunk_ids),
           "documents": len(statuses)}
    if store.shared:  # PostgreSQL: the generation is a row (its tables made from rows_of), no folder
        store.publish(new_docs or [], update.statuses, {**gen, "chunk_ids": chunk_ids, "statuses": statuses,
                                                         "rows_of": rows_of}, CHUNKER_VERSION,
                      families=update.families, event=update.event, recuts=update.recuts)
        return gen_id
    prev = store.get_meta("current_generation")
    prev_dir = generations_dir(settings.home) / prev if prev else None

    def more(folder: Path) -> None:
        tables.write(folder, chunk_ids, rows_of, prev_dir, _chunk_ids(prev_dir))

    write_generation(settings.home, gen_id, index, chunk_ids,
                     {"gen_id": gen_id, "embedder_id": embedder_id, "dim": index.d, "created_at": now,
                      "vectors": len(chunk_ids), "documents": statuses}, more)
    store.publish(new_docs or [], update.statuses, gen, CHUNKER_VERSION,
                  families=update.families, event=update.event, recuts=update.recuts)
    collect_garbage(settings.home, store.generations()[-settings.keep_generations:])
    return gen_id


def previous_rows(settings: Settings, store: Store, gen_id: str, embedder_id: str) -> tuple[list[str], object]:
    """A published generation's chunk ids in row order, and its FAISS index (None in PostgreSQL, where
    the chunks carry their vectors); IndexError_ when it was built with another embedder."""
    if store.shared:
        built = store.generation_embedder(gen_id)
        if built != embedder_id:
            raise IndexError_(f"generation {gen_id} was built with embedder {built!r} but the configured one is "
                              f"{embedder_id!r}; set GQA_EMBED_MODEL back or ingest into a new database")
        return store.generation_chunk_ids(gen_id), None  # type: ignore[attr-defined]
    files, index = read_generation(settings.home, gen_id, embedder_id)
    return files.chunk_ids, index


def _row_texts(store: Store, docs: list[Document], fresh: list[Chunk]) -> Callable[[list[str]], list[tuple[str, str]]]:
    """rows_of(chunk_ids) -> (doc_id, BM25 row text) per chunk: chunks being published now from memory
    (they reach the store in the same transaction that publishes), the others from the store."""
    titles = {d.doc_id: d.title for d in docs}
    by_id = {k.chunk_id: k for k in fresh}

    def rows_of(ids: list[str]) -> list[tuple[str, str]]:
        stored = store.chunks([c for c in ids if c not in by_id])
        out = []
        for c in ids:
            k = by_id.get(c) or stored[c]
            out.append((k.doc_id, row_text(titles[k.doc_id], k.section, k.text)))
        return out

    return rows_of


def _chunk_ids(generation: Path | None) -> list[str] | None:
    """A generation's row ids, or None when it cannot be read (its tables are then not extended)."""
    try:
        return json.loads((generation / "chunk_ids.json").read_text()) if generation else None
    except (OSError, ValueError):
        return None


def _add(index, store: Store, hash_of: dict[str, str], chunk_ids: list[str], embedder: Embedder) -> None:
    """Append the cached vectors of `chunk_ids` to `index`, in order."""
    if not chunk_ids:
        return
    hashes = [hash_of[c] for c in chunk_ids]
    cached = store.cached_vectors(sorted(set(hashes)), embedder.id, embedder.dim)
    lost = [c for c, h in zip(chunk_ids, hashes, strict=True) if h not in cached]
    if lost:
        raise GQAError(f"{len(lost)} chunk vectors are missing from the embedding cache; re-ingest into a new GQA_HOME")
    index.add(np.stack([cached[h] for h in hashes]).astype(np.float32))
