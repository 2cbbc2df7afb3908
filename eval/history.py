"""Evaluation runs in the product's SQLite database (`eval_runs`), so the trend outlives report folders.

The table is created here (CREATE TABLE IF NOT EXISTS) rather than in rag/store.py: only the
evaluation writes or reads it. Writes are one short transaction at the end of a run; SQLite's WAL
lets the app read and an ingest publish meanwhile.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from rag.snapshot import database_path
from rag.store import Store

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_key TEXT NOT NULL, items INTEGER NOT NULL,
    index_version TEXT NOT NULL, generator TEXT NOT NULL, judge TEXT NOT NULL,
    passed INTEGER NOT NULL, metrics TEXT NOT NULL, summary TEXT NOT NULL, report_dir TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_runs_key ON eval_runs(dataset_key, judge, generator, started_at);
"""


def _open(home: Path) -> Store:
    store = Store(database_path(home))
    store.conn.executescript(SCHEMA)
    return store


def record_run(home: Path, summary: dict) -> None:
    """Store one finished run (its summary.json) in `eval_runs`."""
    store = _open(home)
    try:
        with store.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO eval_runs(run_id, started_at, finished_at, dataset, dataset_key, items, "
                "index_version, generator, judge, passed, metrics, summary, report_dir) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (summary["run_id"], summary["started_at"], summary["finished_at"], summary["dataset"]["path"],
                 summary["dataset"]["key"], summary["dataset"]["items"], summary["index_version"],
                 summary["generator"], summary["judge"]["name"], int(summary["passed"]),
                 json.dumps(summary["metrics"]), json.dumps(summary), summary["report_dir"]),
            )
    finally:
        store.close()
    log.info("recorded evaluation run %s", summary["run_id"])


def comparable_runs(home: Path, dataset_key: str, judge: str, generator: str, limit: int = 60) -> list[dict]:
    """Earlier runs over the same questions with the same judge and generator, oldest first.

    Each is {run_id, started_at, index_version, passed, metrics}. Runs judged differently are never
    compared: an LLM judge and the offline judge differ by design.
    """
    db = database_path(home)
    if not db.exists():
        return []
    store = Store(db, readonly=True)
    try:
        rows = store.conn.execute(
            "SELECT run_id, started_at, index_version, passed, metrics FROM eval_runs "
            "WHERE dataset_key = ? AND judge = ? AND generator = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (dataset_key, judge, generator, limit),
        ).fetchall()
    except sqlite3.OperationalError:  # no eval_runs table yet: no earlier run
        return []
    finally:
        store.close()
    return [{"run_id": r, "started_at": s, "index_version": v, "passed": bool(p), "metrics": json.loads(m)}
            for r, s, v, p, m in reversed(rows)]
