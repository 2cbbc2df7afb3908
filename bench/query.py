"""Query latency: retrieval (embed, FAISS, BM25, fusion) and `ask` on the real corpus; exact against
approximate FAISS (latency, recall@10) on synthetic corpora of 100,000 and 1,000,000 chunks.

    python bench/query.py [--home PATH] [--quick] [--sizes 100000,1000000] [--queries 200] [--no-write]

Prints tables and rewrites the '## Query' section of bench/RESULTS.md. A benchmark, not a test: it
never fails on a time.
"""

from __future__ import annotations

import os

# Before torch and faiss load: on a busy 2-core host spin-waiting OpenMP threads wreck tail latency.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import query_report as report  # noqa: E402
import synthetic  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.embedder import SentenceTransformerEmbedder  # noqa: E402
from rag.embedder import from_settings as embedder_from  # noqa: E402
from rag.engine import Engine, View  # noqa: E402
from rag.index import EXACT_LIMIT, new_index  # noqa: E402
from rag.lexical import Lexical, rrf  # noqa: E402
from rag.qa import QA  # noqa: E402
from rag.query import Library  # noqa: E402
from rag.retrieve import Filters, dense_ranking, to_hits  # noqa: E402
from rag.snapshot import Snapshot, published_generation  # noqa: E402
from rag.types import Chunk, Document  # noqa: E402

log = logging.getLogger("bench.query")
CORPUS = ROOT.parent / "shared" / "corpus"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
RESULTS = ROOT / "bench" / "RESULTS.md"
REFERENCE = ROOT / "bench" / "query_reference.json"  # the idle 2-core run on the device machine
NPROBES = (16, 32, 64, 128, 256)  # IVF lists probed, swept
IVF_NPROBE = 128  # the smallest swept value with recall@10 >= 0.95 at 1M (0.97)
HNSW_EFS = (128, 256)  # HNSW efSearch, swept (below 200 the product's k=200 request decides)


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000.0


def p50_p95(xs: list[float]) -> tuple[float, float]:
    """Median and 95th percentile. Example: p50_p95([1, 2, 3]) -> (2.0, 2.9)"""
    a = np.asarray(xs, dtype=float)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def load1() -> float:
    """The one-minute load average (what `uptime` prints first)."""
    return os.getloadavg()[0]


def timed_retrieval(engine: Engine, question: str, embed_text: str, vec: np.ndarray | None) -> dict[str, float]:
    """One retrieval split into the steps Engine.retrieve takes (mirrors its code), in ms.

    `vec` replaces the embedding of `embed_text` (synthetic corpora: the text is a real question so the
    embed step costs what it costs in the product, the vector is the synthetic one).
    """
    view, s = engine.view(), engine.settings
    snap, lexical = view.snap, view.lexical
    depth = max(50, 3 * s.top_k)  # as in Engine.retrieve
    t0 = time.perf_counter()
    qvec = engine.embedder.embed([embed_text])
    t1 = time.perf_counter()
    qvec = qvec if vec is None else vec
    allowed = Filters().mask(snap)
    dense = dense_ranking(snap, qvec, allowed, depth)
    t2 = time.perf_counter()
    lex = lexical.ranking(question, allowed, depth)
    t3 = time.perf_counter()
    to_hits(snap, rrf([dense, lex], s.top_k, s.rrf_k))
    t4 = time.perf_counter()
    return {"embed": ms(t1 - t0), "faiss": ms(t2 - t1), "bm25": ms(t3 - t2), "fusion": ms(t4 - t3)}


