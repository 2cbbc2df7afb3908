"""A million passages on one machine (issue 13): build a synthetic library through the product's publish
path, then measure what a reader and a publisher see. A benchmark, not a test: it never fails on a time.

    python bench/scale.py --chunks N --home DIR [--seed 0] [--batches 4]
    python bench/scale.py --chunks N --home DIR --measure [--json] [--queries 200] [--profile]

Build: bench/synthetic.py's seeded corpus of N passages (clustered vectors, Zipf text) becomes documents
of 50 chunks on 10 pages (bench/scale_library.py: families of one to three versions, the older ones
superseded) published with ingest.pipeline.publish_generation in --batches runs: the first builds the
FAISS index (rag.index.new_index: HNSW above 50,000 rows) and the tables, each later one appends its
rows to the same index and extends the previous generation's tables (the incremental path). The
embedder id written is the real embedder's (rag.embedder.from_settings), so the home serves real readers
(`guideline-qa ask`); the embedding cache holds every chunk's vector and its units'. DIR/scale/ keeps
what --measure needs: the seeded questions (bench/synthetic.make_queries: text, vector and the family of
the passage each was drawn from) and a pool of spare passages for the documents --measure publishes.

Measure (one JSON object with --json):
- retrieve_p50_ms / retrieve_p95_ms: Engine.retrieve on the home's published generation, with the real
  embedding of the question text (the product path; the text is generated words, the vectors the index
  holds are synthetic, so a real embedding is only the cost of one, not a meaningful neighbour).
  retrieve_filtered_p95_ms: the same with Filters(families=(the family of the passage the question was
  drawn from,)) - one document's current version, as a user filters to a guideline; doc_type too.
  retrieve_synthetic_vec_*: with the question's synthetic vector instead (the index searched on its own
  distribution, as recall is).
- recall_at_10: the product's dense path (rag.retrieve.dense_ranking over the current rows, the way a
  question searches) against exact search over the same vectors (read back from the index), on the
  synthetic question vectors; recall_at_10_index: the index's plain search against exact over all rows.
- cold_start_s: a new reader process (bench/scale_reader.py, started with subprocess) from its start
  until its first answer through rag.qa.QA returns (interpreter, imports, model load, generation load).
- pickup_s: that reader keeps answering in a loop; one more document is published (the real ingest
  publish stage, ingest.pipeline._publish); a thread polls the published generation every 10 ms to take
  the commit's time; pickup is from then until the reader's first answer from the new generation
  returns (that answer loads the generation). publish_during_questions_s is this publish's duration.
- reader_rss_mb: the reader's resident set after its questions (peak_rss_mb: its peak).
- publish_one_s: another 30-page document (150 chunks; vectors from the pool, cached first as the
  embed stage would, so embedding is excluded) through ingest.pipeline._publish with no reader running:
  version placement over every document, the previous generation read, HNSW add, the generation
  written with its extended tables, the commit. Measured last.
Each --measure run publishes two documents (a family of their own each, numbered on from those already
published), so the home grows by 300 chunks per run and a second run measures the same things on it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch and faiss load (see rag/config.py)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import scale_library as lib  # noqa: E402
import scale_measure  # noqa: E402
import synthetic  # noqa: E402

from ingest.pipeline import Update, ingest_lock, publish_generation  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.errors import GQAError  # noqa: E402
from rag.index import new_index  # noqa: E402
from rag.snapshot import database_path  # noqa: E402
from rag.store import Store  # noqa: E402

NOTES = "scale"  # DIR/scale: the bench's own files beside the product's
QUERIES = 200
ADD_BLOCK = 20_000  # vectors per index.add call, for progress lines


def progress(msg: str) -> None:
    """A progress line on stderr (stdout carries the JSON)."""
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def real_embedder_identity(settings: Settings) -> tuple[str, int]:
    """The id and dimension of the configured embedder (loaded once: it also caches its ONNX export in
    the home, as a first real ingest does)."""
    from rag.embedder import from_settings

    emb = from_settings(settings)
    return emb.id, emb.dim


def build(n: int, home: Path, seed: int = 0, n_batches: int = 4, embedder_id: str | None = None,
          queries: int = QUERIES) -> dict:
    """Publish a synthetic library of n passages into an empty home; returns what it did and how long."""
    settings = Settings.from_env(home=home)
    dim = synthetic.DIM
    if embedder_id is None:
        embedder_id, dim = real_embedder_identity(settings)
    if dim != synthetic.DIM:
        raise GQAError(f"the configured embedder has {dim} dimensions, bench/synthetic.py makes {synthetic.DIM}; "
                       "unset GQA_EMBED_MODEL")
    started = time.perf_counter()
    blocks: list[np.ndarray] = []
    corpus = synthetic.make_corpus(n, blocks.append, seed)
    order = lib.topical_order(corpus)
    vecs = np.concatenate(blocks)[order]
    del blocks
    plans = lib.plan_documents(corpus, seed)
    progress(f"corpus of {n:,} passages in {len(plans):,} documents generated "
             f"({time.perf_counter() - started:.1f} s)")
    store = Store(database_path(home))
    timings: list[dict] = []
    try:
        with ingest_lock(home):
            if store.get_meta("current_generation"):
                raise GQAError(f"{home} already holds a published library; build into a new --home")
            index = new_index(dim, n)
            chunk_ids: list[str] = []
            docs: list = []
            for b, part in enumerate(lib.batches(plans, n_batches)):
                timings.append(_publish_batch(b, part, corpus, order, vecs, index, settings, store, embedder_id,
                                              chunk_ids, docs))
    finally:
        store.close()
    notes = home / NOTES
    notes.mkdir(exist_ok=True)
    _save_questions(notes, corpus, order, plans, queries)
    lib.save_pool(notes, *lib.spare_pool(corpus, np.random.default_rng(seed + 7)))
    out = {"n_chunks": n, "documents": len(plans), "superseded": sum(p.doc.status != "current" for p in plans),
           "seed": seed, "embedder_id": embedder_id, "index": scale_measure.describe(index), "batches": timings,
           "build_s": round(time.perf_counter() - started, 1)}
    (notes / "build.json").write_text(json.dumps(out, indent=1))
    return out


def _publish_batch(b: int, part: list, corpus, order: np.ndarray, vecs: np.ndarray, index, settings: Settings,
                   store: Store, embedder_id: str, chunk_ids: list[str], docs: list) -> dict:
    """Make one batch's records, cache its vectors, add them to the index and publish a generation."""
    t0 = time.perf_counter()
    new_docs, cache = [], {}
    for p in part:
        texts = [lib.punctuate(corpus.text(int(order[r]))) for r in p.rows]
        made, vectors = lib.materialize(p, texts, vecs[p.rows], embedder_id)
        new_docs.append(made)
        cache.update(vectors)
    store.cache_vectors(cache, embedder_id)
    del cache
    t1 = time.perf_counter()
    rows = np.concatenate([p.rows for p in part])
    for s in range(0, len(rows), ADD_BLOCK):
        index.add(vecs[rows[s:s + ADD_BLOCK]])
        done = index.ntotal
        rate = (min(s + ADD_BLOCK, len(rows))) / max(1e-9, time.perf_counter() - t1)
        progress(f"batch {b + 1}: index holds {done:,} vectors ({rate:,.0f}/s in this batch)")
    t2 = time.perf_counter()
    chunk_ids += [c.chunk_id for _, _, chunks, _, _ in new_docs for c in chunks]
    docs += [p.doc for p in part]
    gen = publish_generation(settings, store, embedder_id, index, list(chunk_ids), list(docs), Update({}), new_docs)
    t3 = time.perf_counter()
    progress(f"batch {b + 1}: published {gen} ({len(chunk_ids):,} rows; records {t1 - t0:.1f} s, "
             f"index add {t2 - t1:.1f} s, publish {t3 - t2:.1f} s)")
    return {"rows": len(chunk_ids), "generation": gen, "records_s": round(t1 - t0, 2),
            "index_add_s": round(t2 - t1, 2), "publish_s": round(t3 - t2, 2)}


