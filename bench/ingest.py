"""Ingest throughput on the real corpus: a first ingest into a fresh home, its stages against the raw
`SentenceTransformer.encode` floor, an unchanged re-ingest, and new versions of one document.

    python bench/ingest.py [--corpus DIR] [--threads N] [--extract-workers N] [--batch-size N]
                           [--precision auto|fp32|bf16] [--json PATH]
    python bench/ingest.py --counts-only HOME

Prints Markdown tables (copied into the '## Ingest' section of bench/RESULTS.md by hand, with the
load at the time), and per document what the reading found: tables, table rows whose cells match
their header, recommendation records, boxed warnings, OCR pages. `--counts-only HOME` prints only that
table for an existing home, in seconds, without ingesting (it reads a copy of the database: nothing is
written into HOME; run it on a home no ingest is writing to). A benchmark, not a test: it never fails
on a time. On a shared host, compare the CPU-second columns as well as wall time: they move far less
with other people's load.
"""

from __future__ import annotations

import os

# Before torch loads: the product sets this too (rag/config.py); spin-waiting OpenMP threads on a busy
# 2-core host steal the extractor's core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import IngestReport, ingest  # noqa: E402
from ingest.sections import GAP  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedder import SentenceTransformerEmbedder  # noqa: E402
from rag.store import Store  # noqa: E402
from rag.types import Chunk, Page  # noqa: E402
from rag.units import context, units  # noqa: E402
from rag.verify import table_parts  # noqa: E402

log = logging.getLogger("bench.ingest")
CORPUS = ROOT.parent / "shared" / "corpus"
STAGES = ("hash", "extract", "wait", "chunk", "embed", "publish", "total")
LLAMA_INDEX = "llama-index defaults, same model, this corpus: 98 s for 1,061 pages, 20 chunks/s, 93% truncated"


# Whole-corpus first ingest before the quotable units were embedded too (bench/RESULTS.md, "Ingest",
# 2026-12-01, chunker 6, same machine).
BEFORE_UNITS_S = 269.8


def machine() -> dict:
    """Cores, CPU model (from /proc/cpuinfo), Python and torch versions."""
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(), "torch": torch.__version__}


def cpu_seconds() -> tuple[float, float]:
    """(this process, its reaped children) user+system CPU seconds."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident set size of this process and of its largest reaped child, in MiB (Linux: ru_maxrss in KiB)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_maxrss / 1024, kids.ru_maxrss / 1024


def measured(fn, *args, **kwargs) -> tuple[object, dict]:
    """Call fn and return (its result, wall/CPU seconds and the 1-minute load before and after)."""
    load0 = os.getloadavg()[0]
    c0, k0 = cpu_seconds()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    wall = time.perf_counter() - t0
    c1, k1 = cpu_seconds()
    return out, {"wall": wall, "cpu_main": c1 - c0, "cpu_children": k1 - k0,
                 "load_before": load0, "load_after": os.getloadavg()[0]}


def embedded_texts(home: Path) -> list[str]:
    """The distinct texts the pipeline gave the embedder, in ingest order: each chunk's
    `Chunk.embed_text(title)` and each of its quotable units' `rag.units.context`."""
    store = Store(home / "gqa.sqlite", readonly=True)
    try:
        texts = []
        for d in store.documents():
            chunks = store.chunks_of(d.doc_id)
            texts += [c.embed_text(d.title) for c in chunks]
            texts += sorted({context(d.title, c.section, u) for c in chunks for u in units(c)})
    finally:
        store.close()
    return list(dict.fromkeys(texts))


def floor(embedder: SentenceTransformerEmbedder, texts: list[str]) -> dict:
    """Time one raw `SentenceTransformer.encode` over all texts, with the embedder's batch size and precision."""
    def encode() -> None:
        with embedder.autocast():  # the same precision the ingest ran in
            embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)

    _, m = measured(encode)
    return m


def truncation(embedder: SentenceTransformerEmbedder, texts: list[str]) -> dict:
    """How many embedded texts exceed the model's window (256 word pieces with [CLS] and [SEP])."""
    counts = embedder.count_tokens(texts)
    return {"texts": len(texts), "max_word_pieces": max(counts, default=0),
            "over_256": sum(n > 256 for n in counts),
            "truncated": sum(n + 2 > embedder.max_seq_length for n in counts)}


def new_version(src: Path, out_dir: Path, metadata: dict[str, str]) -> Path:
    """Write `src` again under its own name in `out_dir`, with `metadata` changed (a pypdf incremental update)."""
    import pypdf

    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / src.name
    writer = pypdf.PdfWriter(src, incremental=True)
    writer.add_metadata(metadata)
    with open(dst, "wb") as fh:
        writer.write(fh)
    return dst


def run_ingest(paths: list[Path], settings: Settings, embedder, workers: int | None) -> tuple[IngestReport, dict]:
    """One timed ingest (`workers` None: ingest's default); exits when any file failed."""
    kwargs = {} if workers is None else {"extract_workers": workers}
    report, m = measured(ingest, paths, settings, embedder, **kwargs)
    assert isinstance(report, IngestReport)
    if report.failed:
        raise SystemExit(f"ingest failed for some files: {report.failed}")
    return report, m