def timed_product(engine: Engine, question: str, embed_text: str, vec: np.ndarray | None) -> tuple[float, float]:
    """Embedding plus Engine.retrieve as the product calls it: (wall ms, CPU ms of this process, all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    qvec = engine.embedder.embed([embed_text])
    engine.retrieve(question, query_vec=qvec if vec is None else vec)
    return ms(time.perf_counter() - t0), ms(time.process_time() - c0)


def retrieval_stats(engine: Engine, items: list[tuple[str, str, np.ndarray | None]], rounds: int) -> dict:
    """p50/p95 per step and for the whole retrieval over `rounds` passes of `items`, with the load."""
    for q, e, v in items[:5]:  # warm-up: first calls allocate and fill caches
        timed_product(engine, q, e, v)
    steps: dict[str, list[float]] = {"embed": [], "faiss": [], "bm25": [], "fusion": [], "total": [], "cpu": []}
    load_start = load1()
    for _ in range(rounds):
        for q, e, v in items:
            for name, value in timed_retrieval(engine, q, e, v).items():
                steps[name].append(value)
            wall, cpu = timed_product(engine, q, e, v)
            steps["total"].append(wall)
            steps["cpu"].append(cpu)
    return {"n": len(steps["total"]), "load": (load_start, load1()), **{k: p50_p95(v) for k, v in steps.items()}}


def dev_questions(path: Path = DEV) -> list[str]:
    """The dev set's questions."""
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def real_home(home: str | None, embedder: SentenceTransformerEmbedder) -> tuple[Path, float | None, bool]:
    """A home with the real corpus published: the given one, else a fresh temporary ingest (its seconds)."""
    if home and published_generation(Path(home)):
        return Path(home), None, False
    from ingest.pipeline import ingest

    tmp = Path(tempfile.mkdtemp(prefix="gqa-bench-query-"))
    log.info("ingesting %s into %s", CORPUS, tmp)
    t = time.perf_counter()
    rep = ingest([CORPUS], Settings.from_env(home=tmp), embedder)
    if rep.failed:
        log.warning("ingest failures: %s", rep.failed)
    return tmp, time.perf_counter() - t, True


def bench_real(args: argparse.Namespace, embedder: SentenceTransformerEmbedder) -> dict:
    """Retrieval and `ask` latency on the real corpus with the dev questions."""
    home, ingest_s, made = real_home(args.home or os.environ.get("GQA_HOME"), embedder)
    try:
        settings = Settings.from_env(home=home)
        engine = Engine(settings, embedder)
        t = time.perf_counter()
        snap = engine.snapshot()
        load_s = time.perf_counter() - t
        questions = dev_questions(Path(args.dev))
        out = {"chunks": snap.size, "docs": len(snap.docs), "home": "temporary ingest" if made else str(home),
               "ingest_s": ingest_s, "snapshot_load_s": load_s, "index": type(snap.index).__name__}
        out["retrieve"] = retrieval_stats(engine, [(q, q, None) for q in questions], args.rounds)
        log.info("real retrieve: %s", out["retrieve"])
        qa = QA(settings, engine=engine)
        for q in questions[:3]:
            qa.answer(q)
        walls: list[float] = []
        cpus: list[float] = []
        parts: dict[str, list[float]] = {"retrieve": [], "answer": []}
        load_start = load1()
        for _ in range(args.rounds):
            for q in questions:
                t0, c0 = time.perf_counter(), time.process_time()
                a = qa.answer(q)
                walls.append(ms(time.perf_counter() - t0))
                cpus.append(ms(time.process_time() - c0))
                for k in parts:
                    parts[k].append(a.timings_ms[k])
        out["ask"] = {"n": len(walls), "load": (load_start, load1()), "total": p50_p95(walls),
                      "cpu": p50_p95(cpus), **{k: p50_p95(v) for k, v in parts.items()}}
        log.info("real ask: %s", out["ask"])
        try:  # how much the extractive answerer embeds per question (its internals may change: optional)
            from rag.answer_config import DEFAULT
            from rag.extractive import candidates as sentence_candidates

            out["candidates"] = float(np.mean([len(sentence_candidates(engine.retrieve(q, DEFAULT.passages_read)))
                                               for q in questions]))
        except (ImportError, TypeError, AttributeError) as exc:
            log.warning("candidate count skipped: %s", exc)
        out["calibration"] = calibration(snap, embedder, questions)
        log.info("calibration: %s", out["calibration"])
        return out
    finally:
        if made:
            shutil.rmtree(home, ignore_errors=True)


