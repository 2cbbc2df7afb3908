"""The product's SQLite database: documents, pages, chunks, cached embeddings, the published generation."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.errors import StoreError
from rag.logbook import EVAL_SCHEMA, FEEDBACK_SCHEMA, Logbook
from rag.types import Chunk, Document, Page

log = logging.getLogger(__name__)

# 2: pages are keyed by (doc_id, cut, number) and documents and chunks carry their cut (`reindex` keeps
# every cut readable); a file of schema 1 is migrated by its first writer and stays readable until then.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, file_name TEXT NOT NULL, title TEXT NOT NULL,
    family TEXT NOT NULL, version TEXT NOT NULL, doc_type TEXT NOT NULL, status TEXT NOT NULL,
    pages INTEGER NOT NULL, chunks INTEGER NOT NULL, ingested_at TEXT NOT NULL, superseded_by TEXT,
    source_path TEXT NOT NULL DEFAULT '', cut INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS documents_family ON documents(family);
CREATE TABLE IF NOT EXISTS pages (
    doc_id TEXT NOT NULL, cut INTEGER NOT NULL DEFAULT 0, number INTEGER NOT NULL, label TEXT NOT NULL,
    text TEXT NOT NULL, ocr INTEGER NOT NULL DEFAULT 0, dropped TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (doc_id, cut, number)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, page INTEGER NOT NULL,
    page_end INTEGER NOT NULL, page_label TEXT NOT NULL, section TEXT NOT NULL, kind TEXT NOT NULL,
    text TEXT NOT NULL, content_hash TEXT NOT NULL,
    starts_mid INTEGER NOT NULL DEFAULT 0, ends_mid INTEGER NOT NULL DEFAULT 0,
    cut_instruction INTEGER NOT NULL DEFAULT 0, ocr INTEGER NOT NULL DEFAULT 0, cut INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS embeddings (
    content_hash TEXT NOT NULL, embedder_id TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (content_hash, embedder_id)
);
CREATE TABLE IF NOT EXISTS generations (
    gen_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, embedder_id TEXT NOT NULL,
    vectors INTEGER NOT NULL, documents INTEGER NOT NULL
);
-- every withdraw and reinstate, never deleted: who stopped (or restarted) serving what, when and why
CREATE TABLE IF NOT EXISTS withdrawals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL,
    who TEXT NOT NULL, at TEXT NOT NULL, gen_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS withdrawals_doc ON withdrawals(doc_id, id);
-- one row per answer given (rag/audit.py): channel app|api|cli, who, what was cited (JSON); the question
-- only where GQA_STORE_QUESTIONS allows. A new table, not a new schema: the first writer adds it to an
-- older file (IF NOT EXISTS), and an older release reading a newer file ignores it.
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, channel TEXT NOT NULL, who TEXT,
    index_version TEXT NOT NULL, generator TEXT NOT NULL, abstained INTEGER NOT NULL, citations TEXT NOT NULL,
    question TEXT
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""

DOC_COLUMNS = (
    "doc_id, sha256, file_name, title, family, version, doc_type, status, pages, chunks, ingested_at, "
    "superseded_by"
)
CHUNK_COLUMNS = "chunk_id, doc_id, ordinal, page, page_end, page_label, section, text, kind"
# Chunk columns added since schema 1, each with the default its rows had before (how a chunk was cut:
# rag.types.Chunk). A writer adds any that are missing; a reader of an older file reads the defaults.
CHUNK_CUT_COLUMNS = ("starts_mid", "ends_mid", "cut_instruction")
# ... and whether OCR read its text (ingest/ocr.py); flags in the order of rag.types.Chunk's fields.
CHUNK_FLAG_COLUMNS = (*CHUNK_CUT_COLUMNS, "ocr")
# Page columns added since schema 1 (0 before): whether OCR read the page.
PAGE_FLAG_COLUMNS = ("ocr",)
# ... and the lines dropped from it as running header or footer, a JSON list ('' in rows written before
# they were recorded: not known, which is not the same as none).


class Store(Logbook):
    """A connection to `<home>/gqa.sqlite` (WAL: readers never block the publishing writer)."""

    shared = False  # one host's files (rag.pg.store.PgStore: a database many hosts share)

    def __init__(self, path: Path, readonly: bool = False) -> None:
        """Open (a writer creates a missing file); StoreError names a missing, empty or damaged file and the fix."""
        self.path = path
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                _create(path)
        elif not path.exists():
            raise StoreError(f"{path} does not exist: nothing is ingested in {path.parent}; "
                             "run `guideline-qa ingest PATH` first")
        _check_file(path)
        try:
            # mode=rw: opening never creates a file (an empty one would read as "no tables"); a writer
            # creates it above, complete, under its final name. check_same_thread=False: Streamlit reruns
            # a script on worker threads; all writes are short transactions and SQLite serialises them.
            self.conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=30,
                                        isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{path} cannot be opened ({exc}); check the file's permissions") from None
        try:
            _check_schema(self.conn, path)  # first: nothing is written into a file that is not ours
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before it returns, so a SIGKILL or power loss never loses a publish.
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self.conn.executescript(SCHEMA)
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                _add_flag_columns(self.conn)
                _add_cuts(self.conn)
            self._chunk_columns = _chunk_columns(self.conn)
            # False only in a schema-1 file opened read-only: one cut per document, rows without `cut`
            self._cuts = "cut" in _columns(self.conn, "pages")
            self._page_ocr = "ocr" in _columns(self.conn, "pages")
            self._page_dropped = "dropped" in _columns(self.conn, "pages")
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, disk I/O, read-only folder: not damage
                raise StoreError(f"{path} cannot be used ({exc}); check the disk and the file's permissions, "
                                 "then try again") from None
            if isinstance(exc, sqlite3.DatabaseError):  # not a database, malformed
                raise damaged(path, str(exc)) from None
            raise

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _run(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(args))

    def _tx(self):
        return self.transaction()

    def _prepare(self, table: str) -> None:
        # what is deleted or purged (question text) is overwritten on disk, not just unlinked
        self.conn.execute("PRAGMA secure_delete=ON")
        if table in ("feedback", "eval_runs"):  # tables added by their first writer (an older file lacks them)
            self.conn.executescript(FEEDBACK_SCHEMA if table == "feedback" else EVAL_SCHEMA)

    # --- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value from the meta table, or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # --- documents --------------------------------------------------------------------------
    def documents(self, family: str | None = None) -> list[Document]:
        """All documents (optionally of one family), newest ingest last."""
        sql = f"SELECT {DOC_COLUMNS} FROM documents"
        args: tuple = ()
        if family is not None:
            sql += " WHERE family = ?"
            args = (family,)
        rows = self.conn.execute(sql + " ORDER BY family, ingested_at, file_name", args).fetchall()
        return [Document(*r) for r in rows]

    def document_by_sha(self, sha256: str) -> Document | None:
        """The document with these exact bytes, if any was published."""
        row = self.conn.execute(f"SELECT {DOC_COLUMNS} FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
        return Document(*row) if row else None

    def source_path(self, doc_id: str) -> str:
        """The path a document was ingested from ('' when not recorded; see rag.backup.source_file)."""
        row = self.conn.execute("SELECT source_path FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row else ""

    def cut(self, doc_id: str) -> int:
        """The cut a document is served from now (0: as first ingested; `reindex` adds one)."""
        if not self._cuts:
            return 0
        row = self.conn.execute("SELECT cut FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return int(row[0]) if row else 0

    def _of_cut(self, doc_id: str, cut: int | None) -> tuple[str, tuple]:
        """The WHERE clause for the rows of one cut of a document (None: its current cut)."""
        if not self._cuts:
            return "doc_id = ?", (doc_id,)
        if cut is None:
            return "doc_id = ? AND cut = (SELECT cut FROM documents WHERE doc_id = ?)", (doc_id, doc_id)
        return "doc_id = ? AND cut = ?", (doc_id, cut)

    def pages(self, doc_id: str, cut: int | None = None) -> list[Page]:
        """The cleaned pages of one document as cut `cut` read them (default: its current cut)."""
        ocr = "ocr" if self._page_ocr else "0"  # a file written before the column: no page was OCR'd
        dropped = "dropped" if self._page_dropped else "''"  # ... and nothing recorded as dropped
        where, args = self._of_cut(doc_id, cut)
        rows = self.conn.execute(
            f"SELECT number, label, text, {ocr}, {dropped} FROM pages WHERE {where} ORDER BY number", args
        ).fetchall()
        return [Page(n, lab, t, ocr=bool(o), dropped=tuple(json.loads(d)) if d else ()) for n, lab, t, o, d in rows]

    def dropped_recorded(self, doc_id: str, cut: int | None = None) -> bool:
        """Whether the running lines dropped from this cut's pages were recorded (False for pages written
        before they were: Page.dropped then reads as none, which is not known)."""
        if not self._page_dropped:
            return False
        where, args = self._of_cut(doc_id, cut)
        row = self.conn.execute(f"SELECT 1 FROM pages WHERE {where} AND dropped != '' LIMIT 1", args).fetchone()
        return row is not None

    def page_text(self, doc_id: str, number: int, cut: int | None = None) -> str | None:
        """The cleaned text of one page as cut `cut` read it (default: the current cut), or None.

        A reader quoting a chunk passes the chunk's own cut: after a `reindex` the page may read otherwise.
        """
        where, args = self._of_cut(doc_id, cut)
        row = self.conn.execute(f"SELECT text FROM pages WHERE {where} AND number = ?", (*args, number)).fetchone()
        return row[0] if row else None

    def chunks(self, chunk_ids: Iterable[str] | None = None) -> dict[str, Chunk]:
        """Chunks by id (all of them when `chunk_ids` is None)."""
        if chunk_ids is None:
            rows = self.conn.execute(f"SELECT {self._chunk_columns} FROM chunks").fetchall()
        else:
            ids = list(chunk_ids)
            rows = []
            for i in range(0, len(ids), 900):  # SQLite's default limit on bound parameters is 999
                part = ids[i : i + 900]
                marks = ",".join("?" * len(part))
                rows += self.conn.execute(
                    f"SELECT {self._chunk_columns} FROM chunks WHERE chunk_id IN ({marks})", part
                ).fetchall()
        return {r[0]: _chunk(r) for r in rows}

    def chunks_of(self, doc_id: str, cut: int | None = None) -> list[Chunk]:
        """The chunks of one document's cut (default: the current one) in reading order."""
        where, args = self._of_cut(doc_id, cut)
        rows = self.conn.execute(
            f"SELECT {self._chunk_columns} FROM chunks WHERE {where} ORDER BY ordinal", args
        ).fetchall()
        return [_chunk(r) for r in rows]

    # --- embedding cache ----------------------------------------------------------------------
    def cached_vectors(self, hashes: list[str], embedder_id: str, dim: int) -> dict[str, np.ndarray]:
        """Cached vectors by content hash for this embedder."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 900):
            part = hashes[i : i + 900]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT content_hash, vector FROM embeddings WHERE embedder_id = ? AND content_hash IN ({marks})",
                [embedder_id, *part],
            ).fetchall()
            for h, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    out[h] = vec
        return out

    def cache_vectors(self, items: dict[str, np.ndarray], embedder_id: str) -> None:
        """Store vectors by content hash (a cache: committing it early is always safe)."""
        with self.transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO embeddings(content_hash, embedder_id, vector) VALUES (?, ?, ?)",
                [(h, embedder_id, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    # --- publishing -----------------------------------------------------------------------------
    def chunker_version(self, doc_id: str) -> int:
        """The chunker version that cut a document's chunks (0: not recorded)."""
        return int(self.get_meta(f"chunker/{doc_id}") or 0)

    def publish(
        self,
        docs: list[tuple[Document, list[Page], list[Chunk], list[str], str]],
        status_changes: dict[str, tuple[str, str | None]],
        gen: dict,
        chunker_version: int = 0,
        families: dict[str, str] | None = None,
        event: dict | None = None,
        recuts: list[tuple[str, int, list[Page], list[Chunk], list[str]]] | None = None,
    ) -> None:
        """Insert new documents and switch the published generation in ONE transaction.

        `docs` holds (document, pages, chunks, content hashes, source path); `status_changes` maps
        doc_id -> (status, superseded_by); `chunker_version` is recorded for each new document;
        `families` maps doc_id -> new family; `event` (doc_id, action, reason, who, at) is a withdraw
        or reinstate recorded with this generation; `recuts` holds (doc_id, cut, pages, chunks, hashes)
        of documents re-cut by `reindex`: a new cut beside the old one, which stays readable for the
        generations that name its chunks. Readers see everything before or everything after.
        """
        with self.transaction() as c:
            for doc, pages, chunks, hashes, source in docs:
                c.execute(
                    f"INSERT INTO documents({DOC_COLUMNS}, source_path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (doc.doc_id, doc.sha256, doc.file_name, doc.title, doc.family, doc.version,
                     doc.doc_type, doc.status, doc.pages, doc.chunks, doc.ingested_at, doc.superseded_by,
                     source),
                )
                _insert_cut(c, doc.doc_id, 0, pages, chunks, hashes)
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                          (f"chunker/{doc.doc_id}", str(chunker_version)))
            for doc_id, cut, pages, chunks, hashes in recuts or []:
                _insert_cut(c, doc_id, cut, pages, chunks, hashes)
                c.execute("UPDATE documents SET cut = ?, pages = ?, chunks = ? WHERE doc_id = ?",
                          (cut, len(pages), len(chunks), doc_id))
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                          (f"chunker/{doc_id}", str(chunker_version)))
            for doc_id, (status, by) in status_changes.items():
                c.execute("UPDATE documents SET status = ?, superseded_by = ? WHERE doc_id = ?", (status, by, doc_id))
            for doc_id, family in (families or {}).items():
                c.execute("UPDATE documents SET family = ? WHERE doc_id = ?", (family, doc_id))
            if event:
                c.execute("INSERT INTO withdrawals(doc_id, action, reason, who, at, gen_id) VALUES (?,?,?,?,?,?)",
                          (event["doc_id"], event["action"], event["reason"], event["who"], event["at"],
                           gen["gen_id"]))
            c.execute(
                "INSERT INTO generations(gen_id, created_at, embedder_id, vectors, documents) VALUES (?,?,?,?,?)",
                (gen["gen_id"], gen["created_at"], gen["embedder_id"], gen["vectors"], gen["documents"]),
            )
            c.execute(
                "INSERT INTO meta(key, value) VALUES ('current_generation', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (gen["gen_id"],),
            )

    def generations(self) -> list[str]:
        """Generation ids, oldest first."""
        return [r[0] for r in self.conn.execute("SELECT gen_id FROM generations ORDER BY created_at, rowid")]

    def generation_embedder(self, gen_id: str) -> str | None:
        """The embedder id a published generation was built with, or None for an unknown id."""
        row = self.conn.execute("SELECT embedder_id FROM generations WHERE gen_id = ?", (gen_id,)).fetchone()
        return row[0] if row else None

    def withdrawals(self, doc_id: str | None = None) -> list[dict]:
        """Withdraw and reinstate events (of one document or all), oldest first; [] in a home made
        before they existed (a read-only connection does not create the table)."""
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'withdrawals'"
        if not self.conn.execute(table).fetchone():
            return []
        sql = "SELECT doc_id, action, reason, who, at, gen_id FROM withdrawals"
        args: tuple = ()
        if doc_id is not None:
            sql += " WHERE doc_id = ?"
            args = (doc_id,)
        rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        keys = ("doc_id", "action", "reason", "by", "at", "generation")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def content_hashes(self) -> dict[str, str]:
        """chunk_id -> content hash, for rebuilding an index from the embedding cache."""
        return dict(self.conn.execute("SELECT chunk_id, content_hash FROM chunks").fetchall())


