"""Scale-out benchmark (issue 15): ../shared/corpus ingested locally (the embedded store, the yardstick)
and through a local Ray, each into a fresh home; the PostgreSQL sections are added beside these.

    python bench/cluster.py [--corpus DIR] [--only local,ray] [--ray-cpus N] [--json PATH]

Prints a Markdown table (copied into bench/RESULTS.md by hand, with the load at the time). A benchmark,
not a test: it never fails on a time. On a shared host the 1-minute load before and after each run is
printed beside its wall time: figures under other people's load are not comparable.
"""

from __future__ import annotations

import os

# Before torch loads: the product sets this too; spin-waiting OpenMP threads on a busy host steal cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import IngestReport, ingest  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedder import from_settings  # noqa: E402

log = logging.getLogger("bench.cluster")
CORPUS = ROOT.parent / "shared" / "corpus"


def _measured(run: Callable[[], IngestReport]) -> dict:
    """Wall seconds of `run`, the 1-minute load before and after, and the report's figures."""
    load_before, t = os.getloadavg()[0], time.perf_counter()
    report = run()
    wall = time.perf_counter() - t
    return {"wall_s": round(wall, 1), "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "documents": len(report.added) + len(report.new_version), "failed": len(report.failed),
            "pages": report.pages, "chunks": report.chunks, "embedded": report.embedded,
            "units_embedded": report.units_embedded, "generation": report.generation,
            "seconds": {k: round(v, 1) for k, v in report.seconds.items()}, "ray": report.ray}


def local_ingest(corpus: Path, home: Path) -> dict:
    """`guideline-qa ingest CORPUS` into a fresh `home` (the embedded store): wall seconds of the ingest
    call, after the embedder is loaded (as the command loads it)."""
    settings = Settings.from_env(home=home, database_url="")
    embedder = from_settings(settings)
    return _measured(lambda: ingest([corpus], settings, embedder))


def ray_ingest(corpus: Path, home: Path, ray_cpus: int | None = None) -> dict:
    """`guideline-qa ingest CORPUS --ray` into a fresh `home`: wall seconds from starting a local Ray
    (`ray_cpus` CPUs, default all) to its shutdown, the actors' model loads included; the driver's
    embedder is loaded first, as the command loads it."""
    import ray

    from ingest.ray_ingest import ingest_on_ray, ray_env

    settings = Settings.from_env(home=home, database_url="")
    embedder = from_settings(settings)

    ray_s: dict[str, float] = {}

    def run() -> IngestReport:
        t = time.perf_counter()
        ray.init(num_cpus=ray_cpus, include_dashboard=False, runtime_env=ray_env(settings),
                 logging_level=logging.WARNING)
        ray_s["ray_init"] = time.perf_counter() - t
        try:
            return ingest_on_ray([corpus], settings, embedder)
        finally:
            t = time.perf_counter()
            ray.shutdown()
            ray_s["ray_shutdown"] = time.perf_counter() - t

    out = _measured(run)
    out["seconds"].update({k: round(v, 1) for k, v in ray_s.items()})
    return out


# --- PostgreSQL sections go here: the same corpus into PostgreSQL locally, then 2 replicas x 10 askers
# --- for 60 s on one database while an ingest publishes (issue 15, Benchmark).

SECTIONS: dict[str, Callable[[Path, Path, argparse.Namespace], dict]] = {
    "local": lambda corpus, home, args: local_ingest(corpus, home),
    "ray": lambda corpus, home, args: ray_ingest(corpus, home, args.ray_cpus),
}


def table(results: dict[str, dict]) -> str:
    """The Markdown table of the ingest sections, each against the local one."""
    base = results.get("local", {}).get("wall_s")
    lines = ["| ingest | wall s | vs local | load before / after | docs / pages / chunks | texts embedded "
             "| extract s | embed s | other |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        s = r["seconds"]
        other = {k: v for k, v in s.items() if k not in ("extract", "embed", "total")}
        ratio = f"{r['wall_s'] / base:.2f}" if base else ""
        cells = [name, r["wall_s"], ratio, f"{r['load_before']} / {r['load_after']}",
                 f"{r['documents']} / {r['pages']} / {r['chunks']}", r["embedded"] + r["units_embedded"],
                 s.get("extract", ""), s.get("embed", ""), ", ".join(f"{k} {v}" for k, v in other.items())]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, each into a fresh home, and print their table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.corpus.is_dir():
        print(f"corpus folder {args.corpus} not found: give --corpus DIR", file=sys.stderr)
        return 1
    results: dict[str, dict] = {}
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in SECTIONS:
            print(f"unknown section {name!r}: choose from {', '.join(SECTIONS)}", file=sys.stderr)
            return 1
        home = Path(tempfile.mkdtemp(prefix=f"gqa-bench-{name}-"))
        try:
            results[name] = SECTIONS[name](args.corpus, home, args)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        print(f"{name}: {results[name]['wall_s']} s", file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
