"""Page logic of the web app with Streamlit's AppTest: ask, cite, abstain, filter, feedback, upload, guard.

Fast tests inject a QA over the demo corpus ingested with the HashEmbedder; the slow ones use the real model.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.qa import QA
from ui import views
from ui.services import QA_KEY

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "ui" / "app.py")
DATA = ROOT / "data"
ANSWERABLE = "amoxicillin dose low severity community-acquired pneumonia"
UNANSWERABLE = "What is the capital of France?"


# --- helpers ---------------------------------------------------------------------------------------------
def start(qa: QA | None) -> AppTest:
    """The app with `qa` injected, after its first run."""
    at = AppTest.from_file(APP, default_timeout=60)
    if qa is not None:
        at.session_state[QA_KEY] = qa
    return at.run()


def ask(at: AppTest, question: str) -> AppTest:
    """Type a question and submit the form."""
    at.text_input(key="question").input(question)
    return button(at, "Ask").click().run()


def button(at: AppTest, label: str):
    """The button with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def page_html(at: AppTest) -> str:
    """Every markdown element of the last run."""
    return "\n".join(m.value for m in at.markdown)


def page_text(at: AppTest) -> str:
    """What a reader sees: markdown without tags, character references decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page_html(at)))


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def feedback_rows(home: Path) -> list[dict]:
    con = sqlite3.connect(home / "gqa.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM feedback ORDER BY id")]
    except sqlite3.OperationalError:  # no feedback table yet
        return []
    finally:
        con.close()


# --- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def hash_demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus ingested once with the HashEmbedder (copied into each test's home)."""
    from fakes import HashEmbedder

    from ingest.pipeline import ingest
    from rag.config import Settings

    home = tmp_path_factory.mktemp("hash-demo")
    report = ingest([DATA], Settings.from_env(home=home), HashEmbedder())
    assert not report.failed, report.failed
    return home


@pytest.fixture
def hash_qa(hash_demo_source: Path, settings, hash_embedder) -> QA:
    """A QA over this test's own copy of the hash-embedded demo corpus."""
    shutil.copytree(hash_demo_source, settings.home)
    return QA(settings, embedder=hash_embedder)


# --- clinician page --------------------------------------------------------------------------------------
def test_empty_page_offers_example_questions(hash_qa: QA) -> None:
    at = start(hash_qa)
    no_errors(at)
    demo = [json.loads(x)["question"] for x in (DATA / "demo_eval.jsonl").read_text().splitlines() if x]
    labels = [b.label for b in at.button]
    assert sum(q in labels for q in demo) == 3
    assert "Sources" not in page_text(at)


def test_answer_shows_markers_and_one_card_per_citation(hash_qa: QA) -> None:
    expected = hash_qa.answer(ANSWERABLE)
    assert not expected.abstained, "the hash-embedded demo should answer this question"
    at = ask(start(hash_qa), ANSWERABLE)
    no_errors(at)
    text = page_text(at)
    for c in expected.citations:
        assert f"[{c.n}]" in text
    heads = [m.value for m in at.markdown if 'class="gqa-head"' in m.value]
    assert len(heads) == len(expected.citations)
    first = expected.citations[0].hit
    card = html.unescape(re.sub(r"<[^>]+>", " ", heads[0]))
    assert first.doc.title in card and f"Version {first.doc.version}" in card
    assert f"PDF page {first.chunk.page}" in card and "current" in card
    assert "<mark>" in heads[0], "the quote is highlighted inside its passage"
    assert [e.label for e in at.expander][: len(expected.citations)] == [
        f"Source page (PDF page {c.hit.chunk.page})" for c in expected.citations]
    assert "Answered by the extractive generator" in text and "retrieval" in text
    assert f"index {hash_qa.index_version}" in text


def test_source_view_shows_the_page_text_with_the_quote_marked(hash_qa: QA) -> None:
    from rag.store import Store

    cited = hash_qa.answer(ANSWERABLE).citations[0]
    at = ask(start(hash_qa), ANSWERABLE)
    [shown] = [m.value for m in at.expander[0].markdown]
    store = Store(hash_qa.settings.home / "gqa.sqlite", readonly=True)
    stored = store.page_text(cited.hit.doc.doc_id, cited.hit.chunk.page)
    store.close()
    assert "<mark>" in shown
    as_text = html.unescape(re.sub(r"</?(mark|div)[^>]*>", "", shown).replace("<br>", "\n"))
    assert as_text == views.reflow(stored), "the whole stored page is shown"
    assert any(d.label == f"Download PDF page {cited.hit.chunk.page}" for d in at.get("download_button"))


