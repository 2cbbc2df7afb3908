"""A consistent copy of a home while the app serves and an ingest may publish: `guideline-qa backup DEST`.

The database is copied with SQLite's online backup API (one read transaction: a single moment of
it), then the index generation that the COPY names as current, so the two always match. Generation
folders never change once published; a publishing ingest may only delete old ones, so when the named
generation disappears mid-copy the whole backup is taken again. The models cache is not copied (it
is made again on first use); uploaded PDFs are, as they may be the only copy of those files.
Restoring is copying DEST to a new folder and pointing GQA_HOME at it (README, Backups).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError, GQAError, IndexError_
from rag.index import generations_dir, read_generation
from rag.snapshot import database_path
from rag.store import Store

log = logging.getLogger(__name__)

# Tries when a publishing ingest deletes the named generation between the two copies (it keeps the
# last few, so this needs several publishes within one copy).
ATTEMPTS = 5
# What rag.index.write_generation puts in every generation folder.
GENERATION_FILES = frozenset({"index.faiss", "chunk_ids.json", "manifest.json"})


@dataclass(frozen=True)
class BackupReport:
    """What a backup holds."""

    dest: Path
    generation: str | None  # the published generation copied (None: nothing was published yet)
    documents: int
    uploads: int  # uploaded PDFs copied
    size_bytes: int
    attempts: int


def source_file(home: Path, stored: str) -> Path | None:
    """Where a document's PDF is now: the path stored at ingest or, for an upload whose home was restored
    from a backup elsewhere, the same file under this home's uploads; None when no path was stored.

    Example: (Path('/new'), '/old/uploads/ab12/x.pdf') -> /new/uploads/ab12/x.pdf (when only that exists)
    """
    if not stored:
        return None
    path = Path(stored)
    if not path.is_file() and path.parent.parent.name == "uploads":
        moved = home / "uploads" / path.parent.name / path.name  # uploads are copied by `backup`
        if moved.is_file():
            return moved
    return path


def check_dest(home: Path, dest: Path) -> None:
    """DEST must not exist or be an empty folder, and must lie outside the home."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"backup destination {dest} is not empty; give a folder that does not exist yet or is "
                          "empty (a backup never overwrites)")
    d, h = dest.resolve(), home.resolve()
    if d == h or h in d.parents:
        raise ConfigError(f"backup destination {dest} is inside the home {home}; give a folder outside it")


def backup(home: Path, dest: Path) -> BackupReport:
    """Copy `home`'s database and published generation (and uploads) into `dest`; StoreError if damaged."""
    check_dest(home, dest)
    source = Store(database_path(home), readonly=True)  # a missing or damaged database stops here
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, ATTEMPTS + 1):
            gen, embedder_id = _copy_database(source, database_path(dest))
            if gen is None or _copy_generation(home, dest, gen):
                break
            log.info("generation %s was collected during backup attempt %d; taking it again", gen, attempt)
        else:
            raise GQAError(f"the published index of {home} changed {ATTEMPTS} times during the backup; run "
                           "`guideline-qa backup` again when publishing is less frequent")
        documents = _verify(dest, gen, embedder_id)
        uploads = _copy_uploads(home, dest)
    except BaseException:
        _undo(dest, created)
        raise
    finally:
        source.close()
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    log.info("backed up %s to %s: generation %s, %d documents", home, dest, gen, documents)
    return BackupReport(dest, gen, documents, uploads, size, attempt)


def _copy_database(source: Store, target: Path) -> tuple[str | None, str]:
    """The whole database as of one moment (writers are not blocked); its current generation and embedder."""
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(str(target))
    try:
        source.conn.backup(conn)  # pages=-1: every page in one step, i.e. one read transaction
        row = conn.execute("SELECT value FROM meta WHERE key = 'current_generation'").fetchone()
        gen = row[0] if row else None
        emb = conn.execute("SELECT embedder_id FROM generations WHERE gen_id = ?", (gen,)).fetchone()
    finally:
        conn.close()
    return gen, emb[0] if emb else ""


def _copy_generation(home: Path, dest: Path, gen: str) -> bool:
    """Copy one generation folder; False when it vanished (collected by a publishing ingest) meanwhile."""
    src, out = generations_dir(home) / gen, generations_dir(dest) / gen
    shutil.rmtree(generations_dir(dest), ignore_errors=True)
    try:
        shutil.copytree(src, out)
    except (FileNotFoundError, shutil.Error):
        shutil.rmtree(generations_dir(dest), ignore_errors=True)
        return False
    # a folder being deleted while it was listed and copied: gone by now, or missing a file in the copy
    return src.is_dir() and GENERATION_FILES <= {f.name for f in out.iterdir()}


def _verify(dest: Path, gen: str | None, embedder_id: str) -> int:
    """The copy is a sound database whose published generation is complete; returns its document count."""
    conn = sqlite3.connect(str(database_path(dest)))
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()
    if check != "ok":
        raise GQAError(f"the copied database {database_path(dest)} fails SQLite's check ({check}); the source may "
                       "be damaged: restore an older backup")
    store = Store(database_path(dest), readonly=True)
    try:
        documents = len(store.documents())
        if gen is None:
            return documents
        files, _ = read_generation(dest, gen, embedder_id)
        known = store.content_hashes()
    finally:
        store.close()
    missing = sum(c not in known for c in files.chunk_ids)
    if missing:
        raise IndexError_(f"the copied generation {gen} names {missing} chunks missing from the copied database")
    return documents


def _copy_uploads(home: Path, dest: Path) -> int:
    """Copy uploaded PDFs (a failed upload removed meanwhile is skipped); returns how many."""
    root = home / "uploads"
    if not root.is_dir():
        return 0
    n = 0
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        target = dest / "uploads" / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(f, target)
        except FileNotFoundError:
            continue
        n += 1
    return n


def _undo(dest: Path, created: bool) -> None:
    """Leave DEST as it was: removed when the backup created it, else emptied."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