def _ivf_curve(x: np.ndarray, queries: np.ndarray) -> dict:
    """Pair and query cosines, and IVF recall@10 at nprobe = 1%, 2%, 5% of 4*sqrt(n) lists."""
    import faiss

    rng = np.random.default_rng(5)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    top, ids = exact.search(queries, 10)
    ivf = ivf_flat(x)
    curve = {}
    for frac in (0.01, 0.02, 0.05):
        ivf.nprobe = max(1, round(frac * ivf.nlist))
        curve[f"{frac:.0%}"] = recall_at(ivf.search(queries, 10)[1], ids, 10)
    pairs = rng.integers(0, len(x), (2, 3000))
    return {"random_pair": float(np.mean(np.sum(x[pairs[0]] * x[pairs[1]], axis=1))), "top1": float(top[:, 0].mean()),
            "top10": float(top[:, 9].mean()), "recall": curve, "nlist": ivf.nlist}


def calibration(snap: Snapshot, embedder: SentenceTransformerEmbedder, questions: list[str]) -> dict:
    """The real corpus against a synthetic one of the same size: is the synthetic data no easier for IVF?"""
    real = snap.index.reconstruct_n(0, snap.size)
    blocks: list[np.ndarray] = []
    corpus = synthetic.make_corpus(snap.size, sink=blocks.append)
    return {"n": snap.size, "real": _ivf_curve(real, embedder.embed(questions)),
            "synthetic": _ivf_curve(np.concatenate(blocks), synthetic.make_queries(corpus, 200)[1])}


def fast_lexical(corpus: synthetic.Corpus) -> Lexical:
    """A product Lexical whose BM25 matrix comes from synthetic.bm25_scores instead of bm25s's Python loop.

    The object is built by the product on a one-chunk snapshot, then handed the corpus's matrix; the
    query path (Lexical.ranking -> bm25s get_scores) is the product's own.
    """
    doc = Document(doc_id="d", sha256="", file_name="d.pdf", title="", family="d", version="1", doc_type="guideline")
    tiny = Snapshot("tiny", None, [Chunk("c", "d", 0, 1, 1, "1", "", corpus.vocab[0])], {"d": doc},
                    np.ones(1, dtype=bool))
    lex = Lexical.of(tiny)
    if not hasattr(lex, "bm25") or not hasattr(lex, "size"):
        raise RuntimeError("rag.lexical.Lexical no longer has .bm25/.size: update bench/query.py:fast_lexical")
    lex.bm25.scores = synthetic.bm25_scores(corpus, lex.bm25.k1, lex.bm25.b)
    lex.bm25.vocab_dict = {str(w): i for i, w in enumerate(corpus.vocab)}
    lex.bm25.unique_token_ids_set = set(lex.bm25.vocab_dict.values())
    lex.bm25.nonoccurrence_array = None  # 'lucene' scoring has none
    lex.size = corpus.n
    return lex


def engine_over(snap: Snapshot, lexical: Lexical, embedder: SentenceTransformerEmbedder, home: Path) -> Engine:
    """A product Engine serving an in-memory snapshot (nothing is published under `home`, so it keeps it)."""
    engine = Engine(Settings.from_env(home=home), embedder)
    # bench only: the synthetic snapshot is not on disk, so nothing published replaces this view
    engine._view = View(snap, lexical, home, Library.build(snap.docs.values(), engine.common))
    return engine


