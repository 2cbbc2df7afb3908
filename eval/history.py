"""Evaluation runs in the product's store (`eval_runs`), so the trend outlives report folders.

The store's methods (rag.logbook) read and write it: the SQLite store creates the table on the first
write (an older file lacks it), PostgreSQL has it from its migrations. Writes are one short
transaction at the end of a run; readers and a publishing ingest go on meanwhile.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rag.config import Settings
from rag.logbook import EVAL_SCHEMA
from rag.storage import exists, for_home, open_store

log = logging.getLogger(__name__)

SCHEMA = EVAL_SCHEMA  # the table, as rag.logbook creates it in the SQLite store


def _settings(home: Path) -> Settings:
    """The configured store for this home (GQA_DATABASE_URL, when set, names PostgreSQL instead)."""
    return for_home(home)


def record_run(home: Path, summary: dict) -> None:
    """Store one finished run (its summary.json) in `eval_runs`."""
    store = open_store(_settings(home))
    try:
        store.add_eval_run(
            (summary["run_id"], summary["started_at"], summary["finished_at"], summary["dataset"]["path"],
             summary["dataset"]["key"], summary["dataset"]["items"], summary["index_version"],
             summary["generator"], summary["judge"]["name"], int(summary["passed"]),
             json.dumps(summary["metrics"]), json.dumps(summary), summary["report_dir"]))
    finally:
        store.close()
    log.info("recorded evaluation run %s", summary["run_id"])


def comparable_runs(home: Path, dataset_key: str, judge: str, generator: str, limit: int = 60) -> list[dict]:
    """Earlier runs over the same questions with the same judge and generator, oldest first.

    Each is {run_id, started_at, index_version, passed, metrics}. Runs judged differently are never
    compared: an LLM judge and the offline judge differ by design.
    """
    settings = _settings(home)
    if not exists(settings):
        return []
    store = open_store(settings, readonly=True)
    try:
        rows = store.eval_runs(dataset_key, judge, generator, limit)
    finally:
        store.close()
    return [{"run_id": r, "started_at": s, "index_version": v, "passed": bool(p), "metrics": json.loads(m)}
            for r, s, v, p, m in reversed(rows)]