def first_table(r: IngestReport, m: dict, fl: dict, trunc: dict, rss: tuple[float, float]) -> str:
    """The first ingest: counts, stage seconds, throughput, memory and the ratio to the encode floor."""
    s = r.seconds
    rows = [
        ("pages", f"{r.pages}"), ("chunks", f"{r.chunks} ({r.embedded} embedded)"),
        ("quotable units embedded", f"{r.units_embedded}"),
        *[(f"{k} s", f"{s.get(k, 0.0):.1f}") for k in STAGES],
        ("wall s (ingest call)", f"{m['wall']:.1f}"),
        ("CPU s main / extractor", f"{m['cpu_main']:.1f} / {m['cpu_children']:.1f}"),
        ("pages/s", f"{r.pages / m['wall']:.1f}"), ("chunks/s", f"{r.chunks / m['wall']:.1f}"),
        ("peak RSS MiB main / extractor", f"{rss[0]:.0f} / {rss[1]:.0f}"),
        ("raw encode s (wall / CPU)", f"{fl['wall']:.1f} / {fl['cpu_main']:.1f}"),
        ("ingest wall / encode wall (target <= 1.15)", f"{m['wall'] / fl['wall']:.2f}"),
        (f"ingest wall / before unit vectors ({BEFORE_UNITS_S} s; target <= 1.6)",
         f"{m['wall'] / BEFORE_UNITS_S:.2f}"),
        ("ingest CPU / encode CPU", f"{(m['cpu_main'] + m['cpu_children']) / fl['cpu_main']:.2f}"),
        ("texts over 256 word pieces / truncated", f"{trunc['over_256']} / {trunc['truncated']} of {trunc['texts']}"
                                                    f" (max {trunc['max_word_pieces']})"),
        ("load 1-min before / after ingest", f"{m['load_before']:.1f} / {m['load_after']:.1f}"),
        ("load 1-min before / after encode", f"{fl['load_before']:.1f} / {fl['load_after']:.1f}"),
    ]
    return "\n".join(["| first ingest | value |", "| --- | ---: |", *[f"| {a} | {b} |" for a, b in rows]])


