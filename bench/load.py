"""Answers under publishing and killed ingests, on a copy of a home (prints tables; not a test).

    python bench/load.py --home HOME [--seconds 60] [--threads 20] [--procs 4] [--publish-every 2]
        [--kills 10] [--json]

HOME (for example one with ../shared/corpus ingested) is copied to a temporary folder first and never
changed. Phase 1: `--threads` threads of one process call `QA.answer` and `--procs` processes loop
`guideline-qa ask --json` for `--seconds`, while another process publishes a new version of a small
generated guideline every `--publish-every` seconds. Every answer is checked against the generation
its `index_version` names: each passage shown must be a current row of that generation. Phase 2:
`--kills` ingests SIGKILLed at random moments; after each the home must answer, `docs` must list every
document it listed before, and the ingest lock must be free. Disk use is compared with the start of
phase 2 after one more ingest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))

QUESTIONS = [
    "What is the usual starting dose of warfarin?",
    "What are the contraindications of metformin?",
    "How should amoxicillin be dosed in renal impairment?",
    "What is the recommended treatment for uncomplicated malaria in children?",
    "Load test guideline: when is the review visit?",
]


def render_version(folder: Path, n: int) -> Path:
    """Edition n of a small generated guideline (same title and family; the year orders the versions)."""
    from render_demo import DocSpec, Heading, Paragraph, render_pdf

    text = (f"Edition {n} of the load test guideline. The review visit is on day {n % 28 + 1}. "
            "This document is generated for a benchmark and is not clinical guidance.")
    spec = DocSpec(title="Load test guideline", blocks=[Heading("1", "Review"), Paragraph(text)])
    return render_pdf(folder / f"load_test_guideline_{2100 + n}.pdf", spec)


def record_generation(home: Path, gen_id: str, out: Path) -> None:
    """Write the current rows (chunk ids of current documents) of a published generation to out/<gen>.json."""
    from rag.index import generations_dir
    from rag.snapshot import database_path
    from rag.store import Store

    folder = generations_dir(home) / gen_id
    ids = json.loads((folder / "chunk_ids.json").read_text())
    statuses = json.loads((folder / "manifest.json").read_text())["documents"]
    store = Store(database_path(home), readonly=True)
    try:
        chunks = store.chunks(ids)
    finally:
        store.close()
    current = [c for c in ids if statuses.get(chunks[c].doc_id) == "current"]
    (out / f"{gen_id}.json").write_text(json.dumps(current))


def publisher(home: Path, side: Path, every: float, seconds: float) -> int:
    """Phase 1's publishing process: a new version every `every` seconds until `seconds` have passed."""
    from ingest.pipeline import ingest
    from rag.config import Settings
    from rag.embedder import from_settings as embedder_from

    settings = Settings.from_env(home=home)
    emb = embedder_from(settings)
    pdfs = side / "pdfs"
    pdfs.mkdir(exist_ok=True)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        t = time.monotonic()
        n += 1
        rep = ingest([render_version(pdfs, n)], settings, emb)
        if rep.generation:
            record_generation(home, rep.generation, side)
        time.sleep(max(0.0, every - (time.monotonic() - t)))
    print(n)
    return 0


def ask_loop(home: Path, end: float, out: list[dict]) -> None:
    """One process slot: `guideline-qa ask --json` again and again until `end`."""
    env = {**os.environ, "GQA_HOME": str(home)}
    i = 0
    while time.monotonic() < end:
        q = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        t = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "cli.main", "ask", q, "--json"], env=env, cwd=ROOT,
                           capture_output=True, text=True)
        row = {"s": time.monotonic() - t, "rc": p.returncode, "err": p.stderr.strip()[-300:] if p.returncode else ""}
        if p.returncode == 0:
            a = json.loads(p.stdout)
            row |= {"gen": a["index_version"], "chunks": [h["chunk_id"] for h in a["hits"]]}
        out.append(row)


def thread_loop(qa, end: float, seed: int, out: list[dict]) -> None:
    """One answering thread of the app's process."""
    rng = random.Random(seed)
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            a = qa.answer(rng.choice(QUESTIONS))
            out.append({"s": time.monotonic() - t, "gen": a.index_version,
                        "chunks": [h.chunk.chunk_id for h in a.hits]})
        except Exception as exc:  # noqa: BLE001 - counted: the target is none
            out.append({"s": time.monotonic() - t, "err": f"{type(exc).__name__}: {exc}"[:300]})


def check(rows: list[dict], side: Path, initial: str) -> dict:
    """Errors, latency, generations seen, and answers whose passages are not current rows of their generation."""
    gens: dict[str, set[str]] = {}
    for f in side.glob("*.json"):
        gens[f.stem] = set(json.loads(f.read_text()))
    ok = [r for r in rows if "gen" in r]
    wrong = [r for r in ok if r["gen"] not in gens or not set(r["chunks"]) <= gens[r["gen"]]]
    lat = sorted(r["s"] for r in rows)
    return {"answers": len(ok), "errors": len(rows) - len(ok),
            "error_samples": sorted({r.get("err", "") for r in rows if "gen" not in r})[:3],
            "p50_s": round(statistics.median(lat), 2) if lat else None,
            "p95_s": round(lat[max(0, math.ceil(0.95 * len(lat)) - 1)], 2) if lat else None,  # nearest rank
            "generations_seen": len({r["gen"] for r in ok}), "from_initial": sum(r["gen"] == initial for r in ok),
            "not_from_named_generation": len(wrong)}


