"""What the pages share: the QA object (loaded once per server process), page text, PDF pages, examples.

Tests inject their own QA (e.g. over a hash embedder) by putting it into session state under `QA_KEY`
before the first run; the server never does, so every session shares the one cached QA.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from pathlib import Path

import streamlit as st

from rag.backup import source_file
from rag.config import Settings
from rag.errors import GQAError
from rag.pages import PageCache, PageImage, read_source, render_page
from rag.qa import QA
from rag.snapshot import Snapshot, database_path
from rag.storage import read_home
from rag.store import Store, damaged
from rag.types import Document, sha256_hex

log = logging.getLogger(__name__)

QA_KEY = "gqa_qa"
DOC_TYPES = ("guideline", "formulary", "label", "guidance")
DEMO_QUESTIONS = Path(__file__).resolve().parents[1] / "data" / "demo_eval.jsonl"


def get_qa() -> QA:
    """The injected QA, or the process-wide one for the current GQA_* environment."""
    injected = st.session_state.get(QA_KEY)
    if injected is not None:
        return injected
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GQA_") and k != "GQA_ADMIN_TOKEN"))
    return _load_qa(env)


@st.cache_resource(show_spinner="Loading the embedding model and the index...")
def _load_qa(env: tuple[tuple[str, str], ...]) -> QA:
    """One QA per distinct configuration: models load once; QA itself follows newly published indexes."""
    log.info("loading QA for %s", dict(env).get("GQA_HOME", "the default home"))
    return QA(Settings.from_env())


def user_name() -> str | None:
    """Who is asking, for the audit trail: the signed-in user's e-mail (else name) under Streamlit's
    sign-on (README, Single sign-on); None without it (behind a proxy the app is not told who)."""
    try:
        user = st.user
        if not getattr(user, "is_logged_in", False):
            return None
        return str(user.get("email") or user.get("name") or "") or None
    except Exception:  # noqa: BLE001 - no user information in this run (bare mode, tests): not known
        return None


UNEXPECTED = ("Something went wrong on the server: the details are in its log. Try again; if it happens again, "
              "tell the knowledge team.")


def error_line(exc: BaseException) -> str:
    """The one line a page shows for an exception; anything but a GQAError is a bug, logged with its traceback.

    Example: StoreError('/srv/gqa/gqa.sqlite is damaged: ...') -> '/srv/gqa/gqa.sqlite is damaged: ...'
    """
    if isinstance(exc, GQAError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return str(damaged(database_path(Settings.from_env().home), str(exc)))  # past what opening checks
    log.error("unexpected error on a page", exc_info=exc)
    return UNEXPECTED


def read_store(home: Path) -> Store | None:
    """A read-only connection to the product database, or None when nothing was ever ingested."""
    return read_home(home)


@st.cache_data(max_entries=256, show_spinner=False)
def page_text(home: str, doc_id: str, page: int, cut: int = 0) -> str | None:
    """The stored text of one page as cut `cut` read it (the cited chunk's: a `reindex` adds a cut and
    never changes one, and doc_id is a hash of the PDF bytes, so the key names one text for ever)."""
    store = read_store(Path(home))
    if store is None:
        return None
    try:
        return store.page_text(doc_id, page, cut)
    finally:
        store.close()


def source_path(home: Path, doc_id: str) -> Path | None:
    """Where the PDF was ingested from, if that file still exists."""
    store = read_store(home)
    if store is None:
        return None
    try:
        path = source_file(home, store.source_path(doc_id))
    finally:
        store.close()
    return path if path is not None and path.is_file() else None


@st.cache_data(max_entries=64, show_spinner=False)
def printed_page(home: str, doc: Document, page: int, quote: str | None) -> PageImage:
    """The page as printed with the quote highlighted; pages.SourceMissing (never cached) when its PDF is gone.

    Cached here as well as on disk: each rerun of the page draws every source view, even closed ones.
    """
    settings = Settings.from_env(home=Path(home))
    store = read_store(settings.home)
    try:
        recorded = store.source_path(doc.doc_id) if store else ""
    finally:
        if store:
            store.close()
    data = read_source(settings.home, doc, recorded)
    cache = PageCache(settings.home / "pages", settings.page_cache_mb * 1024 * 1024)
    return render_page(data, page, quote, cache=cache, name=doc.file_name)


def pdf_page(path: Path, sha256: str, page: int) -> bytes:
    """A one-page PDF cut from the source file, after checking it is still the ingested version."""
    from pypdf import PdfReader, PdfWriter

    data = path.read_bytes()
    if sha256_hex(data) != sha256:
        raise ValueError(f"{path} changed since it was ingested; the stored page text above is the indexed one")
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(data)).pages[page - 1])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def example_questions(snap: Snapshot, limit: int = 3) -> list[str]:
    """A few questions the published documents can answer.

    The demo corpus brings its own (data/demo_eval.jsonl, used when its documents are indexed); any
    other corpus gets questions built from its current documents' section headings.
    """
    names = {d.file_name for d in snap.docs.values()}
    out: list[str] = []
    if DEMO_QUESTIONS.exists():
        for line in DEMO_QUESTIONS.read_text(encoding="utf-8").splitlines():
            item = json.loads(line) if line.strip() else {}
            docs = {s.get("doc") for s in item.get("sources", [])}
            if item.get("answerable") and docs and docs <= names:
                out.append(item["question"])
    if not out:
        out = _heading_questions(snap)
    return out[:limit]


SKIP_HEADINGS = frozenset({"scope", "introduction", "purpose", "contents", "definitions", "references",
                           "abbreviations", "summary", "background", "glossary", "acknowledgements"})


def _heading_questions(snap: Snapshot) -> list[str]:
    """'What does <title> say about <section>?' from the section headings of current documents."""
    out: list[str] = []
    seen: set[str] = set()
    for c in snap.chunks:
        doc = snap.docs[c.doc_id]
        leaf = c.section.split(">")[-1].strip().lstrip("0123456789. ").strip().lower()
        if doc.status != "current" or not leaf or leaf in seen or leaf in SKIP_HEADINGS or len(leaf) > 60:
            continue
        seen.add(leaf)
        out.append(f"What does the {doc.title} say about {leaf}?")
    return out
