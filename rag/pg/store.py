"""The store in PostgreSQL: the same public methods as rag.store.Store, over the schema of rag/pg/migrations.

A generation is a row: its chunk ids in row order, the document of each row, each document's status and
cut (`manifest`), and the answerer's term statistics. Chunks are immutable rows carrying their vector,
so a publish writes only the new documents' chunks and one generation row, never copying vectors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from rag.errors import GQAError
from rag.lexical import TermStats, add_rows, row_text
from rag.logbook import Logbook
from rag.pg.connect import HNSW_EF_CONSTRUCTION, HNSW_M, failure, pool
from rag.tables import extend_rows
from rag.types import Chunk, Document, Page

log = logging.getLogger(__name__)

DOC_COLUMNS = ("doc_id, sha256, file_name, title, family, version, doc_type, status, pages, chunks, ingested_at, "
               "superseded_by")
CHUNK_COLUMNS = ("chunk_id, doc_id, ordinal, page, page_end, page_label, section, text, kind, starts_mid, ends_mid, "
                 "cut_instruction, ocr, cut, fields")
# documents are listed in the embedded store's order: SQLite compares text byte by byte, as "C" does
DOC_ORDER = 'ORDER BY family COLLATE "C", ingested_at COLLATE "C", file_name COLLATE "C"'
RowsOf = Callable[[list[str]], list[tuple[str, str]]]


class PgStore(Logbook):
    """The PostgreSQL store, over the process's pool of connections (rag.pg.connect.pool).

    No connection is held between calls: each statement borrows one, and a transaction keeps one for
    its length. So a Store that is never closed (a Snapshot's chunk reader) holds nothing, and the many
    short-lived stores of a replica (one per audit row, per page read) cost no connection set-up.
    """

    shared = True  # many hosts share it: no generation folders, an advisory lock instead of ingest.lock
    EVAL_INSERT = "INSERT INTO eval_runs"
    EVAL_ORDER = "seq"

    def __init__(self, url: str, readonly: bool = False) -> None:
        """Open; StoreError names the URL (without password) when the server or the schema is unusable.

        `readonly` is kept for the embedded store's signature: both kinds share the pool.
        """
        self.url, self.readonly = url, readonly
        self._pool = pool(url)
        self._pinned = None  # the connection of the transaction in progress

    def close(self) -> None:
        """Nothing to release: connections go back to the pool after each statement or transaction."""

    def _run(self, sql: str, args: Sequence | dict = ()):
        """Execute one statement: in the open transaction, else on a borrowed connection (its rows read
        before the connection goes back)."""
        import psycopg

        sql = sql.replace("?", "%s")
        try:
            if self._pinned is not None:
                return self._pinned.execute(sql, args)
            with self._pool.connection() as conn:
                cur = conn.execute(sql, args)
                return _Result(cur.fetchall() if cur.description else [], cur.rowcount)
        except psycopg.OperationalError as exc:  # the server went away mid-command
            raise failure(self.url, exc) from None

    @contextmanager
    def transaction(self) -> Iterator[PgStore]:
        """One transaction on one connection, rolled back on any exception (nested: the outer one)."""
        if self._pinned is not None:
            yield self
            return
        with self._pool.connection() as conn, conn.transaction():
            self._pinned = conn
            try:
                yield self
            finally:
                self._pinned = None

    def _cursor(self):
        assert self._pinned is not None, "inside transaction() only"
        return self._pinned.cursor()

    def _tx(self):
        return self.transaction()

    def _prepare(self, table: str) -> None:
        """Nothing to do: every table exists from the migrations. PostgreSQL does not overwrite a deleted
        row's bytes at once (VACUUM reclaims them later): set the retention accordingly."""

    # --- meta and documents ------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value from the meta table, or None."""
        row = self._run("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def documents(self, family: str | None = None) -> list[Document]:
        """All documents (optionally of one family), in the embedded store's order."""
        where, args = ("WHERE family = %s", (family,)) if family is not None else ("", ())
        rows = self._run(f"SELECT {DOC_COLUMNS} FROM documents {where} {DOC_ORDER}", args).fetchall()
        return [Document(*r) for r in rows]

    def document_by_sha(self, sha256: str) -> Document | None:
        """The document with these exact bytes, if any was published."""
        row = self._run(f"SELECT {DOC_COLUMNS} FROM documents WHERE sha256 = %s", (sha256,)).fetchone()
        return Document(*row) if row else None

    def source_path(self, doc_id: str) -> str:
        """The path a document was ingested from ('' when not recorded)."""
        row = self._run("SELECT source_path FROM documents WHERE doc_id = %s", (doc_id,)).fetchone()
        return row[0] if row else ""

    def cut(self, doc_id: str) -> int:
        """The cut a document is served from now."""
        row = self._run("SELECT cut FROM documents WHERE doc_id = %s", (doc_id,)).fetchone()
        return int(row[0]) if row else 0

    def chunker_version(self, doc_id: str) -> int:
        """The chunker version that cut a document's chunks (0: not recorded)."""
        row = self._run("SELECT chunker FROM documents WHERE doc_id = %s", (doc_id,)).fetchone()
        return int(row[0]) if row else 0

    def _of_cut(self, doc_id: str, cut: int | None) -> tuple[str, tuple]:
        if cut is None:
            return "doc_id = %s AND cut = (SELECT cut FROM documents WHERE doc_id = %s)", (doc_id, doc_id)
        return "doc_id = %s AND cut = %s", (doc_id, cut)

    # --- pages and chunks ------------------------------------------------------------------------------
    def pages(self, doc_id: str, cut: int | None = None) -> list[Page]:
        """The cleaned pages of one document as cut `cut` read them (default: its current cut)."""
        where, args = self._of_cut(doc_id, cut)
        rows = self._run(f"SELECT number, label, text, ocr, dropped FROM pages WHERE {where} ORDER BY number",
                         args).fetchall()
        return [Page(n, lab, t, ocr=bool(o), dropped=tuple(json.loads(d)) if d else ()) for n, lab, t, o, d in rows]

    def dropped_recorded(self, doc_id: str, cut: int | None = None) -> bool:
        """Whether the running lines dropped from this cut's pages were recorded (always, here)."""
        where, args = self._of_cut(doc_id, cut)
        return self._run(f"SELECT 1 FROM pages WHERE {where} AND dropped != '' LIMIT 1", args).fetchone() is not None

    def page_text(self, doc_id: str, number: int, cut: int | None = None) -> str | None:
        """The cleaned text of one page as cut `cut` read it (default: the current cut), or None."""
        where, args = self._of_cut(doc_id, cut)
        row = self._run(f"SELECT text FROM pages WHERE {where} AND number = %s", (*args, number)).fetchone()
        return row[0] if row else None

    def chunks(self, chunk_ids: Iterable[str] | None = None) -> dict[str, Chunk]:
        """Chunks by id (all of them when `chunk_ids` is None)."""
        if chunk_ids is None:
            rows = self._run(f"SELECT {CHUNK_COLUMNS} FROM chunks").fetchall()
        else:
            rows = self._run(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE chunk_id = ANY(%s)",
                             (list(chunk_ids),)).fetchall()
        return {r[0]: Chunk(*r) for r in rows}

    def chunks_of(self, doc_id: str, cut: int | None = None) -> list[Chunk]:
        """The chunks of one document's cut (default: the current one) in reading order."""
        where, args = self._of_cut(doc_id, cut)
        rows = self._run(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE {where} ORDER BY ordinal", args).fetchall()
        return [Chunk(*r) for r in rows]

    def content_hashes(self) -> dict[str, str]:
        """chunk_id -> content hash."""
        return dict(self._run("SELECT chunk_id, content_hash FROM chunks").fetchall())

    # --- embedding cache -------------------------------------------------------------------------------
    def cached_vectors(self, hashes: list[str], embedder_id: str, dim: int) -> dict[str, np.ndarray]:
        """Cached vectors by content hash for this embedder (float32, as they were embedded)."""
        return {h: v for h, v in self._vectors(hashes, embedder_id).items() if v.shape[0] == dim}

    def _vectors(self, hashes: list[str], embedder_id: str) -> dict[str, np.ndarray]:
        rows = self._run("SELECT content_hash, vector FROM embeddings WHERE embedder_id = %s AND "
                         "content_hash = ANY(%s)", (embedder_id, list(hashes))).fetchall()
        return {h: np.frombuffer(bytes(b), dtype=np.float32) for h, b in rows}

    def cache_vectors(self, items: dict[str, np.ndarray], embedder_id: str) -> None:
        """Store vectors by content hash (a cache: committing it early is always safe)."""
        with self.transaction(), self._cursor() as cur:
            cur.executemany("INSERT INTO embeddings(content_hash, embedder_id, vector) VALUES (%s, %s, %s) "
                            "ON CONFLICT DO NOTHING",
                            [(h, embedder_id, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()])

    # --- generations -----------------------------------------------------------------------------------
    def generations(self) -> list[str]:
        """Generation ids, oldest first."""
        return [r[0] for r in self._run("SELECT gen_id FROM generations ORDER BY seq").fetchall()]

    def generation_embedder(self, gen_id: str) -> str | None:
        """The embedder id a published generation was built with, or None for an unknown id."""
        row = self._run("SELECT embedder_id FROM generations WHERE gen_id = %s", (gen_id,)).fetchone()
        return row[0] if row else None

    def generation(self, gen_id: str) -> dict | None:
        """One generation as readers load it: rows, documents per row, manifest, term statistics."""
        row = self._run("SELECT gen_id, embedder_id, dim, chunk_ids, row_doc, doc_order, manifest, terms, "
                        "abbreviations, avg_length FROM generations WHERE gen_id = %s", (gen_id,)).fetchone()
        keys = ("gen_id", "embedder_id", "dim", "chunk_ids", "row_doc", "doc_order", "manifest", "terms",
                "abbreviations", "avg_length")
        return dict(zip(keys, row, strict=True)) if row else None

    def generation_chunk_ids(self, gen_id: str) -> list[str]:
        """A generation's chunk ids in row order ([] for an unknown id)."""
        row = self._run("SELECT chunk_ids FROM generations WHERE gen_id = %s", (gen_id,)).fetchone()
        return list(row[0]) if row else []

    def withdrawals(self, doc_id: str | None = None) -> list[dict]:
        """Withdraw and reinstate events (of one document or all), oldest first."""
        where, args = ("WHERE doc_id = %s", (doc_id,)) if doc_id is not None else ("", ())
        rows = self._run(f"SELECT doc_id, action, reason, who, at, gen_id FROM withdrawals {where} ORDER BY id",
                         args).fetchall()
        keys = ("doc_id", "action", "reason", "by", "at", "generation")
        return [dict(zip(keys, r, strict=True)) for r in rows]

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
        """Insert new documents and switch the published generation in ONE transaction (Store.publish).

        `gen` also holds `chunk_ids` (the rows in order), `statuses` (doc_id -> status) and `rows_of`
        (chunk ids -> (doc_id, row text)), from which the rows' documents and term statistics are made.
        """
        cuts = [(d.doc_id, 0, p, k, h) for d, p, k, h, _ in docs] + list(recuts or [])
        vectors = self._vectors(sorted({h for *_, hs in cuts for h in hs}), gen["embedder_id"])
        lost = {h for *_, hs in cuts for h in hs} - set(vectors)
        if lost:
            raise GQAError(f"{len(lost)} chunk vectors are missing from the embedding cache of {self.url_shown}; "
                           "ingest the documents again")
        dim = self._dim(gen, vectors)
        self.ensure_index(dim)
        tables = self._tables(gen["chunk_ids"], gen["rows_of"])
        titles = {d.doc_id: d.title for d, *_ in docs} | {d.doc_id: d.title for d in self.documents()}
        with self.transaction():
            for doc, _pages, _chunks, _hashes, source in docs:
                self._run(f"INSERT INTO documents({DOC_COLUMNS}, source_path, chunker) "
                          "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                          (doc.doc_id, doc.sha256, doc.file_name, doc.title, doc.family, doc.version, doc.doc_type,
                           doc.status, doc.pages, doc.chunks, doc.ingested_at, doc.superseded_by, source,
                           chunker_version))
            for doc_id, cut, pages, chunks, hashes in cuts:
                self._insert_cut(doc_id, cut, pages, chunks, hashes, vectors, titles[doc_id])
            for doc_id, cut, pages, chunks, _ in recuts or []:
                self._run("UPDATE documents SET cut = %s, pages = %s, chunks = %s, chunker = %s WHERE doc_id = %s",
                          (cut, len(pages), len(chunks), chunker_version, doc_id))
            for doc_id, (status, by) in status_changes.items():
                self._run("UPDATE documents SET status = %s, superseded_by = %s WHERE doc_id = %s",
                          (status, by, doc_id))
            for doc_id, family in (families or {}).items():
                self._run("UPDATE documents SET family = %s WHERE doc_id = %s", (family, doc_id))
            if event:
                self._run("INSERT INTO withdrawals(doc_id, action, reason, who, at, gen_id) VALUES (%s,%s,%s,%s,%s,%s)",
                          (event["doc_id"], event["action"], event["reason"], event["who"], event["at"], gen["gen_id"]))
            self._insert_generation(gen, dim, tables)
        if len(cuts) > 0:
            # fresh statistics, so that the planner weighs the HNSW index against the document filter on
            # the rows just written (autovacuum would, later); a sample of the table, not a scan
            self._run("ANALYZE chunks")

    def ensure_index(self, dim: int) -> None:
        """The HNSW index over the vectors of this dimension (one per dimension: a column without a fixed
        dimension cannot be indexed, its cast to `halfvec(dim)` can)."""
        self._run(f"CREATE INDEX IF NOT EXISTS chunks_hnsw_{int(dim)} ON chunks USING hnsw "
                  f"((embedding::halfvec({int(dim)})) halfvec_cosine_ops) WITH (m = {HNSW_M}, "
                  f"ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE dim = {int(dim)}")

    @property
    def url_shown(self) -> str:
        from rag.pg.connect import redact

        return redact(self.url)

    def _dim(self, gen: dict, vectors: dict[str, np.ndarray]) -> int:
        """The vector dimension of this generation: its new vectors', else the previous generation's."""
        if vectors:
            return int(next(iter(vectors.values())).shape[0])
        row = self._run("SELECT dim FROM generations WHERE embedder_id = %s ORDER BY seq DESC LIMIT 1",
                        (gen["embedder_id"],)).fetchone()
        if row is None:
            raise GQAError(f"nothing to publish in {self.url_shown}: no vectors for embedder {gen['embedder_id']}")
        return int(row[0])

    def _insert_cut(self, doc_id: str, cut: int, pages: list[Page], chunks: list[Chunk], hashes: list[str],
                    vectors: dict[str, np.ndarray], title: str) -> None:
        """Write one cut of a document: its pages, and its chunks with their vectors and text search vectors."""
        from pgvector import HalfVector

        with self._cursor() as cur:
            cur.executemany(
                "INSERT INTO pages(doc_id, cut, number, label, text, ocr, dropped) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                [(doc_id, cut, p.number, p.label, p.text, p.ocr, json.dumps(list(p.dropped), ensure_ascii=False))
                 for p in pages])
            cur.executemany(
                f"INSERT INTO chunks({CHUNK_COLUMNS}, content_hash, doc_cut, dim, embedding, tsv) VALUES "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,to_tsvector('english', %s)) "
                "ON CONFLICT (chunk_id) DO NOTHING",
                [(k.chunk_id, k.doc_id, k.ordinal, k.page, k.page_end, k.page_label, k.section, k.text, k.kind,
                  k.starts_mid, k.ends_mid, k.cut_instruction, k.ocr, cut, k.fields, h, f"{doc_id}/{cut}",
                  int(vectors[h].shape[0]), HalfVector(vectors[h]), row_text(title, k.section, k.text))
                 for k, h in zip(chunks, hashes, strict=True)])
            cur.execute("UPDATE chunks SET tsv_length = (SELECT coalesce(sum(cardinality(positions)), 0) "
                        "FROM unnest(tsv)) WHERE doc_cut = %s", (f"{doc_id}/{cut}",))

    def _tables(self, chunk_ids: list[str], rows_of: RowsOf) -> dict:
        """The rows' documents and the answerer's term statistics and abbreviations for a new generation:
        the previous generation's extended by the new rows when its rows are a prefix (a publish that adds
        documents or changes statuses only: rag.lexical.write_tables' rule), else made from every row."""
        prev_id = self.get_meta("current_generation")
        prev = self.generation(prev_id) if prev_id else None
        if prev is not None and list(prev["chunk_ids"]) == chunk_ids[:len(prev["chunk_ids"])]:
            start, terms = len(prev["chunk_ids"]), TermStats.from_json(json.loads(prev["terms"]))
            row_doc, order = list(prev["row_doc"]), list(prev["doc_order"])
            abbr = json.loads(prev["abbreviations"])
        else:
            start, terms, row_doc, order, abbr = 0, TermStats(), [], [], {}
        rows = rows_of(chunk_ids[start:]) if start < len(chunk_ids) else []
        row_doc += extend_rows(order, [d for d, _ in rows]).tolist()
        add_rows(terms, abbr, rows)
        return {"row_doc": row_doc, "doc_order": order, "terms": json.dumps(terms.to_json()),
                "abbreviations": json.dumps(abbr)}

    def _insert_generation(self, gen: dict, dim: int, tables: dict) -> None:
        """The generation row (each document's status and cut as of now) and the switch to it."""
        statuses: dict[str, str] = gen["statuses"]
        cuts = dict(self._run("SELECT doc_id, cut FROM documents WHERE doc_id = ANY(%s)",
                              (list(statuses),)).fetchall())
        manifest = {d: {"status": s, "cut": int(cuts.get(d, 0))} for d, s in statuses.items()}
        served = [f"{d}/{m['cut']}" for d, m in manifest.items()]
        avg = self._run("SELECT coalesce(avg(tsv_length), 1) FROM chunks WHERE doc_cut = ANY(%s)", (served,)).fetchone()
        self._run("INSERT INTO generations(gen_id, created_at, embedder_id, vectors, documents, dim, chunk_ids, "
                  "row_doc, doc_order, manifest, terms, abbreviations, avg_length) "
                  "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (gen_id) DO NOTHING",
                  (gen["gen_id"], gen["created_at"], gen["embedder_id"], gen["vectors"], gen["documents"], dim,
                   gen["chunk_ids"], tables["row_doc"], tables["doc_order"], json.dumps(manifest), tables["terms"],
                   tables["abbreviations"], max(1.0, float(avg[0]))))
        self._run("INSERT INTO meta(key, value) VALUES ('current_generation', %s) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (gen["gen_id"],))


class _Result:
    """A statement's rows, read before its connection went back to the pool (a cursor's reading methods)."""

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows
