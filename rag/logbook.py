"""The audit, feedback and evaluation-run tables as store methods, shared by both stores (rag.store.Store
and rag.pg.store.PgStore): rag/audit.py, ui/feedback.py and eval/history.py call these and write no SQL.

Statements are written with `?` placeholders; a store's `_run(sql, args)` executes one in its own
dialect, `_tx()` opens its transaction, and `_prepare(table)` makes sure a table exists (SQLite adds
the feedback and eval_runs tables to an older file on first use; PostgreSQL has them from its migrations).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager

log = logging.getLogger(__name__)

AUDIT_COLUMNS = ("id", "at", "channel", "who", "index_version", "generator", "abstained", "citations", "question")
FEEDBACK_COLUMNS = ("id", "created_at", "rating", "comment", "question", "answer", "abstained", "citations",
                    "index_version", "generator", "filters", "purged_at")
# Answers made only of document text: nothing typed by the clinician can be in them (ui/feedback.py).
VERBATIM_GENERATORS = ("extractive",)

FEEDBACK_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,            -- UTC, ISO 8601 to the second (sorts as text)
    rating TEXT NOT NULL,                -- helpful | not_helpful | wrong_citation
    comment TEXT,                        -- NULL when empty or purged
    question TEXT,                       -- NULL when not stored (store_questions=false) or purged
    answer TEXT,                         -- NULL for LLM answers when not stored or purged
    abstained INTEGER NOT NULL,
    citations TEXT NOT NULL,             -- JSON list in the `ask --json` citation shape
    index_version TEXT NOT NULL,
    generator TEXT NOT NULL,
    filters TEXT NOT NULL DEFAULT '{}',  -- JSON: families, doc_types, include_superseded
    purged_at TEXT                       -- when the retention rule removed the free text
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at);
"""

EVAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_key TEXT NOT NULL, items INTEGER NOT NULL,
    index_version TEXT NOT NULL, generator TEXT NOT NULL, judge TEXT NOT NULL,
    passed INTEGER NOT NULL, metrics TEXT NOT NULL, summary TEXT NOT NULL, report_dir TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_runs_key ON eval_runs(dataset_key, judge, generator, started_at);
"""
EVAL_COLUMNS = ("run_id", "started_at", "finished_at", "dataset", "dataset_key", "items", "index_version",
                "generator", "judge", "passed", "metrics", "summary", "report_dir")


class Logbook:
    """Audit rows, feedback and evaluation runs (mixed into both stores)."""

    # how a run already recorded is replaced, and what breaks ties between runs started in the same second
    EVAL_INSERT = "INSERT OR REPLACE INTO eval_runs"
    EVAL_ORDER = "rowid"

    def _run(self, sql: str, args: Sequence = ()) -> sqlite3.Cursor:  # pragma: no cover - each store's own
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager:  # pragma: no cover - each store's own
        raise NotImplementedError

    def _prepare(self, table: str) -> None:
        """Make sure `table` exists and deletes from it are overwritten on disk (each store's own)."""

    # --- audit (rag/audit.py) ----------------------------------------------------------------------
    def add_audit(self, row: Sequence, cutoff: str) -> None:
        """Delete the audit rows older than `cutoff`, then add one (at, channel, who, index_version,
        generator, abstained, citations, question), in one transaction."""
        self._prepare("audit")
        with self._tx():
            self._purge_audit(cutoff)
            self._run("INSERT INTO audit(at, channel, who, index_version, generator, abstained, citations, "
                      "question) VALUES (?,?,?,?,?,?,?,?)", row)

    def audit_rows(self, cutoff: str, since: str | None = None) -> list[tuple]:
        """Audit rows (those older than `cutoff` deleted first), oldest first, from `since` on."""
        self._prepare("audit")
        with self._tx():
            self._purge_audit(cutoff)
        sql, args = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit", []
        if since is not None:
            sql, args = sql + " WHERE at >= ?", [since]
        return list(self._run(sql + " ORDER BY at, id", args).fetchall())

    def _purge_audit(self, cutoff: str) -> int:
        cur = self._run("DELETE FROM audit WHERE at < ?", (cutoff,))
        if cur.rowcount:
            log.info("deleted %d audit rows older than the retention period", cur.rowcount)
        return cur.rowcount

    # --- feedback (ui/feedback.py) -------------------------------------------------------------------
    def add_feedback(self, row: Sequence, cutoff: str, now: str) -> int:
        """Purge expired free text (purge_feedback), then add one feedback row; returns its id."""
        self._prepare("feedback")
        with self._tx():
            self._purge_feedback(cutoff, now)
            cur = self._run("INSERT INTO feedback(created_at, rating, comment, question, answer, abstained, "
                            "citations, index_version, generator, filters) VALUES (?,?,?,?,?,?,?,?,?,?) "
                            "RETURNING id", row)
            return int(cur.fetchone()[0])

    def purge_feedback(self, cutoff: str, now: str) -> int:
        """Set the question, comment and (LLM) answer text of rows created before `cutoff` to NULL,
        stamping them purged at `now`; returns the rows purged."""
        self._prepare("feedback")
        with self._tx():
            return self._purge_feedback(cutoff, now)

    def _purge_feedback(self, cutoff: str, now: str) -> int:
        marks = ",".join("?" * len(VERBATIM_GENERATORS))
        cur = self._run(
            "UPDATE feedback SET question = NULL, comment = NULL, purged_at = ?, "
            f"answer = CASE WHEN generator IN ({marks}) THEN answer ELSE NULL END "
            "WHERE created_at < ? AND purged_at IS NULL",
            (now, *VERBATIM_GENERATORS, cutoff),
        )
        if cur.rowcount:
            log.info("purged question text from %d feedback rows past the retention period", cur.rowcount)
        return cur.rowcount

    def recent_feedback(self, limit: int = 50) -> list[dict]:
        """The newest feedback rows as dicts."""
        self._prepare("feedback")
        rows = self._run(f"SELECT {', '.join(FEEDBACK_COLUMNS)} FROM feedback ORDER BY id DESC LIMIT ?",
                         (limit,)).fetchall()
        return [dict(zip(FEEDBACK_COLUMNS, r, strict=True)) for r in rows]

    # --- evaluation runs (eval/history.py) -----------------------------------------------------------
    def add_eval_run(self, values: Sequence) -> None:
        """Store one finished run (EVAL_COLUMNS' values), replacing one of the same id."""
        self._prepare("eval_runs")
        with self._tx():
            self._run(f"{self.EVAL_INSERT}({', '.join(EVAL_COLUMNS)}) VALUES ({','.join('?' * len(EVAL_COLUMNS))})"
                      + self._eval_conflict(), values)

    def _eval_conflict(self) -> str:
        return ""

    def eval_runs(self, dataset_key: str, judge: str, generator: str, limit: int) -> list[tuple]:
        """(run_id, started_at, index_version, passed, metrics) of runs over these questions with this
        judge and generator, newest first; [] where no run was ever recorded."""
        try:
            rows = self._run(
                "SELECT run_id, started_at, index_version, passed, metrics FROM eval_runs WHERE dataset_key = ? "
                f"AND judge = ? AND generator = ? ORDER BY started_at DESC, {self.EVAL_ORDER} DESC LIMIT ?",
                (dataset_key, judge, generator, limit),
            ).fetchall()
        except sqlite3.OperationalError:  # a read-only SQLite connection to a file without the table
            return []
        return list(rows)

