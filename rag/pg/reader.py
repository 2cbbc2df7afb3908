"""What a reader holds of a generation in PostgreSQL: a Snapshot whose dense search (pgvector HNSW) and
lexical ranking (full-text search) run in SQL, restricted to the generation's documents and the filters.

Rows are positions in the generation's fixed chunk order, as in a generation folder, so everything
above retrieval (rag/qa.py, the reranker, the answerer) reads the same Snapshot it always did. The
answerer's term statistics and abbreviations were made by the publish and stored with the generation:
a pickup reads two JSON values instead of every passage's text.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from typing import cast

import numpy as np

from rag.bm25 import K1, B
from rag.errors import IndexError_
from rag.index import EXACT_LIMIT
from rag.lexical import Lexical, TermStats
from rag.pg.connect import pool
from rag.pg.store import PgStore
from rag.snapshot import Snapshot, StoredChunks
from rag.store import Store
from rag.text import stems

log = logging.getLogger(__name__)

# Text search configuration: English stemming and stop words (what `to_tsvector('english', ...)` used
# when the publish stored each chunk's tsvector).
TS_CONFIG = "english"
# Above EXACT_LIMIT rows, a word held by more than this share of the rows does not by itself make a row a
# lexical candidate (PgLexical.selective): 5%, a word in 1 row of 20 (its BM25 idf about 3, a rare word's 9).
COMMON_SHARE = 0.05


class PgRows:
    """A generation's rows as SQL sees them: chunk id <-> row, and the `doc_id/cut` of each document."""

    def __init__(self, url: str, gen: dict) -> None:
        self.url, self.gen_id, self.dim = url, gen["gen_id"], int(gen["dim"])
        self.chunk_ids: list[str] = list(gen["chunk_ids"])
        self.row_of = {c: i for i, c in enumerate(self.chunk_ids)}
        self.doc_order: tuple[str, ...] = tuple(gen["doc_order"])
        self.row_doc = np.asarray(gen["row_doc"], dtype=np.int32)
        manifest = gen["manifest"]
        self.doc_cut = [f"{d}/{manifest[d]['cut']}" if d in manifest else "" for d in self.doc_order]
        self.avg_length = float(gen.get("avg_length") or 1.0)  # mean words per row (BM25's avg_len)

    def allowed_cuts(self, allowed: np.ndarray | None) -> list[str]:
        """The `doc_id/cut` of the documents with an allowed row (a filter is per document)."""
        if allowed is None:
            return [c for c in self.doc_cut if c]
        return [self.doc_cut[i] for i in np.unique(self.row_doc[allowed]) if self.doc_cut[i]]

    def rows(self, found: list[tuple[str, float]]) -> list[tuple[int, float]]:
        """(chunk id, score) -> (row, score), dropping any chunk this generation has no row for."""
        return [(self.row_of[c], float(s)) for c, s in found if c in self.row_of]


