"""The HTTP API under load while an ingest publishes, on a copy of a home (prints a table; not a test).

    python bench/api.py --home HOME [--clients 20] [--seconds 60] [--publish-every 2] [--json]

HOME (for example one with ../shared/corpus ingested) is copied to a temporary folder first and never
changed. `guideline-qa api` is started on that copy in its own process (one QA, as deployed); `--clients`
threads, each with its own HTTP connection, POST /v1/ask again and again for `--seconds`, while another
process publishes a new version of a small generated guideline every `--publish-every` seconds (the
publisher of bench/load.py). Prints requests, errors (target 0), p50/p95 latency, the generations the
answers came from, and answers whose passages are not current rows of the generation they name.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import QUESTIONS, check, record_generation  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(home: Path, token: str, port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    """`guideline-qa api` over `home` in its own process (`env`: its environment, default this one's);
    returns once /v1/health answers 200."""
    env = {**(os.environ if env is None else env), "GQA_HOME": str(home), "GQA_API_TOKENS": f"bench:{token}:reader",
           "NO_PROXY": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the API did not answer /v1/health within 180 s: {log.read_text()[-2000:]}")


def client_loop(url: str, token: str, end: float, seed: int, out: list[dict]) -> None:
    """One client: POST /v1/ask until `end`; a row per request (latency, generation and passages, or error)."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                r = client.post("/v1/ask", json={"question": rng.choice(QUESTIONS)})
                row: dict = {"s": time.monotonic() - t}
                if r.status_code == 200:
                    a = r.json()
                    row |= {"gen": a["index_version"], "chunks": [h["chunk_id"] for h in a["hits"]]}
                else:
                    row["err"] = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                row = {"s": time.monotonic() - t, "err": f"{type(exc).__name__}: {exc}"[:300]}
            out.append(row)


def run(home: Path, args: argparse.Namespace) -> dict:
    """Start the API, warm it up, then the clients and the publisher together; the figures."""
    from rag import audit
    from rag.config import Settings
    from rag.snapshot import published_generation

    side = Path(tempfile.mkdtemp(prefix="gqa-api-gens-"))
    token, port = secrets.token_hex(16), free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(home, token, port, side / "api.log")
    try:
        initial = published_generation(home)
        record_generation(home, initial, side)
        httpx.post(f"{url}/v1/ask", json={"question": QUESTIONS[0]}, timeout=300,
                   headers={"Authorization": f"Bearer {token}"})  # models loaded before the clock starts
        pub = subprocess.Popen([sys.executable, str(ROOT / "bench" / "load.py"), "--publisher", str(home), str(side),
                                str(args.publish_every), str(args.seconds)], stdout=subprocess.PIPE, text=True)
        time.sleep(5)  # the publisher loads its model
        end = time.monotonic() + args.seconds
        rows: list[dict] = []
        workers = [threading.Thread(target=client_loop, args=(url, token, end, i, rows)) for i in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        published = int((pub.communicate()[0] or "0").split()[-1])
        out = {"clients": args.clients, "seconds": args.seconds, "publishes": published,
               "requests": len(rows), **check(rows, side, initial)}
        out["requests_per_s"] = round(len(rows) / args.seconds, 2)
    finally:
        api.terminate()
        api.wait(30)
    # an audit row that could not be written is one log line of the server (the answer is still given)
    out["audit_rows_not_written"] = (side / "api.log").read_text().count("audit row not written")
    out["audit_rows"] = len(audit.rows(Settings.from_env(home=home)))  # the warm-up's included
    shutil.rmtree(side, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="a home to copy (never changed)")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--publish-every", type=float, default=2.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gqa-api-home-"))
    home = work / "home"
    shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("ingest.lock", "eval-reports"))
    try:
        out = {"machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start", **run(home, args)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"machine: {out['machine']}; {out['clients']} clients for {out['seconds']} s; {out['publishes']} publishes")
    cols = ["requests", "errors", "requests_per_s", "p50_s", "p95_s", "generations_seen", "not_from_named_generation",
            "audit_rows", "audit_rows_not_written"]
    print("".join(f"{c:>27}" for c in cols))
    print("".join(f"{out[c]!s:>27}" for c in cols))
    for e in out["error_samples"]:
        print(f"    error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