def test_source_view_shows_the_printed_page_with_the_quote_highlighted_beside_the_text(hash_qa: QA) -> None:
    from ui.services import printed_page

    cited = hash_qa.answer(ANSWERABLE).citations[0]
    at = ask(start(hash_qa), ANSWERABLE)
    no_errors(at)
    view = at.expander[0]
    [image] = view.get("image")
    assert image.captions == [f"PDF page {cited.hit.chunk.page} as printed, the quote highlighted."]
    assert len(view.get("column")) == 2 and "<mark>" in view.markdown[0].value, "the text is beside the image"
    shown = printed_page(str(hash_qa.settings.home), cited.hit.doc, cited.hit.chunk.page, cited.quote)
    assert shown.found and shown.boxes and shown.png[:4] == b"\x89PNG"


def test_source_view_without_the_pdf_shows_the_text_and_a_one_line_note(hash_qa: QA) -> None:
    con = sqlite3.connect(hash_qa.settings.home / "gqa.sqlite")
    con.execute("UPDATE documents SET source_path = '/gone/demo.pdf'")
    con.commit()
    con.close()
    at = ask(start(hash_qa), ANSWERABLE)
    no_errors(at)
    view = at.expander[0]
    assert not view.get("image") and "<mark>" in view.markdown[0].value
    assert [c.value for c in view.caption] == [
        "The original PDF is not on this server, so the page cannot be shown as printed; below is its indexed text."]
    assert not view.get("download_button")


def test_abstention_is_labelled_and_shows_related_passages_as_not_an_answer(hash_qa: QA) -> None:
    assert hash_qa.answer(UNANSWERABLE).abstained
    at = ask(start(hash_qa), UNANSWERABLE)
    no_errors(at)
    assert "The indexed documents do not answer this" in at.warning[0].value
    text = page_text(at)
    assert "Closest related passages: not an answer" in text
    assert text.count("Related passage - not an answer") == 3
    assert "Sources" not in text and "gqa-answer" not in page_html(at)


def test_example_button_asks_it(hash_qa: QA) -> None:
    at = start(hash_qa)
    question = at.button[1].label
    at = at.button[1].click().run()
    no_errors(at)
    assert at.text_input(key="question").value == question
    assert "Answered by the extractive generator" in page_text(at)


def test_empty_question_is_a_warning_not_a_crash(hash_qa: QA) -> None:
    at = ask(start(hash_qa), "   ")
    no_errors(at)
    assert "question is empty" in at.warning[0].value


def test_family_and_type_filters_restrict_the_sources(hash_qa: QA) -> None:
    at = start(hash_qa)
    at.multiselect(key="f_families").set_value(["demo-formulary"])
    at = ask(at, ANSWERABLE)
    no_errors(at)
    text = page_text(at)
    assert "demo_formulary.pdf" in text and "demo_guideline.pdf" not in text
    assert "families: demo-formulary" in page_text(at)
    at.multiselect(key="f_families").set_value([])
    at.multiselect(key="f_types").set_value(["guidance"])
    at = at.run()  # new filters re-ask the same question: no guidance document exists
    assert "The indexed documents do not answer this" in at.warning[0].value
    assert "demo_" not in page_text(at)


def test_superseded_versions_only_when_asked_for(settings, hash_embedder, tmp_path: Path) -> None:
    from docgen import guide

    from ingest.pipeline import ingest

    old = "Zeta protocol audits of warfarin clinics happen every quarter with the zeta checklist."
    guide(tmp_path / "src" / "warfarin_guide_2020.pdf", "warfarin", extra=old)
    guide(tmp_path / "src" / "warfarin_guide_2024.pdf", "warfarin")
    assert not ingest([tmp_path / "src"], settings, hash_embedder).failed
    qa = QA(settings, embedder=hash_embedder)
    at = ask(start(qa), "zeta protocol audits of warfarin clinics zeta checklist")
    assert "gqa-superseded" not in page_html(at)
    at.checkbox(key="f_superseded").check()
    at = at.run()
    no_errors(at)
    assert "gqa-superseded" in page_html(at)
    assert "superseded by warfarin_guide_2024.pdf" in page_text(at)


