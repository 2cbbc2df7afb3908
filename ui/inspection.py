"""The knowledge-team page's view of how a document was read: one page's dropped lines and chunks (`inspect`)."""

from __future__ import annotations

import streamlit as st

from ingest.inspection import recommendation_items, stored_report
from rag.config import Settings
from rag.errors import ConfigError
from ui import services, views

# Kind badges beside the status colours of ui/views.CSS: text grey, table rows blue, recommendations
# green, boxed warnings red (the colours a label's reader expects of a warning).
CSS = """<style>
.gqa-kind {display: inline-block; font-size: 0.72rem; font-weight: 700; padding: 0.05rem 0.45rem;
  border-radius: 0.6rem; margin-right: 0.4rem; vertical-align: middle;}
.gqa-kind-text {background: #eceff1; color: #37474f;}
.gqa-kind-table_row {background: #dbe9fb; color: #1f4f99;}
.gqa-kind-recommendation {background: #dcf5e3; color: #11632e;}
.gqa-kind-boxed_warning {background: #fbdada; color: #8a1010;}
.gqa-dropped {font-size: 0.85rem; color: #6b6b6b; text-decoration: line-through;}
</style>"""


def section(settings: Settings) -> None:
    """A select box of documents and a page number; the page's label, OCR flag, dropped lines and chunks."""
    store = services.read_store(settings.home)
    if store is None:
        return
    try:
        docs = store.documents()
        if not docs:
            return
        st.subheader("How a document was read")
        by_id = {d.doc_id: d for d in docs}
        chosen = st.selectbox("Document", list(by_id), key="inspect-doc",
                              format_func=lambda i: f"{by_id[i].file_name} (version {by_id[i].version}, "
                                                    f"{by_id[i].status})")
        doc = by_id[chosen]
        # keyed by document: another document's page number may be past this one's last page
        number = st.number_input("PDF page", min_value=1, max_value=max(1, doc.pages), value=1, step=1,
                                 key=f"inspect-page-{doc.doc_id}")
        try:
            out = stored_report(store, doc, int(number))
        except ConfigError as exc:
            st.error(str(exc))
            return
    finally:
        store.close()
    show(out)


def show(out: dict) -> None:
    """One page of an inspection (ingest.inspection's shape): its head, dropped lines and chunks."""
    st.html(views.CSS + CSS)
    d = out["document"]
    old = " · cut by an older release: `guideline-qa reindex` re-cuts it" if d["outdated"] else ""
    st.markdown(views.note_html(f"{d['title']} · family {d['family']} · version {d['version']} · {d['status']} · "
                                f"cut {d['cut']} · chunker {d['chunker']}{old} · {d['pages']} pages, "
                                f"{d['chunks']} chunks · each chunk is shown under the page it starts on"),
                unsafe_allow_html=True)
    for p in out["pages"]:
        ocr = views.ocr_badge() if p["ocr"] else ""
        st.markdown(f'<div class="gqa-head"><b>{views.safe(views.page_words(p["number"], p["label"]))}</b>{ocr}'
                    "</div>", unsafe_allow_html=True)
        st.markdown(dropped_html(p["dropped"]), unsafe_allow_html=True)
        if not p["chunks"]:
            st.caption("No chunk starts on this page.")
        for c in p["chunks"]:
            st.markdown(chunk_html(c), unsafe_allow_html=True)


def dropped_html(dropped: list[str] | None) -> str:
    """The lines dropped as running header or footer, struck through, or why there are none.

    Example: ['Acme | Page 2'] -> '<div class="gqa-meta">Dropped as running header or footer: <span ...'
    """
    if dropped is None:
        words = "not recorded (the page was stored by an older release)"
    elif not dropped:
        words = "none"
    else:
        words = " &middot; ".join(f'<span class="gqa-dropped">{views.safe(x)}</span>' for x in dropped)
    return f'<div class="gqa-meta">Dropped as running header or footer: {words}</div>'


def chunk_html(c: dict) -> str:
    """One chunk: kind badge, ordinal, page span, cut flags and section; table cells or recommendation
    fields; then its text (every piece of document text escaped)."""
    span = f"p. {c['page']}" + (f"-{c['page_end']}" if c["page_end"] != c["page"] else "")
    flags = [w for w, on in (("starts mid-sentence", c["starts_mid"]), ("ends mid-sentence", c["ends_mid"])) if on]
    bits = [f"#{c['ordinal']}", span, *flags] + ([f"Section {c['section']}"] if c["section"] else [])
    head = (f'<span class="gqa-kind gqa-kind-{views.safe(c["kind"])}">{views.safe(c["kind"])}</span>'
            + " &middot; ".join(views.safe(b) for b in bits) + (views.ocr_badge() if c["ocr"] else ""))
    fields = []
    if c["table"]:
        t = c["table"]
        for name in ("caption", "header", "cells"):
            value = t.get(name)
            shown = " | ".join(map(str, value)) if isinstance(value, list) else str(value or "-")
            fields.append(f"{name.capitalize()}: {views.safe(shown)}")
    if c["recommendation"]:
        fields.append(" &middot; ".join(f"{views.safe(k.capitalize())}: {views.safe(v)}"
                                        for k, v in recommendation_items(c["recommendation"])))
    meta = f'<div class="gqa-meta">{"<br>".join(fields)}</div>' if fields else ""
    return f'<div class="gqa-head">{head}</div>{meta}{views.passage_html(c["text"], None)}'
