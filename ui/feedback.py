"""Clinician feedback on answers, kept in the product database; question text is optional and expires.

Questions typed between patients can hold patient details, so:
- `Settings.store_questions` (GQA_STORE_QUESTIONS=false) stores no question text at all, and no answer
  text from an LLM generator (which may restate the question); extractive answers are verbatim document
  quotes and are kept.
- Every write first purges rows older than `Settings.feedback_retention_days`: their question text,
  comment and LLM answer text are set to NULL; the rating, citations and index version stay for
  quality statistics.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from rag.config import Settings
from rag.errors import ConfigError
from rag.snapshot import database_path
from rag.store import Store
from rag.types import Answer

log = logging.getLogger(__name__)

RATINGS = ("helpful", "not_helpful", "wrong_citation")
# Answers made only of document text: nothing typed by the clinician can be in them.
VERBATIM_GENERATORS = ("extractive",)

SCHEMA = """
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

COLUMNS = ("id", "created_at", "rating", "comment", "question", "answer", "abstained", "citations",
           "index_version", "generator", "filters", "purged_at")


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def open_store(settings: Settings) -> Store:
    """The product database with the feedback table created if missing."""
    store = Store(database_path(settings.home))
    # Purged question text is overwritten on disk, not just unlinked from the b-tree.
    store.conn.execute("PRAGMA secure_delete=ON")
    store.conn.executescript(SCHEMA)
    return store


def purge_expired(store: Store, retention_days: int, now: datetime | None = None) -> int:
    """Remove free text from feedback older than `retention_days`; returns the rows purged."""
    now = now or _now()
    cutoff = _stamp(now - timedelta(days=max(0, retention_days)))
    marks = ",".join("?" * len(VERBATIM_GENERATORS))
    cur = store.conn.execute(
        "UPDATE feedback SET question = NULL, comment = NULL, purged_at = ?, "
        f"answer = CASE WHEN generator IN ({marks}) THEN answer ELSE NULL END "
        "WHERE created_at < ? AND purged_at IS NULL",
        (_stamp(now), *VERBATIM_GENERATORS, cutoff),
    )
    if cur.rowcount:
        log.info("purged question text from %d feedback rows older than %d days", cur.rowcount, retention_days)
    return cur.rowcount


def record(settings: Settings, answer: Answer, rating: str, comment: str = "", filters: dict | None = None,
           now: datetime | None = None) -> int:
    """Store one piece of feedback (after purging expired rows); returns its id."""
    if rating not in RATINGS:
        raise ConfigError(f"feedback rating {rating!r} is not one of {', '.join(RATINGS)}")
    keep_answer = settings.store_questions or answer.abstained or answer.generator in VERBATIM_GENERATORS
    row = (
        _stamp(now or _now()), rating, comment.strip() or None,
        answer.question if settings.store_questions else None,
        answer.text if keep_answer else None,
        int(answer.abstained), json.dumps([c.to_json() for c in answer.citations]),
        answer.index_version, answer.generator, json.dumps(filters or {}, sort_keys=True),
    )
    store = open_store(settings)
    try:
        with store.transaction() as c:
            purge_expired(store, settings.feedback_retention_days, now)
            cur = c.execute(
                "INSERT INTO feedback(created_at, rating, comment, question, answer, abstained, citations, "
                "index_version, generator, filters) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
            return int(cur.lastrowid or 0)
    finally:
        store.close()


def purge(settings: Settings) -> int:
    """Apply the retention rule now (e.g. from a nightly job); returns the rows purged."""
    store = open_store(settings)
    try:
        with store.transaction():
            return purge_expired(store, settings.feedback_retention_days)
    finally:
        store.close()


def recent(settings: Settings, limit: int = 50) -> list[dict]:
    """The newest feedback rows as dicts (expired free text purged first)."""
    purge(settings)
    store = open_store(settings)
    try:
        rows = store.conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    finally:
        store.close()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