def test_feedback_is_stored_with_answer_citations_and_index(hash_qa: QA) -> None:
    at = ask(start(hash_qa), ANSWERABLE)
    at.radio[0].set_value("Wrong citation")
    [comment] = [t for t in at.text_input if t.label.startswith("Comment")]
    comment.input("source [2] is about dosing in general")
    at = button(at, "Send feedback").click().run()
    no_errors(at)
    assert "feedback was saved" in at.success[0].value
    [row] = feedback_rows(hash_qa.settings.home)
    assert row["rating"] == "wrong_citation" and row["comment"] == "source [2] is about dosing in general"
    assert row["question"] == ANSWERABLE and row["answer"] and row["abstained"] == 0
    assert row["index_version"] == hash_qa.index_version and row["generator"] == "extractive"
    cites = json.loads(row["citations"])
    assert cites and {"n", "doc", "page", "quote", "chunk_id"} <= set(cites[0])
    assert json.loads(row["filters"]) == {"doc_types": [], "families": [], "include_superseded": False}
    assert not [b for b in at.button if b.label == "Send feedback"], "one feedback per answer"


def test_feedback_needs_a_rating(hash_qa: QA) -> None:
    at = ask(start(hash_qa), ANSWERABLE)
    at = button(at, "Send feedback").click().run()
    assert "Choose Helpful" in at.warning[0].value
    assert feedback_rows(hash_qa.settings.home) == []


def test_question_text_not_stored_when_switched_off(hash_qa: QA, hash_embedder) -> None:
    qa = QA(replace(hash_qa.settings, store_questions=False), embedder=hash_embedder)
    at = ask(start(qa), UNANSWERABLE)
    assert "question text is not stored" in page_text(at) or any(
        "not stored" in c.value for c in at.caption)
    at.radio[0].set_value("Not helpful")
    at = button(at, "Send feedback").click().run()
    [row] = feedback_rows(qa.settings.home)
    assert row["rating"] == "not_helpful" and row["question"] is None and row["abstained"] == 1


def test_newly_published_index_is_used_without_restart(settings, hash_embedder) -> None:
    from ingest.pipeline import ingest

    ingest([DATA / "demo_guideline.pdf"], settings, hash_embedder)
    qa = QA(settings, embedder=hash_embedder)
    question = "ciprofloxacin maximum daily dose adults tablets"
    at = ask(start(qa), question)
    assert "demo_formulary.pdf" not in page_text(at)
    assert any("2 documents" not in c.value and "1 documents" in c.value for c in at.sidebar.caption)
    ingest([DATA / "demo_formulary.pdf"], settings, hash_embedder)
    at = ask(at, question + " ")
    no_errors(at)
    assert "demo_formulary.pdf" in page_text(at)
    assert any("2 documents" in c.value for c in at.sidebar.caption)


def test_html_and_script_in_a_pdf_are_shown_as_text(settings, hash_embedder, tmp_path: Path) -> None:
    from render_demo import DocSpec, Heading, Paragraph, render_pdf

    from ingest.pipeline import ingest

    evil = ("Quokka dosing: <script>alert('x')</script> <img src=x onerror=alert(1)> "
            "[click](http://evil.example) ![t](http://evil.example/t.png) $x^2$ :red[quokka] quokka.")
    render_pdf(tmp_path / "quokka_guideline_2025.pdf",
               DocSpec(title="Quokka guideline", blocks=[Heading("1", "Quokka"), Paragraph(evil)]))
    assert not ingest([tmp_path / "quokka_guideline_2025.pdf"], settings, hash_embedder).failed
    at = ask(start(QA(settings, embedder=hash_embedder)), "quokka dosing script img click quokka")
    no_errors(at)
    raw = page_html(at)
    assert "<script" not in raw and "<img" not in raw and "](http" not in raw and "$x" not in raw
    assert "&#60;script&#62;" in raw
    assert "<script>alert('x')</script>" in page_text(at)