def phase_publish(home: Path, args: argparse.Namespace) -> dict:
    """Phase 1: threads and processes answering while a process publishes."""
    from rag.config import Settings
    from rag.qa import QA

    side = Path(tempfile.mkdtemp(prefix="gqa-load-gens-"))
    qa = QA(Settings.from_env(home=home))
    initial = qa.index_version
    record_generation(home, initial, side)
    qa.answer(QUESTIONS[0])  # models loaded before the clock starts
    pub = subprocess.Popen([sys.executable, __file__, "--publisher", str(home), str(side), str(args.publish_every),
                            str(args.seconds)], stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # the publisher loads its model
    end = time.monotonic() + args.seconds
    threads_out: list[dict] = []
    procs_out: list[dict] = []
    workers = [threading.Thread(target=thread_loop, args=(qa, end, i, threads_out)) for i in range(args.threads)]
    workers += [threading.Thread(target=ask_loop, args=(home, end, procs_out)) for _ in range(args.procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    published = int((pub.communicate()[0] or "0").split()[-1])
    out = {"publishes": published, "threads": check(threads_out, side, initial),
           "processes": check(procs_out, side, initial)}
    shutil.rmtree(side, ignore_errors=True)
    return out


def du(path: Path) -> int:
    """Bytes of every file under path."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def docs_listed(home: Path) -> set[str]:
    """File names `guideline-qa docs --json` lists."""
    p = subprocess.run([sys.executable, "-m", "cli.main", "docs", "--json"], env={**os.environ, "GQA_HOME": str(home)},
                       cwd=ROOT, capture_output=True, text=True, check=True)
    return {d["file"] for d in json.loads(p.stdout)}


def phase_kills(home: Path, args: argparse.Namespace) -> dict:
    """Phase 2: ingests SIGKILLed at random moments, then the checks after each and the disk use."""
    from ingest.pipeline import ingest_lock
    from rag.config import Settings
    from rag.qa import QA

    env = {**os.environ, "GQA_HOME": str(home)}
    pdfs = Path(tempfile.mkdtemp(prefix="gqa-load-pdfs-"))
    cmd = [sys.executable, "-m", "cli.main", "ingest"]
    t = time.monotonic()
    subprocess.run([*cmd, str(render_version(pdfs, 1000))], env=env, cwd=ROOT, capture_output=True, check=True)
    full = time.monotonic() - t
    start_bytes, rng, rows = du(home), random.Random(7), []
    for i in range(args.kills):
        before = docs_listed(home)
        p = subprocess.Popen([*cmd, str(render_version(pdfs, 1001 + i))], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        at = rng.uniform(0.2, full)
        time.sleep(at)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        after = docs_listed(home)
        try:
            answered = bool(QA(Settings.from_env(home=home)).answer(QUESTIONS[0]).text)
        except Exception:  # noqa: BLE001 - reported: the target is always answering
            answered = False
        try:
            with ingest_lock(home):
                free = True
        except Exception:  # noqa: BLE001 - reported: the target is always free
            free = False
        rows.append({"kill_at_s": round(at, 2), "answers": answered, "docs_complete": before <= after,
                     "published": len(after - before), "lock_free": free})
    subprocess.run([*cmd, str(render_version(pdfs, 1000))], env=env, cwd=ROOT, capture_output=True)  # nothing new
    end_bytes = du(home)
    shutil.rmtree(pdfs, ignore_errors=True)
    change = 100 * (end_bytes - start_bytes) / start_bytes
    return {"full_ingest_s": round(full, 1), "kills": rows, "start_mb": round(start_bytes / 1e6, 1),
            "end_mb": round(end_bytes / 1e6, 1), "disk_change_pct": round(change, 2)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--publisher"]:
        return publisher(Path(argv[1]), Path(argv[2]), float(argv[3]), float(argv[4]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="a home to copy (never changed)")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--threads", type=int, default=20)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--publish-every", type=float, default=2.0)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gqa-load-home-"))
    home = work / "home"
    shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("ingest.lock", "eval-reports"))
    try:
        out = {"machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
               "publish": phase_publish(home, args), "kill": phase_kills(home, args)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print_tables(out)
    return 0


def print_tables(out: dict) -> None:
    """Phase 1 one row per client kind, phase 2 one row per kill, then the disk figures."""
    pub = out["publish"]
    print(f"machine: {out['machine']}; {pub['publishes']} publishes")
    cols = ["answers", "errors", "p50_s", "p95_s", "generations_seen", "not_from_named_generation"]
    print(f"{'client':<11}" + "".join(f"{c:>28}" for c in cols))
    for kind in ("threads", "processes"):
        print(f"{kind:<11}" + "".join(f"{pub[kind][c]!s:>28}" for c in cols))
        for e in pub[kind]["error_samples"]:
            print(f"    error: {e}")
    k = out["kill"]
    print(f"\nkills (a full ingest takes {k['full_ingest_s']} s):")
    print(f"{'kill at s':>10}{'answers':>9}{'docs complete':>15}{'published':>11}{'lock free':>11}")
    for r in k["kills"]:
        print(f"{r['kill_at_s']:>10}{r['answers']!s:>9}{r['docs_complete']!s:>15}{r['published']:>11}{r['lock_free']!s:>11}")
    print(f"disk: {k['start_mb']} MB before the kills, {k['end_mb']} MB after the next ingest "
          f"({k['disk_change_pct']:+.2f}%)")


if __name__ == "__main__":
    sys.exit(main())
