"""`guideline-qa reindex`: re-cut, in place, the documents an older release cut, from their source files.

A document cut by an older chunker (Store.chunker_version < CHUNKER_VERSION) is read again from the
file it was ingested from, checked against its sha256, extracted and chunked by this release with
ingest.pipeline's stages, and written as a new *cut* beside the old one (rag.store keys pages and
chunks by their cut). One new generation naming the new cuts' chunks is published in one transaction
(ingest.pipeline.publish_generation): readers are served the old generation until it commits, and a
reader still holding the old one afterwards reads the old cut's chunks and pages, which are never
changed. A SIGKILL at any moment therefore leaves the old generation serving. Only texts not in the
embedding cache are embedded. A document whose file is missing, unreadable or changed keeps its
chunks and is named in the summary; the others go on. Known limit: old cuts are kept for ever (a
reader may hold any published generation), so each re-cut adds the re-cut documents' size again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.chunk import CHUNKER_VERSION
from ingest.extract import BadDocument, PdfBytes
from ingest.pipeline import (
    IngestReport,
    Progress,
    Update,
    _add,
    _embed_missing,
    _Extractions,
    _prepare_one,
    _Prepared,
    _TorchThreads,
    collect_leftovers,
    parser_failure,
    previous_rows,
    publish_generation,
    store_lock,
)
from rag.backup import source_file
from rag.config import Settings
from rag.embedder import Embedder
from rag.errors import ConfigError, GQAError
from rag.index import new_index
from rag.storage import exists, open_store
from rag.store import Store
from rag.types import Document, sha256_hex

log = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    """What a reindex did: the `reindex --json` summary."""

    recut: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # kept their chunks; `error` is one line
    up_to_date: int = 0  # documents in scope already cut by this chunker
    generation: str | None = None  # the published generation, None when nothing was re-cut
    pages: int = 0
    chunks: int = 0
    embedded: int = 0  # texts sent to the embedder (the rest came from the cache)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The `reindex --json` shape."""
        return {"recut": self.recut, "failed": self.failed, "up_to_date": self.up_to_date,
                "generation": self.generation, "chunker": CHUNKER_VERSION, "pages": self.pages,
                "chunks": self.chunks, "embedded": self.embedded,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def outdated(store: Store, families: list[str] | None = None) -> list[Document]:
    """The documents (of `families`, default all) cut by an older chunker than this release's."""
    docs = [d for d in store.documents() if not families or d.family in families]
    return [d for d in docs if store.chunker_version(d.doc_id) < CHUNKER_VERSION]


def reindex(settings: Settings, embedder: Embedder, families: list[str] | None = None,
            on_progress: Progress | None = None, extract_workers: int = 1) -> ReindexReport:
    """Re-cut the outdated documents of `families` (default: all) and publish them in one generation.

    Takes the ingest lock (GQAError while an ingest, withdraw or reindex runs); ConfigError names a
    family the home does not hold. `on_progress("documents", done, total)` after each document.
    """
    home = settings.home
    if not exists(settings):
        raise GQAError(f"nothing is ingested in {home}; run `guideline-qa ingest PATH` first")
    report = ReindexReport()
    started = time.perf_counter()
    with store_lock(settings):
        store = open_store(settings)
        try:
            collect_leftovers(settings, store)
            todo = _select(store, families, home, report)
            if todo:
                _check_embedder(store, embedder, home)  # before any file is read
                prepared = _recut_all(todo, settings, embedder, store, report, on_progress, extract_workers)
                if prepared:
                    t = time.perf_counter()
                    report.generation = _publish(prepared, settings, embedder, store)
                    report.seconds["publish"] = time.perf_counter() - t
        finally:
            store.close()
    report.seconds["total"] = time.perf_counter() - started
    return report


def _select(store: Store, families: list[str] | None, home: Path, report: ReindexReport) -> list[Document]:
    """The outdated documents in scope; counts the others as up to date."""
    held = {d.family for d in store.documents()}
    unknown = [f for f in families or [] if f not in held]
    if unknown:
        raise ConfigError(f"no family {unknown[0]!r} in {home}; families held: {', '.join(sorted(held)) or 'none'} "
                          "(`guideline-qa docs` lists them)")
    scope = [d for d in store.documents() if not families or d.family in families]
    todo = outdated(store, families)
    report.up_to_date = len(scope) - len(todo)
    return todo


def _check_embedder(store: Store, embedder: Embedder, home: Path) -> None:
    """The published generation exists and was built with the configured embedder (vectors are reused)."""
    prev = store.get_meta("current_generation")
    built = store.generation_embedder(prev) if prev else None
    if not built:
        raise GQAError(f"nothing is published in {home}; run `guideline-qa ingest PATH` first")
    if built != embedder.id:
        raise GQAError(f"{home} is indexed with embedder {built!r} but the configured one is {embedder.id!r}; set "
                       "GQA_EMBED_MODEL back to re-cut in place, or ingest the documents into a new GQA_HOME")


def _kept(doc: Document, store: Store, source: str, problem: str) -> dict:
    """The summary entry of a document that could not be re-cut and keeps its chunks."""
    v = store.chunker_version(doc.doc_id)
    fix = (f"put the original file back at {source} and run `guideline-qa reindex` again" if source
           else "ingest it into a new GQA_HOME to re-cut it")
    return {"file": doc.file_name, "doc_id": doc.doc_id, "family": doc.family, "source": source, "chunker": v,
            "error": f"{doc.file_name}: {problem}; its {doc.chunks} chunks (chunker {v}) are kept: {fix}"}


def _sources(todo: list[Document], store: Store, home: Path, report: ReindexReport
             ) -> Iterator[tuple[Path, str, PdfBytes]]:
    """Each document's source file, read once as extraction asks for it and checked against its sha256;
    the ones that cannot be used are recorded in `report.failed` (nothing else happens to them)."""
    for doc in todo:
        stored = store.source_path(doc.doc_id)
        path = source_file(home, stored)
        if path is None:
            report.failed.append(_kept(doc, store, "", "no source file is recorded for it (ingested by an older "
                                                       "release)"))
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            report.failed.append(_kept(doc, store, str(path), f"its source file {path} is missing"))
            continue
        except OSError as exc:
            report.failed.append(_kept(doc, store, str(path), f"its source file {path} cannot be read "
                                                              f"({exc.strerror or exc})"))
            continue
        if sha256_hex(data) != doc.sha256:
            report.failed.append(_kept(doc, store, str(path), f"its source file {path} no longer holds the "
                                                              "ingested bytes (sha256 differs: changed or replaced)"))
            continue
        yield path, doc.sha256, PdfBytes(doc.file_name, data)


def _recut_all(todo: list[Document], settings: Settings, embedder: Embedder, store: Store, report: ReindexReport,
               on_progress: Progress | None, workers: int) -> list[tuple[_Prepared, int]]:
    """Extract (in workers, as ingest does), chunk and embed each document again: (prepared, cut) each."""
    by_sha = {d.sha256: d for d in todo}
    stage = IngestReport()  # what the pipeline's stages record into
    out: list[tuple[_Prepared, int]] = []
    jobs = _Extractions(_sources(todo, store, settings.home, report), workers, settings.ocr)
    threads = _TorchThreads(workers if jobs.pool else 0, jobs.finished)
    try:
        for path, sha, outcome, _waited in jobs:
            doc = by_sha[sha]
            item = None
            if isinstance(outcome, BadDocument):
                report.failed.append(_kept(doc, store, str(path), f"this release cannot read it ({outcome})"))
            elif isinstance(outcome, Exception):
                log.debug("extracting %s failed", path, exc_info=outcome)
                report.failed.append(_kept(doc, store, str(path), parser_failure(path, outcome)))
            else:
                ext, secs = outcome
                stage.seconds["extract"] = stage.seconds.get("extract", 0.0) + secs
                # the title, family and version stay as published: only the cutting changes
                item = _prepare_one(path, sha, replace(ext, title=doc.title), settings, embedder, doc.family,
                                    doc.version, stage)
                if item is None:  # no text now: named, and the old chunks stay
                    report.failed.append(_kept(doc, store, str(path), stage.failed.pop()["error"]))
            if item is not None:
                cut = store.cut(doc.doc_id) + 1
                item = _as_cut(item, doc, cut)
                before = stage.embedded
                _embed_missing(item, embedder, store, stage, threads.poll)
                out.append((item, cut))
                report.recut.append({"file": doc.file_name, "doc_id": doc.doc_id, "family": doc.family,
                                     "version": doc.version, "status": doc.status,
                                     "from_chunker": store.chunker_version(doc.doc_id), "chunker": CHUNKER_VERSION,
                                     "cut": cut, "chunks_before": doc.chunks, "chunks": len(item.chunks),
                                     "embedded": stage.embedded - before})
            if on_progress:
                on_progress("documents", len(out) + len(report.failed), len(todo))
    finally:
        threads.restore()
        jobs.close()
    report.pages, report.chunks, report.embedded = stage.pages, stage.chunks, stage.embedded
    report.seconds.update(stage.seconds)
    return out


def _as_cut(item: _Prepared, doc: Document, cut: int) -> _Prepared:
    """The prepared document as cut `cut` of the published one: same document record (new counts), and
    chunk ids of their own, so both cuts' chunks are rows of the chunks table at once."""
    chunks = [replace(k, chunk_id=sha256_hex(f"{k.chunk_id}|cut {cut}", len(k.chunk_id)), cut=cut)
              for k in item.chunks]
    return replace(item, doc=replace(doc, pages=len(item.pages), chunks=len(chunks)), chunks=chunks)


def _publish(prepared: list[tuple[_Prepared, int]], settings: Settings, embedder: Embedder, store: Store) -> str:
    """The published generation with each re-cut document's chunks replaced by its new cut's, published."""
    prev = store.get_meta("current_generation")
    assert prev is not None  # _check_embedder
    chunk_ids, _ = previous_rows(settings, store, prev, embedder.id)
    replaced = {k.chunk_id for p, _ in prepared for k in store.chunks_of(p.doc.doc_id)}
    ids = [c for c in chunk_ids if c not in replaced] + [k.chunk_id for p, _ in prepared for k in p.chunks]
    index = None  # PostgreSQL: the new cut's chunks carry their vectors
    if not store.shared:
        hash_of = store.content_hashes()
        hash_of.update({k.chunk_id: h for p, _ in prepared for k, h in zip(p.chunks, p.hashes, strict=True)})
        # built again from the cache: rows cannot be taken out of an HNSW index
        index = new_index(embedder.dim, len(ids))
        _add(index, store, hash_of, ids, embedder)
    recuts = [(p.doc.doc_id, cut, p.pages, p.chunks, p.hashes) for p, cut in prepared]
    return publish_generation(settings, store, embedder.id, index, ids, store.documents(), Update({}, recuts=recuts))
