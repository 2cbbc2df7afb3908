"""Embedding precision: bf16 against fp32 on real passages, for speed and for what retrieval returns.

    python bench/precision.py --home HOME [--chunks N] [--sentences 1000] [--json PATH]

HOME is an ingested home of ../shared/corpus (its passages are read, nothing is written). Every chunk's
embedded text is encoded in fp32 and in bf16 (the ingest path: lanes of batches), timed in the same
process, back to back. Dense recall@10 against fp32 is measured for the dev questions and for sentences
drawn from the corpus (seeded): the ten nearest chunks under bf16 chunk vectors, with the question
embedded as the product does (ONNX Runtime, fp32) and in bf16 (torch without ONNX Runtime), against the
ten nearest under fp32 throughout. Last, one question's encode time on each runtime. A benchmark, not a
test: it never fails on a figure; the table goes into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (rag/config.py sets it too)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import Settings, default_model_path  # noqa: E402
from rag.embedder import SentenceTransformerEmbedder, cpu_has_bf16  # noqa: E402
from rag.store import Store  # noqa: E402
from rag.units import units  # noqa: E402

DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def passages(home: Path, limit: int) -> tuple[list[str], list[str]]:
    """Every chunk's embedded text, and every quotable unit's text (the sentence pool), of a home."""
    store = Store(home / "gqa.sqlite", readonly=True)
    try:
        chunks, sentences = [], []
        for d in store.documents():
            for c in store.chunks_of(d.doc_id):
                chunks.append(c.embed_text(d.title))
                sentences += [u.text for u in units(c) if len(u.text.split()) >= 6]
    finally:
        store.close()
    return chunks[:limit] if limit else chunks, sorted(set(sentences))


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def top10(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Exact inner-product neighbours: the indices of the ten best rows of base per query."""
    scores = queries @ base.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :10]


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact ten found among the approximate ten."""
    return float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)]))


def as_questions(embedder: SentenceTransformerEmbedder, qs: list[str]) -> np.ndarray:
    """Queries embedded one at a time, as `ask` embeds a question (the short-input runtime)."""
    return np.vstack([embedder.embed([q]) for q in qs])


def question_ms(embedder: SentenceTransformerEmbedder, question: str, runs: int = 40) -> float:
    """Median milliseconds to embed one question through `embed` (whatever runtime it picks)."""
    for _ in range(5):
        embedder.embed([question])
    times = [timed(embedder.embed, [question])[1] for _ in range(runs)]
    return float(np.median(times) * 1000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True, help="an ingested home of ../shared/corpus")
    p.add_argument("--chunks", type=int, default=0, help="encode only the first N chunks (0: all)")
    p.add_argument("--sentences", type=int, default=1000, help="corpus sentences used as queries")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if not cpu_has_bf16():
        print("this CPU has no native bf16: nothing to compare (the product embeds in fp32 here)", file=sys.stderr)
        return 1
    import torch

    model, cache = default_model_path(), Settings.from_env().home / "models"
    fp32 = SentenceTransformerEmbedder(model, "cpu", precision="fp32", cache_dir=cache)
    bf16 = SentenceTransformerEmbedder(model, "cpu", precision="bf16", cache_dir=cache)
    bf16_torch = SentenceTransformerEmbedder(model, "cpu", precision="bf16", query_runtime="torch")
    fp32_torch = SentenceTransformerEmbedder(model, "cpu", precision="fp32", query_runtime="torch")
    chunks, pool = passages(args.home, args.chunks)
    questions = [json.loads(line)["question"] for line in DEV.open()] if DEV.exists() else []
    sentences = random.Random(13).sample(pool, min(args.sentences, len(pool)))

    fp32.embed(chunks[:32])  # warm-up of both
    bf16.embed(chunks[:32])
    base32, t32 = timed(fp32.embed, chunks)
    base16, t16 = timed(bf16.embed, chunks)
    cos = (base32 * base16).sum(axis=1)
    rows = []
    for name, qs in (("dev questions", questions), ("corpus sentences", sentences)):
        if not qs:
            continue
        exact = top10(as_questions(fp32, qs), base32)
        asked = top10(as_questions(bf16, qs), base16)  # ONNX Runtime fp32 questions, bf16 chunks
        low = top10(as_questions(bf16_torch, qs), base16)  # bf16 throughout
        rows.append((name, len(qs), recall(asked, exact), recall(low, exact)))

    q = questions[0] if questions else "What is the usual starting dose of warfarin?"
    torch.set_num_threads(2)
    lat = {"ONNX Runtime fp32 (the product's questions)": question_ms(fp32, q),
           "torch fp32": question_ms(fp32_torch, q), "torch bf16": question_ms(bf16_torch, q)}

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}, torch {torch.__version__}, batch {fp32.batch_size}\n")
    print("| encode every chunk | fp32 | bf16 | speed-up |\n| --- | ---: | ---: | ---: |")
    print(f"| {len(chunks)} chunks, seconds | {t32:.1f} | {t16:.1f} | {t32 / t16:.2f}x |")
    print(f"| chunks per second | {len(chunks) / t32:.1f} | {len(chunks) / t16:.1f} | |\n")
    print(f"cosine of bf16 to fp32 chunk vectors: min {cos.min():.5f}, mean {cos.mean():.6f}\n")
    print("| queries | n | recall@10, question as asked (ONNX fp32) | recall@10, question in bf16 |")
    print("| --- | ---: | ---: | ---: |")
    for name, n, r_asked, r_bf16 in rows:
        print(f"| {name} | {n} | {r_asked:.3f} | {r_bf16:.3f} |")
    print("\n| one question, p50 | ms |\n| --- | ---: |")
    for name, v in lat.items():
        print(f"| {name} | {v:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cores": os.cpu_count(), "cpu": cpu, "torch": torch.__version__},
            "chunks": len(chunks), "fp32_s": t32, "bf16_s": t16, "cosine_min": float(cos.min()),
            "cosine_mean": float(cos.mean()),
            "recall_at_10": {n: {"asked": a, "bf16": b, "queries": k} for n, k, a, b in rows},
            "question_ms": lat}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