def _save_questions(notes: Path, corpus, order: np.ndarray, plans: list, m: int) -> None:
    """The seeded questions (make_queries) with the family of the passage each was drawn from."""
    texts, vecs = synthetic.make_queries(corpus, m)
    drawn = np.random.default_rng(1).integers(0, corpus.n, m)  # make_queries's own first draw (seed 1)
    position = np.empty(corpus.n, dtype=np.int64)
    position[order] = np.arange(corpus.n)
    starts = np.array([p.rows[0] for p in plans])
    owner = np.searchsorted(starts, position[drawn], side="right") - 1
    families = [plans[int(i)].doc.family for i in owner]
    (notes / "queries.json").write_text(json.dumps({"texts": texts, "families": families}))
    np.save(notes / "query_vectors.npy", vecs.astype(np.float32))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, required=True, help="passages in the library (build)")
    ap.add_argument("--home", type=Path, required=True, help="the library's home folder (GQA_HOME)")
    ap.add_argument("--measure", action="store_true", help="measure the library built in --home")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batches", type=int, default=4, help="publishes the build is split into")
    ap.add_argument("--queries", type=int, default=QUERIES, help="questions timed per kind (measure)")
    ap.add_argument("--profile", action="store_true", help="cProfile the idle publish (top entries on stderr)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home.expanduser().resolve()
    try:
        if args.measure:
            if not (home / NOTES / "build.json").exists():
                raise GQAError(f"{home} holds no library built by bench/scale.py; run it without --measure first")
            out = scale_measure.measure(home, args.queries, args.profile, progress)
        else:
            out = build(args.chunks, home, args.seed, args.batches, queries=max(args.queries, QUERIES))
    except GQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    gc.collect()
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
