"""The clinician page: ask a question, read the cited answer, open the source page, give feedback."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import streamlit as st

from rag import audit
from rag.errors import ConfigError, GQAError
from rag.pages import PageImage, SourceMissing
from rag.qa import QA
from rag.retrieve import Filters
from rag.snapshot import Snapshot
from rag.types import Answer, Hit
from ui import feedback, services, views

log = logging.getLogger(__name__)

RATING_LABELS = {"Helpful": "helpful", "Not helpful": "not_helpful", "Wrong citation": "wrong_citation"}
RELATED_SHOWN = 3


def main() -> None:
    """Render the page."""
    qa = services.get_qa()
    st.html(views.CSS)
    st.title("Guideline Q&A")
    st.caption("Answers quote the indexed guidelines and formularies only, and cite every sentence. "
               "They support, and never replace, clinical judgement.")
    snap = _snapshot(qa)
    if snap is None:
        return
    filters = _sidebar(snap)
    asked = _question_box()
    question = _wanted_question(asked, filters)
    if question is not None:
        _ask(qa, question, filters)
    result = st.session_state.get("result")
    if result is None:
        _examples(snap)
        return
    _show(result, qa)


def _snapshot(qa: QA) -> Snapshot | None:
    try:
        return qa.engine.snapshot()
    except GQAError as exc:
        if "nothing is published" in str(exc):
            st.info("No documents are published yet. The knowledge team can add them on the "
                    "Knowledge team page, or with `guideline-qa ingest PATH`.")
        else:
            st.error(f"The index cannot be loaded: {exc}")
        return None


def _sidebar(snap: Snapshot) -> Filters:
    """Family, type and superseded filters; the index in small print."""
    sb = st.sidebar
    sb.header("Filters")
    families = sorted({d.family for d in snap.docs.values()})
    fam = sb.multiselect("Document families", families, key="f_families", placeholder="All families")
    types = sb.multiselect("Document type", services.DOC_TYPES, key="f_types", placeholder="All types")
    sup = sb.checkbox("Include superseded versions", key="f_superseded",
                      help="Off: only the current version of each document family is searched.")
    current = sum(d.status == "current" for d in snap.docs.values())
    sb.caption(f"{len(snap.docs)} documents indexed ({current} current) · index {snap.gen_id}")
    return Filters(tuple(fam), tuple(types), bool(sup))


def _question_box() -> bool:
    """The question form (Enter submits); True when it was just submitted."""
    with st.form("ask", border=False):
        st.text_input("Question", key="question", max_chars=2000,
                      placeholder="e.g. What is the first-line antibiotic for low-severity pneumonia?")
        return st.form_submit_button("Ask", type="primary")


def _use_example(question: str) -> None:
    st.session_state["question"] = question
    st.session_state["pending"] = question


def _examples(snap: Snapshot) -> None:
    """Example questions on an empty page; a click asks it."""
    examples = services.example_questions(snap)
    if not examples:
        return
    st.markdown("**Try an example**")
    for i, q in enumerate(examples):
        st.button(q, key=f"example-{i}", on_click=_use_example, args=(q,), icon=":material/arrow_forward:")


def _wanted_question(asked: bool, filters: Filters) -> str | None:
    """The question to answer in this run: submitted, an example clicked, or the last one under new filters."""
    pending = st.session_state.pop("pending", None)
    if asked:
        return st.session_state.get("question", "")
    if pending:
        return pending
    result = st.session_state.get("result")
    if result is not None and result["filters"] != filters:
        return result["answer"].question
    return None


def _ask(qa: QA, question: str, filters: Filters) -> None:
    """Answer and keep the result in session state (reruns for feedback or the source view reuse it)."""
    try:
        with st.spinner("Searching the documents..."):
            answer = qa.answer(question, filters=filters)
    except ConfigError as exc:
        st.warning(str(exc).capitalize())
        return
    except Exception as exc:  # noqa: BLE001 - one line on the page, the traceback in the server log
        st.error(f"No answer could be given: {services.error_line(exc)}")
        return
    audit.record(qa.settings, answer, "app", services.user_name())  # never fails the answer: logs a failure
    words = views.filters_words(filters.families, filters.doc_types, filters.include_superseded)
    st.session_state["result"] = {"answer": answer, "filters": filters, "filters_text": words,
                                  "rid": uuid.uuid4().hex[:12]}


def _show(result: dict, qa: QA) -> None:
    answer: Answer = result["answer"]
    home = qa.settings.home
    if answer.abstained:
        _abstention(answer, home)
    else:
        lead = next((c for c in answer.citations if c.n == answer.lead), None)
        badge = views.recommendation_badge(lead.hit.chunk.recommendation if lead else None)
        st.markdown(views.lead_html(answer.text, badge), unsafe_allow_html=True)
        st.markdown(f"**Sources** ({len(answer.citations)})")
        for c in answer.citations:
            with st.container(border=True):
                st.markdown("".join(views.citation_parts(c)), unsafe_allow_html=True)
                _source_view(c.hit, c.quote, home, f"cite-{result['rid']}-{c.n}")
    st.markdown(views.note_html(views.small_print(answer, result["filters_text"])), unsafe_allow_html=True)
    _feedback(result, qa)


def _abstention(answer: Answer, home: Path) -> None:
    st.warning("**The indexed documents do not answer this.** No passage in the published guidelines or "
               "formularies supports an answer, so none is given.", icon=":material/block:")
    related = answer.hits[:RELATED_SHOWN]
    if not related:
        return
    st.markdown("##### Closest related passages: not an answer")
    st.caption("The nearest passages found. They do not answer the question; read them only as pointers.")
    for i, h in enumerate(related):
        with st.container(border=True):
            st.markdown("".join(views.related_parts(h)), unsafe_allow_html=True)
            _source_view(h, None, home, f"related-{i}")


def _source_view(hit: Hit, quote: str | None, home: Path, key: str) -> None:
    """The cited page as printed, the quote highlighted, beside its stored text; and the PDF page to download."""
    page = hit.chunk.page
    with st.expander(f"Source page (PDF page {page})"):
        image, note = _printed(hit, quote, home)
        if image is None:
            st.caption(note)
            _page_text(hit, quote, home)
        else:
            left, right = st.columns([3, 2])
            left.image(image.png, caption=note, width="stretch")
            with right:
                _page_text(hit, quote, home)
        path = services.source_path(home, hit.doc.doc_id)
        if path is None:
            return
        st.download_button(
            f"Download PDF page {page}", data=lambda: services.pdf_page(path, hit.doc.sha256, page),
            file_name=f"{Path(hit.doc.file_name).stem}-page-{page}.pdf", mime="application/pdf",
            on_click="ignore", key=f"pdf-{key}", icon=":material/picture_as_pdf:",
        )


def _printed(hit: Hit, quote: str | None, home: Path) -> tuple[PageImage | None, str]:
    """The page rendered with the quote highlighted, and its caption; or None and the one-line reason."""
    page = hit.chunk.page
    try:
        image = services.printed_page(str(home), hit.doc, page, quote)
    except SourceMissing:
        return None, ("The original PDF is not on this server, so the page cannot be shown as printed; "
                      "below is its indexed text.")
    except Exception as exc:  # noqa: BLE001 - the text view still serves; one line here, a bug's traceback logged
        return None, f"The page cannot be shown as printed ({services.error_line(exc)}); below is its indexed text."
    if image.found is False:
        return image, f"PDF page {page} as printed. The quote was not located on the image: it is marked in the text."
    return image, f"PDF page {page} as printed" + (", the quote highlighted." if image.found else ".")


def _page_text(hit: Hit, quote: str | None, home: Path) -> None:
    """The stored text of the cited page, the quote marked."""
    page = hit.chunk.page
    text = services.page_text(str(home), hit.doc.doc_id, page, hit.chunk.cut)
    if text is None:
        st.info("The text of this page is not in the database.")
    else:
        st.markdown(views.passage_html(views.reflow(text), quote), unsafe_allow_html=True)


def _feedback(result: dict, qa: QA) -> None:
    """Helpful / not helpful / wrong citation with an optional comment, stored with the answer."""
    rid = result["rid"]
    sent: set = st.session_state.setdefault("feedback_sent", set())
    if rid in sent:
        st.success("Thank you: your feedback was saved.")
        return
    settings = qa.settings
    with st.form(f"feedback-{rid}"):
        choice = st.radio("Was this answer useful?", list(RATING_LABELS), index=None, horizontal=True,
                          key=f"rating-{rid}")
        comment = st.text_input("Comment (optional; please leave out patient details)", key=f"comment-{rid}",
                                max_chars=2000)
        submitted = st.form_submit_button("Send feedback")
        stored = (f"Your question is stored with your feedback for {settings.feedback_retention_days} days."
                  if settings.store_questions else "Your question text is not stored.")
        st.caption(stored)
    if not submitted:
        return
    if choice is None:
        st.warning("Choose Helpful, Not helpful or Wrong citation first.")
        return
    f: Filters = result["filters"]
    feedback.record(settings, result["answer"], RATING_LABELS[choice], comment or "",
                    {"families": list(f.families), "doc_types": list(f.doc_types),
                     "include_superseded": f.include_superseded})
    sent.add(rid)
    st.rerun()


if __name__ == "__main__":
    main()