class PgIndex:
    """The dense side: pgvector's HNSW over the chunks' halfvec vectors, cosine distance."""

    def __init__(self, rows: PgRows) -> None:
        self.rows, self.ntotal, self.d = rows, len(rows.chunk_ids), rows.dim

    def ranking(self, query_vec: np.ndarray, allowed: np.ndarray | None, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the best `k` allowed rows, best first.

        Up to rag.index.EXACT_LIMIT rows the search is exact, as the embedded store's flat index is (the
        ORDER BY names the column itself, which no index covers, so every allowed row is compared: at
        5,000 rows HNSW lost 3 of 64 dev questions' gold pages from the top 5). Above it, the HNSW index
        (its expression: the column cast to its dimension) with the filter in the WHERE clause, and
        pgvector's iterative scan (rag.pg.connect._configure) reads on until k rows pass the filter;
        relaxed_order may return rows slightly out of order, so they are sorted by distance here.
        """
        from pgvector import HalfVector

        cuts = self.rows.allowed_cuts(allowed)
        if not cuts or k <= 0:
            return []
        q = HalfVector(np.asarray(query_vec, dtype=np.float32).reshape(-1))
        with pool(self.rows.url).connection() as conn:
            found = conn.execute(self.sql(), (q, cuts, q, k)).fetchall()
        ranked = sorted(((c, 1.0 - float(dist)) for c, dist in found), key=lambda cs: -cs[1])
        return self.rows.rows(ranked)

    def sql(self) -> str:
        """The search: (query, allowed doc cuts, query, k) -> (chunk id, cosine distance), nearest first."""
        d = self.rows.dim
        column = "embedding" if self.ntotal <= EXACT_LIMIT else f"(embedding::halfvec({d}))"
        return (f"SELECT chunk_id, {column} <=> %s::halfvec({d}) AS dist FROM chunks "
                f"WHERE dim = {d} AND doc_cut = ANY(%s) ORDER BY {column} <=> %s::halfvec({d}) LIMIT %s")


def query_words(text: str) -> list[str]:
    """The distinct words of a question, in order, as to_tsquery reads them (letters and digits only).

    Example: 'Dose of apixaban in AF?' -> ['dose', 'of', 'apixaban', 'in', 'af']
    """
    return list(dict.fromkeys(re.findall(r"[^\W_]+", text.lower())))


class PgLexical(Lexical):
    """The lexical side: BM25 computed in SQL over PostgreSQL's full-text vectors; the term statistics and
    abbreviations the answerer reads are the generation's stored ones.

    The GIN index finds the rows holding a question word (`tsv @@ q`); each is scored as rag.bm25 scores
    (Lucene's weight idf * tf / (tf + k1 * (1 - b + b * len / avg_len)), k1 1.5, b 0.75) from its word
    counts (the positions in its tsvector) and length. ts_rank is not BM25: it weighs every word alike and
    saturates differently; ranked by it the dev set lost 2 of 64 gold pages from the answers' top 5, by
    this 1 (bench/pg_dev.py). What still differs from the embedded store: PostgreSQL's English stemmer
    and stop words (not bm25s's), and idf from the answerer's term statistics (rag.text.stems).
    """

    def __init__(self, rows: PgRows, terms: TermStats, abbreviations: dict[str, dict[str, frozenset[str]]]) -> None:
        super().__init__(None, terms, abbreviations)  # type: ignore[arg-type]  # no BM25 tables: SQL ranks
        self.rows = rows

    def scores(self, query: str) -> np.ndarray:
        """Not available: ranking happens in SQL (this store keeps no per-row score table)."""
        raise NotImplementedError("the PostgreSQL store ranks in SQL: use ranking()")

    def weights(self, query: str) -> tuple[list[str], list[float]]:
        """The query's words that are content words (rag.text.stems) and the idf of each."""
        words, idf = [], []
        for w in query_words(query):
            found = stems(w)
            if found:
                words.append(w)
                idf.append(max(self.idf(t) for t in found))
        return words, idf

    def selective(self, words: list[str], idf: list[float]) -> list[str]:
        """The words rows are found by above EXACT_LIMIT rows: those held by at most COMMON_SHARE of the rows
        (all of them when none is). Example: ['dose', 'warfarin'] -> ['warfarin'] when 'dose' is in 30% of rows."""
        if self.size <= EXACT_LIMIT:
            return words
        floor = math.log(1 + (self.size + 1) / (COMMON_SHARE * self.size + 0.5))  # idf of a word that common
        return [w for w, i in zip(words, idf, strict=True) if i > floor] or words

    def ranking(self, query: str, allowed: np.ndarray | None, k: int) -> list[tuple[int, float]]:
        """(row, score) of the best `k` allowed rows holding a word of the query, best first.

        Up to EXACT_LIMIT rows every row holding a question word is scored (exact BM25, as the embedded
        store). Above it the rows are found by the question's selective words only (`selective`), still
        scored on all its words, and by all of them when that finds fewer than k: a word in 1 row of 20
        is what makes a row match a 3-word OR query at 100,000 rows, and skipping rows holding only such
        words cut the p50 from 216 to 51 ms (bench/pg_scale.py), at the cost of exactness: a row holding
        only common words is not ranked, though it may have outscored the k-th.
        """
        words, idf = self.weights(query)
        cuts = self.rows.allowed_cuts(allowed)
        if not words or not cuts or k <= 0:
            return []
        finding = self.selective(words, idf)
        found = self._bm25(words, idf, finding, cuts, k)
        if len(found) < k and len(finding) < len(words):
            found = self._bm25(words, idf, words, cuts, k)
        return self.rows.rows([(c, r) for c, r in found if r > 0])

    def _bm25(self, words: list[str], idf: list[float], finding: list[str], cuts: list[str], k: int) -> list:
        """(chunk id, BM25 score on `words`) of the best k rows holding a word of `finding`."""
        sql = (f"WITH w AS (SELECT lex, max(idf) AS idf FROM unnest(%(words)s::text[], %(idf)s::float8[]) "
               f"AS u(t, idf), unnest(tsvector_to_array(to_tsvector('{TS_CONFIG}', t))) AS lex GROUP BY lex) "
               "SELECT c.chunk_id, sum(w.idf * x.tf / (x.tf + %(k1)s * (1 - %(b)s + %(b)s * c.tsv_length / "
               "%(avg)s))) AS r FROM chunks c "
               "CROSS JOIN LATERAL (SELECT lexeme, cardinality(positions) AS tf FROM unnest(c.tsv)) x "
               f"JOIN w ON w.lex = x.lexeme WHERE c.tsv @@ to_tsquery('{TS_CONFIG}', %(q)s) "
               "AND c.doc_cut = ANY(%(cuts)s) GROUP BY c.chunk_id ORDER BY r DESC, c.chunk_id LIMIT %(k)s")
        args = {"words": words, "idf": idf, "q": " | ".join(finding), "cuts": cuts, "k": k, "k1": K1, "b": B,
                "avg": self.rows.avg_length}
        with pool(self.rows.url).connection() as conn:
            return conn.execute(sql, args).fetchall()


def published(url: str) -> str | None:
    """The generation readers should load now (one indexed read on a pooled connection)."""
    with pool(url).connection() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'current_generation'").fetchone()
    return row[0] if row else None


def load_snapshot(url: str, embedder_id: str, gen_id: str | None = None) -> Snapshot:
    """Load generation `gen_id` (default: the published one) of the database at `url`."""
    store = PgStore(url, readonly=True)
    try:
        gen_id = gen_id or store.get_meta("current_generation")
        if not gen_id:
            raise IndexError_(f"nothing is published in {store.url_shown}; run `guideline-qa ingest PATH` first")
        gen = store.generation(gen_id)
        if gen is None:
            raise IndexError_(f"generation {gen_id} is not in {store.url_shown}; re-run `guideline-qa ingest`")
        if gen["embedder_id"] != embedder_id:
            raise IndexError_(f"generation {gen_id} in {store.url_shown} was built with embedder "
                              f"{gen['embedder_id']!r} but the configured one is {embedder_id!r}; set "
                              "GQA_EMBED_MODEL back or ingest into a new database")
        manifest: dict = gen["manifest"]
        docs = {d.doc_id: replace(d, status=manifest[d.doc_id]["status"]) for d in store.documents()
                if d.doc_id in manifest}
    finally:
        store.close()
    rows = PgRows(url, gen)
    absent = [d for d in rows.doc_order if d not in docs]
    if absent:
        raise IndexError_(f"generation {gen_id} refers to {len(absent)} documents missing from the database; "
                          "re-ingest")
    abbr = {d: {k: frozenset(v) for k, v in a.items()} for d, a in json.loads(gen["abbreviations"]).items()}
    lexical = PgLexical(rows, TermStats.from_json(json.loads(gen["terms"])), abbr)

    def opener() -> Store:  # the same methods as the SQLite store's, which is what readers are typed against
        return cast(Store, PgStore(url, readonly=True))

    snap = Snapshot(gen_id, PgIndex(rows), StoredChunks(None, rows.chunk_ids, opener), docs, np.zeros(0, dtype=bool),
                    rows.row_doc, rows.doc_order, None, lexical=lexical, opener=opener)
    snap.current_rows = snap.doc_mask(lambda d: d.status == "current")
    log.info("loaded generation %s from PostgreSQL: %d chunks, %d documents", gen_id, snap.size, len(docs))
    return snap

