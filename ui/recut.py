"""The knowledge-team page's offer to re-cut documents cut by an older release (`guideline-qa reindex`)."""

from __future__ import annotations

import logging

import streamlit as st

from ingest.reindex import ReindexReport, outdated, reindex
from rag.config import Settings
from ui import services

log = logging.getLogger(__name__)

NAMES_SHOWN = 5  # documents named in the offer; the rest are counted


def section(settings: Settings, embedder) -> None:
    """When documents were cut by an older release: say which, and a button (with their count) re-cuts them."""
    store = services.read_store(settings.home)
    if store is None:
        return
    try:
        old = outdated(store)
    finally:
        store.close()
    if not old:
        return
    n = len(old)
    names = ", ".join(d.file_name for d in old[:NAMES_SHOWN]) + (f" and {n - NAMES_SHOWN} more" if n > NAMES_SHOWN
                                                                   else "")
    st.warning(f"{n} document{'s were' if n != 1 else ' was'} cut into passages by an older release ({names}). "
               "Re-cutting reads each from its source file again; clinicians keep the current index until the "
               "new one is complete.", icon=":material/content_cut:")
    if st.button(f"Re-cut {n} document{'s' if n != 1 else ''}", key="reindex"):
        run_reindex(settings, embedder, n)


def run_reindex(settings: Settings, embedder, total: int) -> ReindexReport | None:
    """Re-cut with a live progress bar, then show what was re-cut and what was kept (the command line's lines)."""
    with st.status(f"Re-cutting {total} document(s)...", expanded=True) as status:
        bar = st.progress(0.0, text="Reading source files")

        def on_progress(stage: str, done: int, of: int) -> None:
            bar.progress(done / of if of else 1.0, text=f"{done} of {of} documents re-cut or kept")

        try:
            # extract_workers=0: no process pool; forking a threaded web server is unsafe.
            report = reindex(settings, embedder, on_progress=on_progress, extract_workers=0)
        except Exception as exc:  # noqa: BLE001 - e.g. an ingest is running: nothing was published
            status.update(label="Re-cut failed", state="error")
            st.error(f"Re-cut failed: {services.error_line(exc).rstrip('.')}. Clinicians keep the current index.")
            return None
        status.update(label=f"{len(report.recut)} re-cut, {len(report.failed)} kept as they were",
                      state="error" if report.failed else "complete", expanded=False)
    rows = [{"Result": "re-cut", "File": e["file"],
             "Detail": f"chunker {e['from_chunker']} -> {e['chunker']}: {e['chunks_before']} -> {e['chunks']} "
                       f"chunks ({e['embedded']} embedded)"} for e in report.recut]
    rows += [{"Result": "KEPT", "File": e["file"], "Detail": e["error"]} for e in report.failed]
    st.dataframe(rows, hide_index=True, width="stretch")
    if report.generation:
        st.success(f"Published index {report.generation}: clinicians get it with their next question.")
    else:
        st.info("Nothing re-cut: clinicians keep the current index.")
    return report