def _insert_cut(c: sqlite3.Connection, doc_id: str, cut: int, pages: list[Page], chunks: list[Chunk],
                hashes: list[str]) -> None:
    """Write one cut of a document: its pages and its chunks (whose `cut` is `cut`)."""
    c.executemany(
        "INSERT INTO pages(doc_id, cut, number, label, text, ocr, dropped) VALUES (?,?,?,?,?,?,?)",
        [(doc_id, cut, p.number, p.label, p.text, int(p.ocr), json.dumps(list(p.dropped), ensure_ascii=False))
         for p in pages],
    )
    c.executemany(
        f"INSERT OR IGNORE INTO chunks({CHUNK_COLUMNS}, content_hash, {', '.join(CHUNK_FLAG_COLUMNS)}, cut, fields) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(k.chunk_id, k.doc_id, k.ordinal, k.page, k.page_end, k.page_label, k.section, k.text,
          k.kind, h, int(k.starts_mid), int(k.ends_mid), int(k.cut_instruction), int(k.ocr), cut, k.fields)
         for k, h in zip(chunks, hashes, strict=True)],
    )


def damaged(path: Path, why: str) -> StoreError:
    """The one-line error for an unusable database file, with both fixes."""
    return StoreError(f"{path} is damaged: {why}; restore it from a backup (README, Backups) or re-ingest the "
                      "documents into a new GQA_HOME")


def _create(path: Path) -> None:
    """Make a new, complete database file under a temporary name, then link it into place.

    sqlite3.connect leaves a 0-byte file until the first write, and a 0-byte gqa.sqlite is refused as
    damaged (it is what an accidental truncation leaves), so no reader may ever see one being created.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.new")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        _add_flag_columns(conn)
    finally:
        conn.close()
    try:
        os.link(tmp, path)  # never replaces a file another process created meanwhile
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        if not path.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Descriptors the database header is read through, one per file, never closed: closing any descriptor
# of a file drops every POSIX lock this process holds on it, those of its open SQLite connections too,
# and another process closing its connection would then delete the -wal and -shm still in use
# (sqlite.org/howtocorrupt.html, section 2.2).
_HEADER_FDS: dict[tuple[int, int], int] = {}
_HEADER_LOCK = threading.Lock()


def _read_header(path: Path) -> bytes:
    """The first 100 bytes of the file, read without ever closing a descriptor of it."""
    st = path.stat()
    with _HEADER_LOCK:
        for key, old in list(_HEADER_FDS.items()):
            if os.fstat(old).st_nlink == 0:  # its file was deleted: no other process can open it by name
                os.close(old)
                del _HEADER_FDS[key]
        fd = _HEADER_FDS.get((st.st_dev, st.st_ino))
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            opened = os.fstat(fd)
            _HEADER_FDS[(opened.st_dev, opened.st_ino)] = fd  # the file now at the path (kept open)
    return os.pread(fd, 100, 0)


def _check_file(path: Path) -> None:
    """Refuse an empty file, one that is not SQLite, and one shorter than its own header says."""
    size = path.stat().st_size
    if size == 0:
        raise damaged(path, "the file is empty (0 bytes)")
    head = _read_header(path)
    if not head.startswith(b"SQLite format 3\x00"):
        raise damaged(path, "not an SQLite database")
    if len(head) < 100:
        raise damaged(path, f"truncated to {size} bytes")
    # The header's page count is valid when bytes 24-27 equal 92-95. Only a file without a -wal is
    # checked: while a connection is open a checkpoint may write page 1 before the pages it counts.
    pages, page_size = int.from_bytes(head[28:32], "big"), int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    wal = path.with_name(path.name + "-wal")
    if head[24:28] == head[92:96] and size < pages * page_size and not wal.exists():
        time.sleep(0.05)  # a writer that opened and closed meanwhile; a truncation stays
        if path.stat().st_size < pages * page_size and not wal.exists():
            raise damaged(path, f"truncated: {size} bytes, its header counts {pages * page_size}")


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """The meta table and its schema_version row exist (this product's database) and are not newer."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        raise damaged(path, "no guideline-qa tables")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise damaged(path, "no schema version")
    if int(row[0]) > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer guideline-qa (schema {row[0]}, this one reads up to "
                         f"{SCHEMA_VERSION}); upgrade guideline-qa")


def _add_flag_columns(conn: sqlite3.Connection) -> None:
    """Add the CHUNK_FLAG_COLUMNS and PAGE_FLAG_COLUMNS a file written before them lacks (old rows: 0,
    as they were read), the chunks' structured `fields` and the pages' `dropped` lines (old rows: '')."""
    added = [("chunks", "fields", "TEXT NOT NULL DEFAULT ''"), ("pages", "dropped", "TEXT NOT NULL DEFAULT ''"),
             *(("chunks", c, "INTEGER NOT NULL DEFAULT 0") for c in CHUNK_FLAG_COLUMNS),
             *(("pages", c, "INTEGER NOT NULL DEFAULT 0") for c in PAGE_FLAG_COLUMNS)]
    for table, name, kind in added:
        if name not in _columns(conn, table):
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another writer added it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def _add_cuts(conn: sqlite3.Connection) -> None:
    """Migrate a schema-1 file to 2: a `cut` on documents and chunks (ALTER), and pages rebuilt keyed by
    (doc_id, cut, number), since SQLite cannot change a primary key in place. Its rows become cut 0.

    One transaction, as SQLite's documented table rebuild: readers see the old table or the new one,
    and a kill midway leaves schema 1. Every column the old table has is copied, whatever added it.
    """
    if "cut" in _columns(conn, "pages"):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if "cut" not in _columns(conn, "pages"):  # another writer may have migrated while we waited
            info = conn.execute("PRAGMA table_info(pages)").fetchall()  # cid, name, type, notnull, default, pk
            cols = [f"{n} {t}" + (" NOT NULL" if nn else "") + (f" DEFAULT {d}" if d is not None else "")
                    for _, n, t, nn, d, _ in info]
            names = ", ".join(r[1] for r in info)
            conn.execute(f"CREATE TABLE pages_by_cut ({', '.join(cols)}, cut INTEGER NOT NULL DEFAULT 0, "
                         "PRIMARY KEY (doc_id, cut, number))")
            conn.execute(f"INSERT INTO pages_by_cut({names}) SELECT {names} FROM pages")
            conn.execute("DROP TABLE pages")
            conn.execute("ALTER TABLE pages_by_cut RENAME TO pages")
            for table in ("documents", "chunks"):
                if "cut" not in _columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN cut INTEGER NOT NULL DEFAULT 0")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _chunk_columns(conn: sqlite3.Connection) -> str:
    """The chunk columns to read: CHUNK_COLUMNS and the flag columns this file has."""
    have = _columns(conn, "chunks")
    # the cut, then the structured fields, last; 0 and '' in a file written before them (rag.types.Chunk)
    return ", ".join([CHUNK_COLUMNS, *(c for c in CHUNK_FLAG_COLUMNS if c in have), "cut" if "cut" in have else "0",
                      "fields" if "fields" in have else "''"])


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _chunk(row: tuple) -> Chunk:
    # SQLite gives the flags as 0/1, the record holds booleans; the flags read are a prefix of
    # CHUNK_FLAG_COLUMNS (those the file has), the rest False; the cut and the fields come last
    flags = [bool(x) for x in row[9:-2]]
    return Chunk(*[*row[:9], *flags, *[False] * (len(CHUNK_FLAG_COLUMNS) - len(flags)), int(row[-2]), row[-1]])


def dumps(obj: object) -> str:
    """Compact, key-sorted JSON (stable bytes for hashing)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
