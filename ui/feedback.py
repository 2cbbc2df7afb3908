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
from rag.logbook import FEEDBACK_COLUMNS, FEEDBACK_SCHEMA, VERBATIM_GENERATORS
from rag.storage import open_store as _open_configured
from rag.store import Store
from rag.types import Answer

log = logging.getLogger(__name__)

RATINGS = ("helpful", "not_helpful", "wrong_citation")
SCHEMA = FEEDBACK_SCHEMA  # the table, as rag.logbook creates it in the SQLite store
COLUMNS = FEEDBACK_COLUMNS


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def open_store(settings: Settings) -> Store:
    """A writer connection to the configured store (its feedback methods create the SQLite table if missing)."""
    return _open_configured(settings)


def purge_expired(store: Store, retention_days: int, now: datetime | None = None) -> int:
    """Remove free text from feedback older than `retention_days`; returns the rows purged."""
    now = now or _now()
    return store.purge_feedback(_stamp(now - timedelta(days=max(0, retention_days))), _stamp(now))


def record(settings: Settings, answer: Answer, rating: str, comment: str = "", filters: dict | None = None,
           now: datetime | None = None) -> int:
    """Store one piece of feedback (after purging expired rows); returns its id."""
    if rating not in RATINGS:
        raise ConfigError(f"feedback rating {rating!r} is not one of {', '.join(RATINGS)}")
    keep_answer = settings.store_questions or answer.abstained or answer.generator in VERBATIM_GENERATORS
    at = now or _now()
    row = (
        _stamp(at), rating, comment.strip() or None,
        answer.question if settings.store_questions else None,
        answer.text if keep_answer else None,
        int(answer.abstained), json.dumps([c.to_json() for c in answer.citations]),
        answer.index_version, answer.generator, json.dumps(filters or {}, sort_keys=True),
    )
    store = open_store(settings)
    try:
        return store.add_feedback(row, _stamp(at - timedelta(days=max(0, settings.feedback_retention_days))),
                                  _stamp(at))
    finally:
        store.close()


def purge(settings: Settings) -> int:
    """Apply the retention rule now (e.g. from a nightly job); returns the rows purged."""
    store = open_store(settings)
    try:
        return purge_expired(store, settings.feedback_retention_days)
    finally:
        store.close()


def recent(settings: Settings, limit: int = 50) -> list[dict]:
    """The newest feedback rows as dicts (expired free text purged first)."""
    purge(settings)
    store = open_store(settings)
    try:
        return store.recent_feedback(limit)
    finally:
        store.close()