def recall_at(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k found in the approximate top-k.

    Example: recall_at(np.array([[1, 2]]), np.array([[2, 3]]), 2) -> 0.5
    """
    hits = [len(set(a[:k]) & set(e[:k])) for a, e in zip(approx_ids, exact_ids, strict=True)]
    return float(np.mean(hits)) / k


def single_query_ms(index, queries: np.ndarray, k: int) -> tuple[float, float]:
    """p50/p95 of one-query searches (the product searches one question at a time)."""
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append(ms(time.perf_counter() - t))
    return p50_p95(times)


def ivf_flat(xb: np.ndarray, nprobe: int = IVF_NPROBE):
    """The IVF alternative (bench only): 4*sqrt(n) lists, k-means on 40 rows per list, `nprobe` lists probed."""
    import faiss

    n, dim = xb.shape
    nlist = max(1, int(4 * n**0.5))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)
    index.train(np.ascontiguousarray(xb[np.sort(sample)]))
    index.add(xb)
    index.nprobe = min(nprobe, nlist)
    return index


def describe(index) -> str:
    """A short name with the parameters that matter. Example: 'HNSW32 efC=80 efS=128'"""
    name = type(index).__name__
    if "HNSW" in name:
        h = index.hnsw
        return f"HNSW{h.nb_neighbors(1)} efC={h.efConstruction} efS={h.efSearch}"
    if "IVF" in name:
        return f"IVF{index.nlist},Flat nprobe={index.nprobe}"
    return f"exact ({name})"


def candidates(n: int, with_ivf: bool) -> list[tuple[str, object]]:
    """(role, builder(xb) -> index) for size n: the product's index, then the alternatives compared with it."""

    def hnsw(xb: np.ndarray):  # new_index's HNSW, also below EXACT_LIMIT where the product stays exact
        index = new_index(synthetic.DIM, max(n, EXACT_LIMIT + 1))
        index.add(xb)
        return index

    out: list[tuple[str, object]] = [("product" if n > EXACT_LIMIT else "alternative", hnsw)]
    if with_ivf:
        out.append(("alternative", ivf_flat))
    return out


def sweep(index, exact_ids: np.ndarray, queries: np.ndarray) -> list[dict]:
    """Recall@10 and one-query latency per search-time parameter, on tuning queries, both with k=200 (the
    product's request; HNSW then explores max(efSearch, 200) candidates)."""
    hnsw = hasattr(index, "hnsw")
    knob = (lambda v: setattr(index.hnsw, "efSearch", v)) if hnsw else (lambda v: setattr(index, "nprobe", v))
    keep = index.hnsw.efSearch if hnsw else index.nprobe
    values = HNSW_EFS if hnsw else [p for p in NPROBES if p <= index.nlist]
    rows = []
    for v in values:
        knob(v)
        rec = recall_at(index.search(queries, 200)[1], exact_ids, 10)
        p50, p95 = single_query_ms(index, queries[:100], 200)
        rows.append({"param": f"{'efSearch' if hnsw else 'nprobe'}={v}", "recall10": rec, "p50": p50, "p95": p95,
                     "load": load1()})
        log.info("%s: recall@10 %.3f, p50 %.1f ms, p95 %.1f ms", rows[-1]["param"], rec, p50, p95)
    knob(keep)
    return rows


def bench_synthetic(n: int, args: argparse.Namespace, embedder: SentenceTransformerEmbedder,
                    questions: list[str], home: Path) -> dict:
    """Exact and approximate retrieval on n synthetic chunks, through the product's Engine."""
    import faiss

    out: dict = {"n": n}
    exact = faiss.IndexFlatIP(synthetic.DIM)
    t = time.perf_counter()
    corpus = synthetic.make_corpus(n, sink=exact.add)
    out["generate_s"] = time.perf_counter() - t
    xb = faiss.rev_swig_ptr(exact.get_xb(), n * synthetic.DIM).reshape(n, synthetic.DIM)  # a view, no copy
    texts, qv = synthetic.make_queries(corpus, args.queries, seed=1)
    _, tune_v = synthetic.make_queries(corpus, args.queries, seed=2)  # parameters are read off these, not qv
    exact_ids = exact.search(qv, 200)[1]
    out["cosines"] = {"top1": float(exact.search(qv, 1)[0].mean()),
                      "random_pair": float(np.mean(np.sum(xb[:2000] * xb[2000:4000], axis=1)))}

    t = time.perf_counter()
    lex = fast_lexical(corpus)
    out["bm25_build_s"] = time.perf_counter() - t
    if n <= args.product_bm25_max:  # check the shortcut against the product's own BM25 build
        t = time.perf_counter()
        product_lex = Lexical.of(synthetic.make_snapshot(corpus, exact))
        out["bm25_product_build_s"] = time.perf_counter() - t
        same = all(np.allclose(product_lex.scores(q), lex.scores(q), rtol=1e-4, atol=1e-5) for q in texts[:50])
        out["bm25_same_scores"] = same
        lex = product_lex
        if not same:
            log.warning("vectorised BM25 differs from bm25s's; the product's build is used at this size")

    items = [(texts[i], questions[i % len(questions)], qv[i:i + 1]) for i in range(len(texts))]
    tune_ids = exact.search(tune_v, 10)[1]
    rows: list[dict] = []
    specs = [("product" if n <= EXACT_LIMIT else "reference", lambda _xb: exact)] + candidates(n, not args.no_ivf)
    out["sweeps"] = {}
    for role, build in specs:
        t = time.perf_counter()
        index = build(xb)  # one approximate index at a time: at 1M each holds another 1.5 GB
        row = {"name": describe(index), "role": role, "build_s": time.perf_counter() - t}
        if role == "product":
            out["product"] = row["name"]
        if index is not exact:
            found = index.search(qv, 200)[1]  # as the product asks: 200 candidates
            row["recall10"], row["recall50"] = recall_at(found, exact_ids, 10), recall_at(found, exact_ids, 50)
            out["sweeps"][row["name"]] = sweep(index, tune_ids, tune_v)
        engine = engine_over(synthetic.make_snapshot(corpus, index), lex, embedder, home)
        row["retrieve"] = retrieval_stats(engine, items, 1)
        log.info("%d %s: %s", n, row["name"], row)
        rows.append(row)
        del engine, index
    out["rows"] = rows
    out["max_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", help="a GQA_HOME with the real corpus already ingested (default: $GQA_HOME, "
                                  "else a temporary ingest of ../shared/corpus)")
    p.add_argument("--quick", action="store_true", help="synthetic 100,000 chunks only")
    p.add_argument("--sizes", default="100000,1000000", help="synthetic corpus sizes, comma-separated")
    p.add_argument("--queries", type=int, default=200, help="synthetic queries per size")
    p.add_argument("--rounds", type=int, default=2, help="passes over the dev questions (real corpus)")
    p.add_argument("--product-bm25-max", type=int, default=100_000,
                   help="largest synthetic size whose BM25 index is also built the product's way (slow)")
    p.add_argument("--dev", default=str(DEV), help="dev questions (JSON lines with a 'question' field)")
    p.add_argument("--no-ivf", action="store_true", help="skip the IVF comparison (its 1M build takes minutes)")
    p.add_argument("--skip-real", action="store_true", help="synthetic corpora only")
    p.add_argument("--no-write", action="store_true", help=f"print only; leave {RESULTS.name} alone")
    p.add_argument("--json", help="also write the raw results to this JSON file")
    p.add_argument("--render", help="measure nothing: render the tables of an earlier run's --json file")
    p.add_argument("--reference", default=str(REFERENCE) if REFERENCE.exists() else "",
                   help="results JSON of a run on another machine, rendered after this machine's ('' for none)")
    args = p.parse_args(argv)
    args.sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables, and write the '## Query' section of bench/RESULTS.md."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    reference = json.loads(Path(args.reference).read_text()) if args.reference else None
    if args.render:  # tables from an earlier run's --json, nothing measured
        text = report.render(json.loads(Path(args.render).read_text()), reference)
        print(text)
        if not args.no_write:
            report.write_section(RESULTS, text)
        return 0
    machine = report.machine()
    settings = Settings.from_env()
    embedder = embedder_from(settings, device="cpu")
    machine["query_runtime"] = report.query_runtime(embedder)
    results: dict = {"machine": machine, "synthetic": []}
    if not args.skip_real:
        results["real"] = bench_real(args, embedder)
    home = Path(tempfile.mkdtemp(prefix="gqa-bench-syn-"))  # stays empty: engines keep their in-memory snapshot
    try:
        for n in args.sizes:
            results["synthetic"].append(bench_synthetic(n, args, embedder, dev_questions(Path(args.dev)), home))
            if args.json:  # after each size, so that a run cut short keeps what it measured
                Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    results["machine"]["load_end"] = report.uptime()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    text = report.render(results, reference)
    print(text)
    if not args.no_write:
        report.write_section(RESULTS, text)
        print(f"wrote the '## Query' section of {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
