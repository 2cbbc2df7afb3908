"""Withdraw and reinstate: stop serving a document at once, or serve it again; nothing is deleted.

Each publishes a new generation with the same chunk ids and FAISS content and only the statuses
changed, so it is cheap and atomic: readers pick it up with their next question. Version resolution
ignores withdrawn documents, so withdrawing a new version that wrongly superseded an older one makes
the older one current again.
"""

from __future__ import annotations

import difflib
import getpass
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ingest.pipeline import Update, previous_rows, publish_generation, store_lock
from ingest.versions import WITHDRAWN, resolve
from rag.config import Settings
from rag.errors import ConfigError, GQAError
from rag.storage import exists, open_store
from rag.store import Store
from rag.types import Document


def withdraw(settings: Settings, ref: str, reason: str, by: str | None = None) -> dict:
    """Stop serving document `ref` (a file name or doc_id) and record who did it, when and why."""
    if not reason.strip():
        raise ConfigError("withdraw needs --reason TEXT: say why the document must not be served")
    return _change(settings, ref, "withdraw", reason.strip(), by)


def reinstate(settings: Settings, ref: str, by: str | None = None, reason: str = "") -> dict:
    """Serve a withdrawn document again (current unless a newer version of its family is)."""
    return _change(settings, ref, "reinstate", reason.strip(), by)


def operator(by: str | None) -> str:
    """Who acts: the `--by` name, else the OS user ('unknown' when the OS cannot say)."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def find_document(docs: list[Document], ref: str, home: Path) -> Document:
    """The document `ref` names: its doc_id, sha256, file name or a path ending in it.

    Example: ([... 'acme_gout_2023.pdf' ...], 'acme_gout_2023.pdf', home) -> that document
    """
    name = Path(ref).name
    found = [d for d in docs if ref in (d.doc_id, d.sha256)] or [d for d in docs if d.file_name in (ref, name)]
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(f"{d.doc_id} (version {d.version}, {d.status})" for d in found)
        raise ConfigError(f"{ref!r} names {len(found)} documents: {ids}; give the doc_id")
    close = difflib.get_close_matches(ref, [d.file_name for d in docs] + [d.doc_id for d in docs], n=3, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else "`guideline-qa docs` lists them"
    raise ConfigError(f"no document {ref!r} in {home}; {hint}")


def _change(settings: Settings, ref: str, action: str, reason: str, by: str | None) -> dict:
    """Flag or unflag one document, re-resolve every family, publish, and record the event."""
    home = settings.home
    if not exists(settings):
        raise GQAError(f"nothing is ingested in {home}; run `guideline-qa ingest PATH` first")
    with store_lock(settings):
        store = open_store(settings)
        try:
            docs = store.documents()
            doc = find_document(docs, ref, home)
            _check(store, doc, action)
            flagged = [replace(d, status=WITHDRAWN if action == "withdraw" else "current")
                       if d.doc_id == doc.doc_id else d for d in docs]
            decided = resolve(flagged)
            after = [replace(d, status=decided[d.doc_id][0], superseded_by=decided[d.doc_id][1]) for d in flagged]
            changes = {d.doc_id: decided[d.doc_id] for d in docs if (d.status, d.superseded_by) != decided[d.doc_id]}
            prev = store.get_meta("current_generation")
            embedder_id = store.generation_embedder(prev) if prev else None
            if not prev or not embedder_id:
                raise GQAError(f"nothing is published in {home}; run `guideline-qa ingest PATH` first")
            chunk_ids, index = previous_rows(settings, store, prev, embedder_id)
            event = {"doc_id": doc.doc_id, "action": action, "reason": reason, "who": operator(by),
                     "at": datetime.now(UTC).isoformat(timespec="seconds")}
            gen = publish_generation(settings, store, embedder_id, index, chunk_ids, after,
                                     Update(changes, event=event))
        finally:
            store.close()
    names = {d.doc_id: d.file_name for d in docs}
    return {
        "action": action, "file": doc.file_name, "doc_id": doc.doc_id, "family": doc.family,
        "status": decided[doc.doc_id][0], "superseded_by": decided[doc.doc_id][1], "reason": reason,
        "by": event["who"], "at": event["at"], "generation": gen,
        "now_current": sorted(names[i] for i, (s, _) in changes.items() if s == "current" and i != doc.doc_id),
        "now_superseded": sorted(names[i] for i, (s, _) in changes.items() if s == "superseded" and i != doc.doc_id),
    }


def _check(store: Store, doc: Document, action: str) -> None:
    """Refuse a withdraw of a withdrawn document and a reinstate of one that is served."""
    if action == "withdraw" and doc.status == WITHDRAWN:
        last = next((e for e in reversed(store.withdrawals(doc.doc_id)) if e["action"] == "withdraw"), None)
        when = f" by {last['by']} at {last['at']}" if last else ""
        raise ConfigError(f"{doc.file_name} is already withdrawn{when}; "
                          f"`guideline-qa reinstate {doc.file_name}` serves it again")
    if action == "reinstate" and doc.status != WITHDRAWN:
        raise ConfigError(f"{doc.file_name} is not withdrawn (status {doc.status}); nothing to reinstate")
