"""The knowledge-team page: every document, and ingesting new PDFs with live progress (admin token required)."""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import replace
from pathlib import Path

import streamlit as st

from ingest.pipeline import IngestReport, collect_pdfs, ingest
from ingest.uploads import save_upload, upload_name  # noqa: F401 - upload_name: tests import it from here
from ingest.versions import version_note, withdrawal_fields
from rag.config import Settings
from rag.errors import ConfigError
from rag.storage import exists
from ui import feedback, inspection, recut, services, views

log = logging.getLogger(__name__)

TOKEN_ENV = "GQA_ADMIN_TOKEN"
OCR_LABEL = "Read scanned pages by OCR"
OCR_HELP = ("Pages without a text layer are read by OCR (ocrmypdf and tesseract, about a second a page); "
            "answers quoting them carry an 'OCR text' badge.")


def main() -> None:
    """Render the page behind the admin token."""
    st.set_page_config(layout="wide")  # the document table has ten columns
    st.title("Knowledge team")
    if not authorised():
        return
    qa = services.get_qa()
    settings = qa.settings
    _documents(settings)
    recut.section(settings, qa.engine.embedder)  # only when documents were cut by an older release
    _upload(settings, qa.engine.embedder)
    _folder(settings, qa.engine.embedder)
    inspection.section(settings)  # how a chosen document's page was read (`guideline-qa inspect`)
    _recent_feedback(settings)


def authorised() -> bool:
    """True only when GQA_ADMIN_TOKEN is set on the server and the same token was entered."""
    expected = os.environ.get(TOKEN_ENV, "")
    if not expected:
        st.error(f"This page is switched off: the server has no admin token. Set {TOKEN_ENV} in the "
                 "server's environment and restart it.", icon=":material/lock:")
        return False
    given = st.text_input("Admin token", type="password", key="admin_token")
    if not given:
        st.info("Enter the knowledge-team admin token to manage documents.", icon=":material/lock:")
        return False
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        st.error("Wrong admin token.", icon=":material/lock:")
        return False
    return True


def _documents(settings: Settings) -> None:
    """Every ingested document with family, version, status, pages, chunks and ingest time."""
    st.subheader("Documents")
    store = services.read_store(settings.home)
    if store is None:
        st.info(f"Nothing is ingested yet in {settings.home}.")
        return
    try:
        docs = store.documents()
        gen = store.get_meta("current_generation")
        events = store.withdrawals()
    finally:
        store.close()
    rows = []
    for d in docs:
        w = withdrawal_fields(d, events)
        rows.append({"Title": d.title, "File": d.file_name, "Family": d.family, "Version": d.version,
                     "Type": d.doc_type, "Status": d.status, "Superseded by": d.superseded_by or "",
                     "Withdrawn": f"by {w['withdrawn_by']} at {w['withdrawn_at']}: {w['withdrawn_reason']}"
                     if d.status == "withdrawn" else "",
                     "Pages": d.pages, "Chunks": d.chunks, "Ingested (UTC)": d.ingested_at})
    st.dataframe(rows, hide_index=True, width="stretch")
    current = sum(d.status == "current" for d in docs)
    withdrawn = sum(d.status == "withdrawn" for d in docs)
    st.caption(f"{len(docs)} documents ({current} current, {withdrawn} withdrawn) · clinicians are served "
               f"index {gen or 'none'}")
    _withdrawals(docs, events)


def _withdrawals(docs: list, events: list[dict]) -> None:
    """Every withdraw and reinstate, newest first (made with `guideline-qa withdraw|reinstate`)."""
    if not events:
        return
    names = {d.doc_id: d.file_name for d in docs}
    st.markdown("**Withdrawals**")
    st.dataframe([{"When (UTC)": e["at"], "Action": e["action"], "File": names.get(e["doc_id"], e["doc_id"]),
                   "By": e["by"], "Reason": e["reason"], "Index": e["generation"]} for e in reversed(events)],
                 hide_index=True, width="stretch")
    st.caption("Undo with `guideline-qa reinstate FILE` (or `withdraw FILE --reason TEXT`) on the server.")


def _overrides(prefix: str) -> tuple[str | None, str | None]:
    """Optional family and version labels (default: derived from each file's name and title)."""
    with st.expander("Family and version (optional)"):
        family = st.text_input("Family", key=f"{prefix}-family", help="Default: derived from the file name.")
        version = st.text_input("Version label", key=f"{prefix}-version",
                                help="Default: a year in the file name or title, else the PDF date.")
    return family.strip() or None, version.strip() or None


def _upload(settings: Settings, embedder) -> None:
    """Upload PDFs into <home>/uploads and ingest them."""
    st.subheader("Add documents")
    files = st.file_uploader("Upload PDFs", type=["pdf"], accept_multiple_files=True, key="uploads")
    family, version = _overrides("upload")
    ocr = st.checkbox(OCR_LABEL, key="upload-ocr", help=OCR_HELP)
    if st.button("Ingest uploaded files", type="primary", disabled=not files, key="ingest-uploads"):
        paths = []
        for f in files or []:
            try:
                paths.append(save_upload(settings.home, f.name, f.getvalue()))
            except ConfigError as exc:
                st.error(f"Not ingested: {exc}", icon=":material/block:")
        if not paths:
            return
        report = run_ingest(paths, settings, embedder, family, version, ocr)
        for e in report.failed if report else []:  # keep no copies of files that were not ingested
            Path(e["file"]).unlink(missing_ok=True)


def _folder(settings: Settings, embedder) -> None:
    """Ingest every PDF under a folder (or one file) on the server."""
    with st.form("folder"):
        folder = st.text_input("Or a folder (or PDF file) on the server", key="folder-path",
                               placeholder="/srv/guidelines/2026")
        ocr = st.checkbox(OCR_LABEL, key="folder-ocr", help=OCR_HELP)
        go = st.form_submit_button("Ingest from the server")
    if go and folder.strip():
        run_ingest([Path(folder.strip()).expanduser()], settings, embedder, None, None, ocr)
    elif go:
        st.warning("Type a folder or file path first.")


def run_ingest(paths: list[Path], settings: Settings, embedder, family: str | None, version: str | None,
               ocr: bool = False) -> IngestReport | None:
    """Ingest with a live progress display, then show the same summary as the command line (`ocr`: as
    `ingest --ocr`)."""
    total_files = max(1, len(collect_pdfs(list(paths))[0]))
    ticks = {"pages": 0, "chunks": 0, "files": 0}
    with st.status(f"Ingesting {total_files} file(s)...", expanded=True) as status:
        bar = st.progress(0.0, text="Reading files")

        def on_progress(stage: str, done: int, total: int) -> None:
            ticks[stage] = done
            if stage == "chunks":
                ticks["files"] += 1
            frac = done / total if total else min(1.0, ticks["files"] / total_files)
            bar.progress(frac, text=f"{ticks['pages']} pages extracted · {ticks['chunks']} chunks embedded")

        try:
            # extract_workers=0: no process pool; forking a threaded web server is unsafe.
            report = ingest(list(paths), replace(settings, ocr=ocr or settings.ocr), embedder, family=family,
                            version=version, on_progress=on_progress, extract_workers=0)
        except Exception as exc:  # noqa: BLE001 - e.g. another ingest is running: nothing was published
            status.update(label="Ingest failed", state="error")
            st.error(f"Ingest failed: {services.error_line(exc).rstrip('.')}. Clinicians keep the current index.")
            return None
        bar.progress(1.0, text=f"{report.pages} pages · {report.chunks} chunks ({report.embedded} embedded)")
        status.update(label=summary_line(report), state="error" if report.failed else "complete",
                      expanded=False)
    _report(report)
    return report


def summary_line(report: IngestReport) -> str:
    """The command line's one-line summary.

    Example: -> '1 added, 0 new version, 0 unchanged, 0 failed; published generation ab12'
    """
    tail = f"published generation {report.generation}" if report.generation else "nothing new to publish"
    return (f"{len(report.added)} added, {len(report.new_version)} new version, {len(report.unchanged)} "
            f"unchanged, {len(report.failed)} failed; {tail}")


def report_rows(report: IngestReport) -> list[dict]:
    """One row per file: result, file name and detail (the command line's table)."""
    rows = []
    for e in report.added:
        rows.append({"Result": "added", "File": Path(e["file"]).name, "Detail": version_note(e)})
    for e in report.new_version:
        rows.append({"Result": "new version", "File": Path(e["file"]).name, "Detail": version_note(e)})
    for e in report.unchanged:
        moved = f"; moved from family {e['moved_from']}: {version_note(e)}" if e.get("moved_from") else ""
        rows.append({"Result": "unchanged", "File": Path(e["file"]).name,
                     "Detail": f"version {e['version']} ({_same_bytes(e)}){moved}"})
    for e in report.failed:
        rows.append({"Result": "FAILED", "File": Path(e["file"]).name, "Detail": e["error"]})
    return rows


def _same_bytes(entry: dict) -> str:
    """How an unchanged file matches what is held (the command line's words).

    Example: {'duplicate_of': 'a.pdf'} -> 'a copy of a.pdf: identical bytes, not stored again'
    """
    dup = entry.get("duplicate_of")
    return f"a copy of {dup}: identical bytes, not stored again" if dup else "identical bytes"


def _report(report: IngestReport) -> None:
    cols = st.columns(4)
    for col, (label, items) in zip(cols, [("Added", report.added), ("New version", report.new_version),
                                          ("Unchanged", report.unchanged), ("Failed", report.failed)],
                                   strict=True):
        col.metric(label, len(items))
    st.dataframe(report_rows(report), hide_index=True, width="stretch")
    if report.generation:
        st.success(f"Published index {report.generation}: clinicians get it with their next question.")
    else:
        st.info("Nothing new to publish: clinicians keep the current index.")


def _recent_feedback(settings: Settings) -> None:
    """The newest feedback, wrong citations first to review."""
    st.subheader("Recent feedback")
    rows = feedback.recent(settings) if exists(settings) else []
    if not rows:
        st.caption("No feedback yet.")
        return
    table = [{"When (UTC)": r["created_at"], "Rating": r["rating"].replace("_", " "),
              "Question": r["question"] or "(not stored)", "Comment": r["comment"] or "",
              "Cited": "; ".join(views.cited_words(r["citations"])), "Index": r["index_version"]}
             for r in rows]
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"Question text and comments are removed after {settings.feedback_retention_days} days.")


if __name__ == "__main__":
    main()