def later_table(first: tuple[IngestReport, dict], later: list[tuple[str, IngestReport, dict, int]]) -> str:
    """Re-ingest and new versions against the first ingest; 'share' is the changed pages' share of the corpus."""
    r0, m0 = first
    lines = ["| run | pages | embedded | wall s | % of first | page share | wall / (share x first) | load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r, m, pages in later:
        share = pages / r0.pages
        prop = f"{m['wall'] / (share * m0['wall']):.2f}" if pages else "-"
        lines.append(f"| {name} | {r.pages} | {r.embedded} | {m['wall']:.2f} | {100 * m['wall'] / m0['wall']:.1f}% "
                     f"| {100 * share:.1f}% | {prop} | {m['load_before']:.1f} |")
    return "\n".join(lines)


COUNT_COLUMNS = ("pages", "chunks", "tables", "table rows", "rows matching header", "recommendations",
                 "boxed warnings", "OCR pages")


def document_counts(chunks: list[Chunk], pages: list[Page]) -> dict[str, int]:
    """What the reading found in one document: tables (distinct caption and header among its table chunks),
    table rows and those with as many cells as their header, recommendation records, boxed warnings, OCR pages.

    Cells come from Chunk.table where the chunk has them, else from the row's ' | ' splits against its
    header line's (the last line of the head that is not the caption). A headless row matches nothing.
    Example: one chunk 'Table 1. Doses\\nGroup | Dose\\n\\nAdults | 10 mg\\nChildren' -> tables 1,
        table rows 2, rows matching header 1
    """
    tables: set[tuple] = set()
    rows = matching = 0
    for c in chunks:
        if c.kind != "table":
            continue
        head, header, cells = _table_rows(c)
        if head:
            tables.add(head)
        rows += len(cells)
        matching += sum(bool(header) and len(r) == len(header) for r in cells)
    return {"pages": len(pages), "chunks": len(chunks), "tables": len(tables), "table rows": rows,
            "rows matching header": matching,
            "recommendations": sum(c.kind == "recommendation" for c in chunks),
            "boxed warnings": sum(c.kind == "boxed_warning" for c in chunks),
            "OCR pages": sum(p.ocr for p in pages)}


def _table_rows(c: Chunk) -> tuple[tuple, list[str], list[list[str]]]:
    """A table chunk's (table identity, header cells, each row's cells)."""
    from ingest.chunk import CAPTION

    t = c.table
    if t is not None:
        header = [str(x) for x in t.get("header") or []]
        cells = t.get("cells") or []
        rows = cells if cells and all(isinstance(r, list) for r in cells) else [cells]
        return (t.get("caption") or "", tuple(header)), header, [[str(x) for x in r] for r in rows if r]
    head, body = table_parts(c.text)
    named = [ln for ln in head if not CAPTION.match(ln)]
    header = named[-1].split(GAP) if named else []
    return tuple(head), header, [r.split(GAP) for r in body]


def home_counts(home: Path) -> list[tuple[str, dict[str, int]]]:
    """(file name, document_counts) for every document of a home, each at its current cut. The database is
    copied first (with its write-ahead log, if any) and the copy read, so nothing is written into `home`."""
    src = home / "gqa.sqlite"
    if not src.is_file():
        raise SystemExit(f"{src} not found: --counts-only needs a home with an ingested corpus")
    with tempfile.TemporaryDirectory(prefix="gqa-bench-counts-") as tmp:
        for suffix in ("", "-wal"):
            if (home / f"gqa.sqlite{suffix}").exists():
                shutil.copyfile(home / f"gqa.sqlite{suffix}", Path(tmp) / f"gqa.sqlite{suffix}")
        store = Store(Path(tmp) / "gqa.sqlite", readonly=True)
        try:
            return [(d.file_name, document_counts(store.chunks_of(d.doc_id), store.pages(d.doc_id)))
                    for d in store.documents()]
        finally:
            store.close()


def counts_table(counts: list[tuple[str, dict[str, int]]]) -> str:
    """The per-document counts as a Markdown table, with a total row."""
    lines = ["| document | " + " | ".join(COUNT_COLUMNS) + " |", "| --- |" + " ---: |" * len(COUNT_COLUMNS)]
    for name, n in sorted(counts):
        lines.append(f"| {name} | " + " | ".join(str(n[k]) for k in COUNT_COLUMNS) + " |")
    lines.append("| **total** | " + " | ".join(str(sum(n[k] for _, n in counts)) for k in COUNT_COLUMNS) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=CORPUS, help="folder of PDFs (default ../shared/corpus)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--extract-workers", type=int, default=None, help="extraction processes (default: ingest's)")
    p.add_argument("--batch-size", type=int, default=None, help="encode batch size (default: Settings)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="encode precision (default: Settings, GQA_EMBED_PRECISION)")
    p.add_argument("--doc", default="fda_warfarin_label_2025.pdf", help="document re-ingested as a new version")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--counts-only", type=Path, metavar="HOME",
                   help="only print the per-document counts of an existing home (no ingest; HOME is not written)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every scenario in one process and print the tables."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.counts_only:
        print(counts_table(home_counts(args.counts_only)))
        return 0
    if not args.corpus.is_dir():
        print(f"corpus folder {args.corpus} not found; pass --corpus DIR", file=sys.stderr)
        return 1
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="gqa-bench-ingest-"))
    try:
        settings = Settings.from_env(home=tmp / "home")
        embedder = SentenceTransformerEmbedder(settings.embed_model, "cpu",
                                               args.batch_size or settings.embed_batch_size,
                                               precision=args.precision or settings.embed_precision)
        embedder.embed(["warm-up: load the weights and allocate the first batch"])
        workers = args.extract_workers
        first = run_ingest([args.corpus], settings, embedder, workers)
        rss = peak_rss_mb()
        counts = home_counts(settings.home)
        texts = embedded_texts(settings.home)
        fl = floor(embedder, texts)
        trunc = truncation(embedder, texts)
        src = args.corpus / args.doc
        doc_pages = len(__import__("pypdf").PdfReader(src).pages)
        later = [("re-ingest, unchanged", *run_ingest([args.corpus], settings, embedder, workers), 0)]
        same = new_version(src, tmp / "v2", {"/Subject": "bench: new version, same text"})
        later.append((f"new version of {args.doc}, same text", *run_ingest([same], settings, embedder, workers),
                      doc_pages))
        retitled = new_version(src, tmp / "v3", {"/Title": "Warfarin sodium tablets (bench revision)"})
        later.append((f"new version of {args.doc}, new title (all chunks re-embedded)",
                      *run_ingest([retitled], settings, embedder, workers), doc_pages))
        alone = new_version(src, tmp / "v4", {"/Title": "Warfarin sodium tablets (bench, alone)"})
        later.append(("yardstick: that document alone into an empty home",
                      *run_ingest([alone], replace(settings, home=tmp / "alone"), embedder, workers), doc_pages))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, torch {info['torch']} "
          f"({torch.get_num_threads()} threads), batch {embedder.batch_size}, {embedder.precision}\n")
    print(first_table(*first, fl, trunc, rss) + "\n")
    print(later_table(first, later) + "\n")
    print(counts_table(counts) + "\n")
    print(f"reference: {LLAMA_INDEX}")
    if args.json:
        raw = {"machine": info, "precision": embedder.precision,
               "first": {"report": first[0].to_json(), **first[1]}, "floor": fl,
               "truncation": trunc, "peak_rss_mb": rss, "counts": dict(counts),
               "later": [{"run": n, "report": r.to_json(), **m} for n, r, m, _ in later]}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
