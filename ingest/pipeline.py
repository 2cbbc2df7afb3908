"""The ingest pipeline: collect -> hash -> extract -> chunk -> embed -> publish.

One file's failure never stops the rest, and nothing published is lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.chunk import CHUNKER_VERSION, chunk_pages
from ingest.extract import BadDocument, Extracted, extract_pdf
from ingest.naming import clean_title, derive_doc_type, derive_family, derive_version
from ingest.versions import regroup, report_moves, resolve_versions
from rag.config import Settings
from rag.embedder import Embedder
from rag.errors import GQAError
from rag.index import collect_garbage, new_index, read_generation, write_generation
from rag.store import Store, dumps
from rag.types import Chunk, Document, Page, sha256_hex

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
    generation: str | None = None  # the published generation, None when nothing changed

    def to_json(self) -> dict:
        """The `ingest --json` shape."""
        return {
            "added": self.added, "new_version": self.new_version, "unchanged": self.unchanged,
            "failed": self.failed, "generation": self.generation, "pages": self.pages,
            "chunks": self.chunks, "embedded": self.embedded, "chunker": CHUNKER_VERSION,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


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
    report = IngestReport()
    tick = on_progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    with ingest_lock(settings.home):
        store = Store(settings.home / "gqa.sqlite")
        try:
            collect_leftovers(settings, store)
            files, report.failed = collect_pdfs(paths)
            todo = _triage(files, store, report)
            report.seconds["hash"] = time.perf_counter() - started
            prepared = _prepare_all(todo, settings, embedder, store, family, version, report, tick,
                                    extract_workers)
            _publish(prepared, settings, embedder, store, report, family)
        finally:
            store.close()
    report.seconds["total"] = time.perf_counter() - started
    return report


def collect_leftovers(settings: Settings, store: Store) -> None:
    """Remove what killed ingests left: temporary and never-published generation folders (any ingest, first).

    Runs under the ingest lock, so no writer of this home is alive; the published generation and the
    last `keep_generations` stay, and a temporary folder of a live process is never touched.
    """
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


def _triage(files: list[Path], store: Store, report: IngestReport) -> list[tuple[Path, str]]:
    """Hash every file; identical bytes are a no-op (same name) or a duplicate (another name)."""
    todo: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for f in files:
        try:
            sha = sha256_hex(f.read_bytes())
        except OSError as exc:
            report.failed.append({"file": str(f), "error": f"cannot be read ({exc.strerror})"})
            continue
        known = store.document_by_sha(sha)
        if sha in seen:
            report.failed.append({"file": str(f), "error": f"duplicate of {seen[sha].name} in this batch "
                                                           "(identical bytes); skipped"})
        elif known and known.file_name == f.name:
            report.unchanged.append({"file": str(f), "family": known.family, "version": known.version,
                                     "chunker": store.chunker_version(known.doc_id), "doc_id": known.doc_id})
        elif known:
            report.failed.append({"file": str(f), "error": f"duplicate of already ingested {known.file_name} "
                                                           "(identical bytes); skipped"})
        else:
            todo.append((f, sha))
        seen[sha] = f
    return todo


def _prepare_all(
    todo: list[tuple[Path, str]], settings: Settings, embedder: Embedder, store: Store, family: str | None,
    version: str | None, report: IngestReport, tick: Progress, workers: int,
) -> list[_Prepared]:
    """Extract in a worker process while the main process chunks and embeds the previous file."""
    prepared: list[_Prepared] = []
    if not todo:
        return prepared
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 0 and len(todo) > 1 else None
    futures: list[Future | None] = [None] * len(todo)
    threads = _TorchThreads(workers if pool else 0, futures)
    try:
        if pool:
            futures[:] = [pool.submit(_timed_extract, f) for f, _ in todo]
        pages_done = chunks_done = 0
        for (path, sha), fut in zip(todo, futures, strict=True):
            waited = time.perf_counter()
            try:
                ext, secs = fut.result() if fut else _timed_extract(path)
            except BadDocument as exc:
                report.failed.append({"file": str(path), "error": str(exc)})
                continue
            except Exception as exc:  # noqa: BLE001 - a crash in one file must not stop the others
                # the summary names the file in one line; the traceback is for a developer, at DEBUG only
                log.debug("extracting %s failed", path, exc_info=True)
                report.failed.append({"file": str(path), "error": parser_failure(path, exc)})
                continue
            report.seconds["extract"] = report.seconds.get("extract", 0.0) + secs
            # the main process idle on extraction: near 0 when extraction overlaps the embedding
            report.seconds["wait"] = report.seconds.get("wait", 0.0) + time.perf_counter() - waited
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
        if pool:
            pool.shutdown(cancel_futures=True)
    return prepared


class _TorchThreads:
    """Lower torch's intra-op threads to the cores the extraction workers leave, until `restore`.

    On 2 cores, 2 torch threads beside a busy extraction worker are 3 runnable threads: the torch
    threads wait on each other at every operator while the worker holds a core (1 thread embedded
    1.2-1.9x more texts per CPU-second on the busy host, see bench/RESULTS.md). Torch is only touched
    when an embedder already loaded it. The setting is process-wide and applies to the calling thread
    (OpenMP), so the main loop polls between encode calls and restores it once every extraction
    future is done.
    """

    def __init__(self, workers: int, futures: list[Future | None]) -> None:
        self.torch = sys.modules.get("torch") if workers > 0 else None
        self.futures = futures
        self.before = 0
        if self.torch is not None:
            self.before = self.torch.get_num_threads()
            self.torch.set_num_threads(max(1, min(self.before, (os.cpu_count() or 1) - workers)))

    def poll(self) -> None:
        """Restore the thread count once extraction is over: embedding the backlog gets every core."""
        if self.torch is not None and all(f is None or f.done() for f in self.futures):
            self.restore()

    def restore(self) -> None:
        """Give torch back the thread count it had (idempotent)."""
        if self.torch is not None:
            self.torch.set_num_threads(self.before)
            self.torch = None


def _timed_extract(path: Path) -> tuple[Extracted, float]:
    t = time.perf_counter()
    ext = extract_pdf(path)
    return ext, time.perf_counter() - t


def _prepare_one(
    path: Path, sha: str, ext: Extracted, settings: Settings, embedder: Embedder, family: str | None,
    version: str | None, report: IngestReport,
) -> _Prepared | None:
    """Chunk one extracted document and describe it (its vectors are cached by _embed_missing)."""
    doc_id = sha[:16]
    title = clean_title(ext.title)
    t = time.perf_counter()
    chunks = chunk_pages(doc_id, title, ext.pages, embedder.count_tokens, settings.max_seq_tokens,
                         settings.chunk_tokens, settings.overlap_sentences)
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
    """Make sure every chunk of `item` has its vector in the cache; `between` runs before each encode call."""
    t = time.perf_counter()
    texts = [c.embed_text(item.doc.title) for c in item.chunks]
    cached = store.cached_vectors(sorted(set(item.hashes)), embedder.id, embedder.dim)
    missing = {h: x for h, x in zip(item.hashes, texts, strict=True) if h not in cached}
    # sorted by length so that each slice holds similar lengths and its batches carry little padding
    todo = sorted(missing.items(), key=lambda hx: len(hx[1]))
    for i in range(0, len(todo), EMBED_SLICE):
        between()
        part = todo[i : i + EMBED_SLICE]
        vecs = embedder.embed([x for _, x in part])
        store.cache_vectors(dict(zip([h for h, _ in part], vecs, strict=True)), embedder.id)
    report.seconds["embed"] = report.seconds.get("embed", 0.0) + time.perf_counter() - t
    report.embedded += len(missing)


@dataclass
class Update:
    """What a publish changes besides adding documents."""

    statuses: dict[str, tuple[str, str | None]]  # doc_id -> (status, superseded_by)
    families: dict[str, str] = field(default_factory=dict)  # doc_id -> new family (--family on known bytes)
    event: dict | None = None  # a withdrawal or reinstatement, recorded in the same transaction


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
            files, index = read_generation(settings.home, prev_id, embedder.id)
            prev_ids = files.chunk_ids
        except GQAError as exc:  # e.g. another embedder: rebuild everything from the cache
            log.warning("rebuilding the index from the embedding cache: %s", exc)
            index, prev_ids = None, []
    if index is None:
        prev_ids = [k.chunk_id for d in existing for k in store.chunks_of(d.doc_id)]
        index = new_index(embedder.dim, len(prev_ids) + sum(len(p.chunks) for p in prepared))
        _add(index, store, store.content_hashes(), prev_ids, embedder)
    new_ids = [k.chunk_id for p in prepared for k in p.chunks]
    _add(index, store, {k.chunk_id: h for p in prepared for k, h in zip(p.chunks, p.hashes, strict=True)},
         new_ids, embedder)
    report.generation = publish_generation(
        settings, store, embedder.id, index, prev_ids + new_ids, docs,
        Update(changes, {doc_id: str(family) for doc_id in moved}),
        [(p.doc, p.pages, p.chunks, p.hashes, p.source) for p in prepared])
    report.seconds["publish"] = time.perf_counter() - t


def publish_generation(settings: Settings, store: Store, embedder_id: str, index, chunk_ids: list[str],
                       docs: list[Document], update: Update, new_docs: list | None = None) -> str:
    """Write generation files for `index` and `docs`' statuses, then switch readers to it in one
    transaction (Store.publish); returns its id. Ingest, withdraw and reinstate all publish here."""
    statuses = {d.doc_id: d.status for d in docs}
    key: dict = {"chunks": chunk_ids, "status": statuses, "embedder": embedder_id}
    if update.families or update.event:  # the same statuses can come back: a distinct id for each publish
        key["update"] = {"families": update.families, "event": update.event, "at": time.time_ns()}
    gen_id = sha256_hex(dumps(key), 16)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    write_generation(settings.home, gen_id, index, chunk_ids,
                     {"gen_id": gen_id, "embedder_id": embedder_id, "dim": index.d, "created_at": now,
                      "vectors": len(chunk_ids), "documents": statuses})
    store.publish(new_docs or [], update.statuses,
                  {"gen_id": gen_id, "created_at": now, "embedder_id": embedder_id,
                   "vectors": len(chunk_ids), "documents": len(statuses)}, CHUNKER_VERSION,
                  families=update.families, event=update.event)
    collect_garbage(settings.home, store.generations()[-settings.keep_generations:])
    return gen_id


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