def test_cached_qa_is_built_once_per_process(hash_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import services

    built: list[QA] = []

    def build(settings):
        built.append(QA(settings, embedder=hash_qa.engine.embedder))
        return built[-1]

    monkeypatch.setattr(services, "QA", build)
    services._load_qa.clear()
    try:
        for _ in range(2):  # two sessions, each asking once
            at = ask(start(None), ANSWERABLE)
            no_errors(at)
        assert len(built) == 1
    finally:
        services._load_qa.clear()


def test_single_sign_on_when_configured_shows_only_the_sign_in_button(hash_qa: QA) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[QA_KEY] = hash_qa
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "s",
                          "client_id": "c", "client_secret": "x",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at = at.run()
    no_errors(at)
    assert [b.label for b in at.button] == ["Sign in with your organisation account"]
    assert not at.text_input


# --- knowledge-team page ---------------------------------------------------------------------------------
def knowledge(qa: QA, token: str | None = None) -> AppTest:
    at = start(qa).switch_page("page_knowledge.py").run()
    if token is not None:
        at.text_input(key="admin_token").input(token)
        at = at.run()
    return at


def test_knowledge_page_refuses_without_a_server_token(hash_qa: QA) -> None:
    at = knowledge(hash_qa)
    assert "switched off" in at.error[0].value and "GQA_ADMIN_TOKEN" in at.error[0].value
    assert not at.text_input and not at.file_uploader and not at.dataframe


def test_knowledge_page_refuses_a_wrong_token(hash_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "correct horse")
    at = knowledge(hash_qa)
    assert not at.file_uploader and "Enter the knowledge-team admin token" in at.info[0].value
    at = knowledge(hash_qa, "wrong")
    assert "Wrong admin token" in at.error[0].value
    assert not at.file_uploader and not at.dataframe


def test_knowledge_page_lists_documents(hash_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = knowledge(hash_qa, "tok")
    no_errors(at)
    table = at.dataframe[0].value
    assert sorted(table["File"]) == ["demo_formulary.pdf", "demo_guideline.pdf"]
    assert set(table.columns) >= {"Family", "Version", "Status", "Pages", "Chunks", "Ingested (UTC)"}
    assert hash_qa.index_version in at.caption[0].value


def test_upload_is_ingested_with_a_summary(settings, hash_embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    qa = QA(settings, embedder=hash_embedder)
    at = knowledge(qa, "tok")
    assert "Nothing is ingested yet" in at.info[0].value
    at.file_uploader(key="uploads").set_value([
        ("demo_formulary.pdf", (DATA / "demo_formulary.pdf").read_bytes(), "application/pdf"),
        ("broken.pdf", b"%PDF-1.7 this is not really a PDF", "application/pdf"),
    ])
    at = button(at.run(), "Ingest uploaded files").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Added": "1", "New version": "0", "Unchanged": "0", "Failed": "1"}
    summary = at.dataframe[-1].value
    assert list(summary["Result"]) == ["added", "FAILED"] and summary["Detail"][1]
    assert "Published index" in at.success[0].value
    saved = list((settings.home / "uploads").rglob("*.pdf"))
    assert [p.name for p in saved] == ["demo_formulary.pdf"], "failed uploads are not kept"
    assert qa.index_version, "the new generation is live for clinicians"
    at = at.run()
    assert list(at.dataframe[0].value["File"]) == ["demo_formulary.pdf"]


def test_server_folder_is_ingested_and_reingest_is_unchanged(settings, hash_embedder,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = knowledge(QA(settings, embedder=hash_embedder), "tok")
    at.text_input(key="folder-path").input(str(DATA))
    at = button(at, "Ingest from the server").click().run()
    assert {m.label: m.value for m in at.metric}["Added"] == "2"
    at = button(at, "Ingest from the server").click().run()
    assert {m.label: m.value for m in at.metric}["Unchanged"] == "2"
    assert "Nothing new to publish" in at.info[-1].value


def test_ingest_refused_while_another_runs(settings, hash_embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.pipeline import ingest_lock

    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = knowledge(QA(settings, embedder=hash_embedder), "tok")
    at.text_input(key="folder-path").input(str(DATA))
    with ingest_lock(settings.home):
        at = button(at, "Ingest from the server").click().run()
    assert not at.exception
    assert "another ingest is running" in at.error[0].value and "keep the current index" in at.error[0].value
    assert not at.metric


# --- one-line errors ------------------------------------------------------------------------------------
def every_text(at: AppTest) -> str:
    """Everything a run shows: markdown, alerts, captions and exceptions."""
    parts = [e.value for kind in ("markdown", "error", "warning", "info", "success", "caption")
             for e in getattr(at, kind)]
    return "\n".join(parts + [e.message for e in at.exception])


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_a_damaged_database_is_one_line_on_both_pages(how: str, hash_qa: QA, monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    db = hash_qa.settings.home / "gqa.sqlite"
    data = db.read_bytes()
    db.write_bytes(b"" if how == "empty" else data[: len(data) // 2])
    fix = "restore it from a backup (README, Backups) or re-ingest the documents into a new GQA_HOME"
    fresh = QA(hash_qa.settings, embedder=hash_qa.engine.embedder)  # as a server started after the damage
    at = start(fresh)
    assert not at.exception
    [shown] = at.error
    assert f"{db} is damaged" in shown.value and fix in shown.value and "Traceback" not in every_text(at)
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = knowledge(fresh, "tok")
    assert not at.exception
    [shown] = at.error
    assert shown.value.startswith(f"{db} is damaged") and fix in shown.value


def test_an_unexpected_error_is_one_line_and_its_traceback_stays_in_the_server_log(
        hash_qa: QA, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from ui.services import UNEXPECTED

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together, in /srv/gqa/rag/lexical.py")

    monkeypatch.setattr(hash_qa, "answer", broken)
    at = ask(start(hash_qa), ANSWERABLE)
    assert not at.exception
    assert [e.value for e in at.error] == [f"No answer could be given: {UNEXPECTED}"]
    assert "/srv/gqa" not in every_text(at) and "broadcast" not in every_text(at)
    [logged] = [r for r in caplog.records if r.exc_info and "broadcast" in str(r.exc_info[1])]
    assert logged.levelname == "ERROR"


def test_an_unexpected_error_anywhere_on_a_page_is_one_line(hash_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import services

    def broken(snap, limit=3):
        raise KeyError("/srv/gqa/data/demo_eval.jsonl")

    monkeypatch.setattr(services, "example_questions", broken)
    at = start(hash_qa)
    assert not at.exception
    assert [e.value for e in at.error] == [services.UNEXPECTED]
    assert "/srv/gqa" not in every_text(at)


def test_upload_names_that_cannot_be_kept_are_refused_and_the_rest_ingested(
        settings, hash_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from docgen import guide

    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    qa = QA(settings, embedder=hash_embedder)
    at = knowledge(qa, "tok")
    other = guide(tmp_path / "gout.pdf", "gout").read_bytes()
    at.file_uploader(key="uploads").set_value([
        # a NUL byte never gets this far: Streamlit's uploader refuses it (ui.page_knowledge.upload_name too)
        ("bad\nname.pdf", (DATA / "demo_guideline.pdf").read_bytes(), "application/pdf"),
        ("..pdf", other, "application/pdf"),
        ("demo_formulary.pdf", (DATA / "demo_formulary.pdf").read_bytes(), "application/pdf"),
    ])
    at = button(at.run(), "Ingest uploaded files").click().run()
    assert not at.exception
    refused = [e.value for e in at.error]
    assert refused == [
        "Not ingested: upload name 'bad\\nname.pdf' contains a control character; rename the file and upload it "
        "again",
        "Not ingested: upload name '..pdf' leaves no usable name (a name, then .pdf) once folders and leading dots "
        "are removed; rename the file (e.g. NG138_2025.pdf) and upload it again"]
    assert {m.label: m.value for m in at.metric}["Added"] == "1"
    assert [p.name for p in (settings.home / "uploads").rglob("*") if p.is_file()] == ["demo_formulary.pdf"]


# --- real model (slow) -----------------------------------------------------------------------------------
def first_answered(qa: QA) -> tuple[str, object]:
    """The first answerable demo question this QA answers (the UI test must not depend on answer quality)."""
    items = [json.loads(x) for x in (DATA / "demo_eval.jsonl").read_text().splitlines() if x]
    for item in items:
        if item["answerable"]:
            got = qa.answer(item["question"])
            if not got.abstained:
                return item["question"], got
    pytest.fail("the QA abstains on every answerable question of data/demo_eval.jsonl")


@pytest.mark.slow
def test_real_model_answers_and_abstains(demo_home: Path, real_embedder) -> None:
    from rag.config import Settings

    qa = QA(Settings.from_env(home=demo_home), embedder=real_embedder)
    question, expected = first_answered(qa)
    at = ask(start(qa), question)
    no_errors(at)
    heads = [m.value for m in at.markdown if 'class="gqa-head"' in m.value]
    assert len(heads) == len(expected.citations) and "gqa-answer" in page_html(at)
    [shown] = [m.value for m in at.markdown if 'class="gqa-lead"' in m.value]
    lead = html.unescape(re.sub(r"<[^>]+>", "", shown.split('class="gqa-support"')[0]))
    assert expected.citations[0].quote in lead and "[1]" in lead  # the lead first, in its own block
    assert all(f"PDF page {c.hit.chunk.page}" in page_text(at) for c in expected.citations)
    items = [json.loads(x) for x in (DATA / "demo_eval.jsonl").read_text().splitlines() if x]
    unanswerable = next(i for i in items if not i["answerable"])
    at = ask(at, unanswerable["question"])
    assert "The indexed documents do not answer this" in at.warning[0].value
