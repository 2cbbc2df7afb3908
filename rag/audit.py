"""The audit trail for clinical governance: one row per answer given through the app, the API, the CLI or MCP.

Each row holds the time (UTC), the channel, who asked (an API token's name, the signed-in user, the OS
user), the index version, the cited documents, pages and chunks, whether it abstained and the generator;
the question text only when `Settings.store_questions` allows (questions may hold patient details).
Retention follows `Settings.feedback_retention_days`, as feedback does (ui/feedback.py): every write
first deletes the rows older than that, on a connection with `secure_delete`, so their text is
overwritten on disk. The table itself is rag/store.py's (`audit`).
"""

from __future__ import annotations

import getpass
import json
import logging
from datetime import UTC, datetime, timedelta

from rag.config import Settings
from rag.errors import ConfigError
from rag.logbook import AUDIT_COLUMNS
from rag.storage import exists, open_store
from rag.store import Store
from rag.types import Answer

log = logging.getLogger(__name__)

CHANNELS = ("app", "api", "cli", "mcp")  # mcp: `guideline-qa mcp`, an agent host's tool calls
COLUMNS = AUDIT_COLUMNS


def _stamp(t: datetime) -> str:
    """UTC, ISO 8601 to the second: sorts as text. Example: 2025-01-31 08:00 UTC -> '2025-01-31T08:00:00+00:00'"""
    return t.astimezone(UTC).isoformat(timespec="seconds")


def os_user() -> str:
    """The OS login name, the CLI's `who` ('unknown' where the OS cannot say, as in some containers)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cited(answer: Answer) -> list[dict]:
    """What an audit row records of each citation: its number, document, version, page and chunk."""
    return [{"n": c.n, "doc_id": c.hit.doc.doc_id, "doc": c.hit.doc.file_name, "version": c.hit.doc.version,
             "page": c.hit.chunk.page, "chunk_id": c.hit.chunk.chunk_id} for c in answer.citations]


def record(settings: Settings, answer: Answer, channel: str, who: str | None = None,
           now: datetime | None = None) -> bool:
    """Write one audit row for an answer just given; True when written.

    `channel` is app, api, cli or mcp; `who` the API token's name or the user (None: not known). A failure
    to write (a locked or read-only database, a full disk) is logged in one line, without the question,
    and returns False: an audit failure never fails the answer it records.
    """
    if channel not in CHANNELS:
        raise ValueError(f"audit channel {channel!r} is not one of {', '.join(CHANNELS)}")
    now = now or datetime.now(UTC)
    row = (_stamp(now), channel, who, answer.index_version, answer.generator, int(answer.abstained),
           json.dumps(cited(answer)), answer.question if settings.store_questions else None)
    try:
        store = _open(settings)
        try:
            store.add_audit(row, _cutoff(settings.feedback_retention_days, now))
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - the answer is still given; the log names the failure
        log.warning("audit row not written for a %s answer (%s: %s)", channel, type(exc).__name__, exc)
        return False
    return True


def rows(settings: Settings, since: datetime | None = None, now: datetime | None = None) -> list[dict]:
    """The audit rows (those past retention deleted first), oldest first, from `since` on; `citations`
    as a list. [] where nothing was ever ingested."""
    if not exists(settings):
        return []
    store = _open(settings)
    try:
        found = store.audit_rows(_cutoff(settings.feedback_retention_days, now or datetime.now(UTC)),
                                 _stamp(since) if since is not None else None)
    finally:
        store.close()
    out = [dict(zip(COLUMNS, r, strict=True)) for r in found]
    for r in out:
        r["abstained"], r["citations"] = bool(r["abstained"]), json.loads(r["citations"])
    return out


def parse_since(text: str) -> datetime:
    """A `--since` value: a date (midnight UTC) or an ISO 8601 time (UTC unless it names a zone).

    Example: '2025-01-31' -> 2025-01-31 00:00 UTC; '2025-01-31T09:30+01:00' -> 2025-01-31 08:30 UTC
    """
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since {text!r} is not a date; give YYYY-MM-DD or an ISO 8601 time such as "
                          "2025-01-31T08:00:00Z") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _open(settings: Settings) -> Store:
    """A writer connection to the configured store (SQLite: adds the audit table to an older file and
    overwrites what it deletes)."""
    return open_store(settings)


def _cutoff(retention_days: int, now: datetime) -> str:
    """The oldest time a row may have to be kept. Example: (90, 2025-04-01) -> '2025-01-01T00:00:00+00:00'"""
    return _stamp(now - timedelta(days=max(0, retention_days)))
