"""The measurements of `bench/scale.py --measure` (see its docstring for what each figure is)."""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import pstats
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import scale_library as lib

from ingest.pipeline import IngestReport, _Prepared, _publish, ingest_lock
from rag.config import Settings
from rag.engine import Engine
from rag.index import generations_dir, search
from rag.retrieve import Filters, dense_ranking
from rag.snapshot import database_path, published_generation
from rag.store import Store

READER = Path(__file__).resolve().parent / "scale_reader.py"
NOTES = "scale"
STEADY_ANSWERS = 5  # answers the reader gives before the publish (its steady pace)
WAIT_S = 600.0  # longest wait for a reader event


def describe(index) -> str:
    """The faiss index type and its parameters. Example: 'IndexHNSWFlat(M=32, efSearch=128)'"""
    hnsw = getattr(index, "hnsw", None)
    if hnsw is None:
        return type(index).__name__
    return f"{type(index).__name__}(M={hnsw.nb_neighbors(1)}, efConstruction={hnsw.efConstruction}, " \
           f"efSearch={hnsw.efSearch})"


def p50_p95(xs: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, rounded. Example: p50_p95([1, 2, 3]) -> (2.0, 2.9)"""
    a = np.asarray(xs, dtype=float)
    return round(float(np.percentile(a, 50)), 2), round(float(np.percentile(a, 95)), 2)


def timed_ms(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def latencies(engine: Engine, texts: list[str], vecs: np.ndarray, families: list[str]) -> dict:
    """Engine.retrieve p50/p95 (ms): unfiltered, with the question's family, with a document type, and
    with the synthetic vector instead of the real embedding."""
    for t in texts[:5]:  # warm-up: first calls fill caches (the memory-mapped tables, the ONNX session)
        engine.retrieve(t)
    kinds: dict[str, list[float]] = {"plain": [], "family": [], "doc_type": [], "synthetic_vec": []}
    label = Filters(doc_types=("label",))
    for t, v, f in zip(texts, vecs, families, strict=True):
        kinds["plain"].append(timed_ms(lambda t=t: engine.retrieve(t)))
        kinds["family"].append(timed_ms(lambda t=t, f=f: engine.retrieve(t, filters=Filters(families=(f,)))))
        kinds["doc_type"].append(timed_ms(lambda t=t: engine.retrieve(t, filters=label)))
        kinds["synthetic_vec"].append(timed_ms(lambda t=t, v=v: engine.retrieve(t, query_vec=v[None, :])))
    out: dict = {}
    for name, key in (("plain", "retrieve"), ("family", "retrieve_filtered"), ("doc_type", "retrieve_doc_type"),
                      ("synthetic_vec", "retrieve_synthetic_vec")):
        p50, p95 = p50_p95(kinds[name])
        out[f"{key}_p50_ms"], out[f"{key}_p95_ms"] = p50, p95
    return out


def exact_topk(queries: np.ndarray, xb: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Row ids of the k largest inner products per query, by brute force in blocks of rows."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for s in range(0, len(xb), block):
        sims = queries @ xb[s:s + block].T
        top = np.argpartition(-sims, min(k, sims.shape[1]) - 1, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, top, 1)], 1)
        best_i = np.concatenate([best_i, top + s], 1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def overlap_at(found: list[list[int]], exact: np.ndarray, k: int) -> float:
    """Mean share of the exact top k among the top k found. Example: ([[1, 2]], [[2, 3]], 2) -> 0.5"""
    return float(np.mean([len(set(f[:k]) & set(e[:k].tolist())) / k for f, e in zip(found, exact, strict=True)]))


def recall(snap, vecs: np.ndarray, k: int = 10) -> dict:
    """recall@k of the product's dense path (current rows, as questions search) and of the plain index
    against exact search over the vectors the index holds."""
    xb = snap.index.reconstruct_n(0, snap.size)
    current = np.flatnonzero(snap.current_rows)
    exact_current = current[exact_topk(vecs, xb[current], k)]
    product = [[r for r, _ in dense_ranking(snap, v[None, :], snap.current_rows, k)] for v in vecs]
    exact_all = exact_topk(vecs, xb, k)
    _, plain = search(snap.index, vecs, k)
    return {"recall_at_10": round(overlap_at(product, exact_current, k), 4),
            "recall_at_10_index": round(overlap_at(plain.tolist(), exact_all, k), 4),
            "recall_queries": len(vecs)}


def sizes(home: Path, gen_id: str) -> dict:
    """MB on disk of the published generation's files and of the database."""
    folder = generations_dir(home) / gen_id

    def mb(paths) -> float:
        return round(sum(p.stat().st_size for p in paths if p.is_file()) / 2**20, 1)

    return {"index_faiss": mb([folder / "index.faiss"]), "lexical": mb((folder / "lexical").rglob("*")),
            "rows_and_ids": mb([folder / "rows.npy", folder / "row_docs.json", folder / "chunk_ids.json"]),
            "generation_total": mb(folder.rglob("*")),
            "database": mb(home.glob("gqa.sqlite*"))}


class Reader:
    """bench/scale_reader.py in its own process; its JSON lines collected by a thread, with their events."""

    def __init__(self, home: Path, texts: list[str]) -> None:
        notes = home / NOTES
        self.questions = notes / "reader_questions.txt"
        self.questions.write_text("\n".join(texts))
        self.stop = notes / f"stop-{os.getpid()}"
        self.stop.unlink(missing_ok=True)
        self.lines: list[dict] = []
        self.cond = threading.Condition()
        self.err = open(notes / "reader.err", "w")  # noqa: SIM115 - closed in finish()
        self.spawned = time.time()
        self.proc = subprocess.Popen([sys.executable, str(READER), str(home), str(self.questions), str(self.stop),
                                      str(WAIT_S)], stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     env={**os.environ, "GQA_HOME": str(home)})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()
        with self.cond:
            self.lines.append({"event": "exit"})
            self.cond.notify_all()

    def wait_for(self, test: Callable[[dict], bool]) -> dict:
        """The first line passing `test` (waiting for it); GQA-style error when the reader died."""
        end = time.time() + WAIT_S
        with self.cond:
            while True:
                for line in self.lines:
                    if test(line):
                        return line
                if self.lines and self.lines[-1]["event"] == "exit" or time.time() > end:
                    self.err.flush()
                    last = (Path(self.err.name).read_text().strip().splitlines() or ["?"])[-1]
                    raise RuntimeError(f"the reader stopped or timed out ({last}); see {self.err.name}")
                self.cond.wait(1.0)

    def count(self) -> int:
        with self.cond:
            return sum(line["event"] == "answer" for line in self.lines)

    def finish(self) -> dict:
        self.stop.touch()
        done = self.wait_for(lambda e: e["event"] == "done")
        self.proc.wait(timeout=60)
        self.err.close()
        self.stop.unlink(missing_ok=True)
        return done


def publish_extra(home: Path, settings: Settings, embedder_id: str, profile: bool = False) -> tuple[str, float, dict]:
    """Publish the next extra document through the ingest's publish stage; (generation, seconds, stages)."""
    texts, vecs = lib.load_pool(home / NOTES)
    seed = json.loads((home / NOTES / "build.json").read_text())["seed"]
    store = Store(database_path(home))
    try:
        with ingest_lock(home):
            k = sum(d.file_name.startswith("scale_extra_") for d in store.documents())
            (doc, pages, chunks, hashes, source), cache = lib.extra_document(k, texts, vecs, embedder_id, seed)
            store.cache_vectors(cache, embedder_id)  # what the embed stage leaves: not timed
            report = IngestReport()
            identity = SimpleNamespace(id=embedder_id, dim=vecs.shape[1])
            prof = cProfile.Profile() if profile else None
            t = time.perf_counter()
            if prof:
                prof.enable()
            _publish([_Prepared(doc, pages, chunks, hashes, source)], settings, identity, store, report)  # type: ignore[arg-type]
            seconds = time.perf_counter() - t
            if prof:
                prof.disable()
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
                print(buf.getvalue(), file=sys.stderr)
    finally:
        store.close()
    assert report.generation is not None
    return report.generation, seconds, {"chunks": len(chunks), "pages": len(pages)}


def watch_commit(home: Path, before: str, stop: threading.Event, out: dict) -> None:
    """Poll the published generation every 10 ms; record when it first differs from `before`.

    One plain read-only connection, kept open: not rag.snapshot.published_generation, whose Store opens
    and closes the database file with open() (rag.store._check_file), which in this process (the
    publisher) would drop the writer's POSIX locks on it (sqlite.org/howtocorrupt.html, 2.2).
    """
    conn = sqlite3.connect(f"{database_path(home).absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        while not stop.is_set():
            row = conn.execute("SELECT value FROM meta WHERE key = 'current_generation'").fetchone()
            if row and row[0] != before:
                out["t"], out["gen"] = time.time(), row[0]
                return
            time.sleep(0.01)
    finally:
        conn.close()


def reader_phase(home: Path, settings: Settings, embedder_id: str, texts: list[str]) -> dict:
    """Cold start, then pickup of a generation published while the reader answers, then its RSS."""
    before = published_generation(home) or ""
    reader = Reader(home, texts)
    try:
        first = reader.wait_for(lambda e: e["event"] == "first")
        reader.wait_for(lambda e: e["event"] == "answer" and reader.count() >= STEADY_ANSWERS)
        seen, stop = {}, threading.Event()
        watcher = threading.Thread(target=watch_commit, args=(home, before, stop, seen), daemon=True)
        watcher.start()
        t = time.perf_counter()
        gen, _, _ = publish_extra(home, settings, embedder_id)
        publish_s = time.perf_counter() - t
        watcher.join(timeout=5)
        stop.set()
        committed = seen.get("t", time.time())
        picked = reader.wait_for(lambda e: e["event"] == "answer" and e["gen"] == gen)
        steady = [e["end"] - e["start"] for e in reader.lines if e["event"] == "answer" and e["gen"] == before]
        n = reader.count()
        reader.wait_for(lambda e: e["event"] == "answer" and reader.count() >= n + 3)
    finally:
        done = reader.finish() if reader.proc.poll() is None else {}
    return {"cold_start_s": round(first["end"] - reader.spawned, 2),
            "cold_start_parts_s": {"imports": first["import_s"], "qa_init": first["qa_s"],
                                   "first_answer": first["answer_s"]},
            "pickup_s": round(picked["end"] - committed, 3),
            "pickup_answer_ms": round((picked["end"] - picked["start"]) * 1000, 1),
            "answer_ms_p50_before": round(float(np.median(steady)) * 1000, 1) if steady else None,
            "publish_during_questions_s": round(publish_s, 2),
            "reader_rss_mb": done.get("rss_mb"), "reader_peak_rss_mb": done.get("peak_rss_mb"),
            "reader_answers": done.get("answers")}


def machine(load_start: tuple[float, float, float]) -> dict:
    """Cores, CPU model, memory and the load averages at the start and end of the run."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "0") if Path("/proc/meminfo").exists() else "0"
    return {"cores": os.cpu_count(), "cpu": model, "mem_gb": round(int(mem) / 2**20, 1),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()]}


def measure(home: Path, n_queries: int, profile: bool, progress: Callable[[str], None]) -> dict:
    """Every figure of `--measure`, read-only ones first and the idle publish last."""
    load_start = os.getloadavg()
    notes = home / NOTES
    built = json.loads((notes / "build.json").read_text())
    q = json.loads((notes / "queries.json").read_text())
    texts, families = q["texts"][:n_queries], q["families"][:n_queries]
    vecs = np.load(notes / "query_vectors.npy")[:n_queries]
    settings = Settings.from_env(home=home)
    engine = Engine(settings)
    t = time.perf_counter()
    view = engine.view()
    out: dict = {"n_chunks": view.snap.size, "n_documents": len(view.snap.docs),
                 "current_rows": int(view.snap.current_rows.sum()), "generation": view.gen_id,
                 "index": describe(view.snap.index), "view_load_s": round(time.perf_counter() - t, 3)}
    progress(f"measuring {out['n_chunks']:,} rows: retrieval")
    out.update(latencies(engine, texts, vecs, families))
    progress("recall against exact search")
    out.update(recall(view.snap, vecs))
    out["files_mb"] = sizes(home, view.gen_id)
    embedder_id = engine.embedder.id
    del engine, view
    gc.collect()
    progress("reader process: cold start and pickup")
    out.update(reader_phase(home, settings, embedder_id, texts))
    progress("publishing one more document, no reader running")
    gen, seconds, what = publish_extra(home, settings, embedder_id, profile)
    out.update({"publish_one_s": round(seconds, 2), "publish_one_document": what, "generation_after": gen,
                "build": {k: built[k] for k in ("n_chunks", "documents", "superseded", "build_s", "index")},
                "machine": machine(load_start)})
    return out
