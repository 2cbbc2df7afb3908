"""Known-answer tests of the app's pure helpers, feedback storage and retention, and `guideline-qa serve`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from raw_tables import table_rows

from rag.types import Answer, Chunk, Citation, Document, Hit
from ui import feedback, views

DOC = Document(doc_id="d1", sha256="s", file_name="ng_2025.pdf", title="NG <Title>", family="ng",
               version="2025", doc_type="guideline", status="superseded", pages=4, chunks=9,
               ingested_at="2026-01-02T03:04:05+00:00", superseded_by="ng_2026.pdf")
CHUNK = Chunk(chunk_id="c1", doc_id="d1", ordinal=0, page=3, page_end=3, page_label="2",
              section="3 Treatment > 3.1 Adults", text="Give amoxicillin 500 mg\nthree times daily.")


def answer(generator: str = "extractive", abstained: bool = False) -> Answer:
    hit = Hit(chunk=CHUNK, doc=DOC, score=0.9, rank=1)
    cites = () if abstained else (Citation(n=1, hit=hit, quote="amoxicillin 500 mg three times daily"),)
    return Answer(question="Mrs X, 80, CAP: dose?", text="Give amoxicillin 500 mg [1]", citations=cites,
                  hits=(hit,), abstained=abstained, generator=generator, index_version="gen1")


# --- views -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("<b>2*3</b>\nok", "&#60;b&#62;2&#42;3&#60;/b&#62;<br>ok"),
    ("a'b&c", "a&#39;b&#38;c"),
    ("[x](http://e)", "&#91;x&#93;&#40;http&#58;//e&#41;"),
    ("$x$ :red[y]", "&#36;x&#36; &#58;red&#91;y&#93;"),
    ("plain 5 mg.", "plain 5 mg."),
])
def test_safe_escapes_html_and_markdown(text: str, expected: str) -> None:
    assert views.safe(text) == expected


def test_find_quote_ignores_whitespace_and_case() -> None:
    assert views.find_quote("Give 2 mg\nonce daily.", "2 MG once") == (5, 14)
    assert views.find_quote("abc", "x") is None
    assert views.find_quote("abc", "  ") is None
    assert views.find_quote("İx dose", "x dose") == (1, 7)  # 'İ'.lower() is two characters


def test_highlighted_marks_the_quote_and_escapes_around_it() -> None:
    assert views.highlighted("a <b> c", "<b>") == ("a <mark>&#60;b&#62;</mark> c", True)
    assert views.highlighted("a b", "zz") == ("a b", False)


def test_excerpt_keeps_whole_words_around_the_quote() -> None:
    assert views.excerpt("aa bb cc dd ee", (6, 8), 3) == ("… bb cc dd …", (5, 7))
    assert views.excerpt("aa bb cc dd ee", None, 4) == ("aa bb cc …", None)
    assert views.excerpt("short", (0, 5), 100) == ("short", (0, 5))


def test_reflow_joins_lines_broken_inside_sentences() -> None:
    assert views.reflow("in adults 18 years and\nover.\n2 Scope") == "in adults 18 years and over.\n2 Scope"
    assert views.reflow("Table 1\nLow | amoxicillin\n- item\n(CAP) is") == "Table 1\nLow | amoxicillin\n- item (CAP) is"


def test_passage_shows_an_unfound_quote_apart() -> None:
    out = views.passage_html("nothing here", "the quote")
    assert out.startswith('<div class="gqa-passage"><mark>the quote</mark></div>')


def test_answer_html_styles_markers() -> None:
    assert views.answer_html("Give 5 mg. [1] Stop [2]") == (
        '<div class="gqa-answer">Give 5 mg. <span class="gqa-ref">[1]</span> Stop '
        '<span class="gqa-ref">[2]</span></div>')


def test_card_parts_name_document_status_page_and_section() -> None:
    c = answer().citations[0]
    head, meta, passage = views.citation_parts(c)
    assert head == ('<div class="gqa-head"><span class="gqa-n">[1]</span><b>NG &#60;Title&#62;</b>'
                    '<span class="gqa-badge gqa-superseded">superseded</span></div>')
    assert meta == ('<div class="gqa-meta">Version 2025 &middot; indexed 2026-01-02 &middot; superseded by '
                    'ng&#95;2026.pdf &middot; PDF page 3 &#40;printed page 2&#41; &middot; Section 3 Treatment '
                    '&#62; 3.1 Adults &middot; ng&#95;2025.pdf</div>')
    assert passage == '<div class="gqa-passage">Give <mark>amoxicillin 500 mg<br>three times daily</mark>.</div>'
    assert "Related passage - not an answer" in views.related_parts(c.hit)[0]


def test_small_print_words() -> None:
    assert views.page_words(3, "3") == "PDF page 3"
    assert views.filters_words(("a",), (), False) == "families: a · current versions only"
    assert views.filters_words((), ("label",), True) == "types: label · superseded versions included"
    a = replace(answer(), timings_ms={"retrieve": 12.0, "answer": 3.4})
    assert views.small_print(a, "x") == ("Answered by the extractive generator · retrieval 12 ms · answer 3 ms"
                                         " · index gen1 · x")
    assert views.cited_words('[{"n": 1, "doc": "a.pdf", "page": 3}]') == ["[1] a.pdf p.3"]


# --- feedback --------------------------------------------------------------------------------------------
def rows(home: Path) -> list[dict]:
    return table_rows(home, "feedback")


def test_feedback_record_stores_answer_citations_and_index(settings) -> None:
    fid = feedback.record(settings, answer(), "helpful", "  good  ", {"families": ["ng"]})
    [row] = rows(settings.home)
    assert row["id"] == fid and row["rating"] == "helpful" and row["comment"] == "good"
    assert row["question"] == "Mrs X, 80, CAP: dose?" and row["answer"] == "Give amoxicillin 500 mg [1]"
    assert row["index_version"] == "gen1" and row["generator"] == "extractive" and row["purged_at"] is None
    assert json.loads(row["citations"])[0]["quote"] == "amoxicillin 500 mg three times daily"
    assert json.loads(row["filters"]) == {"families": ["ng"]}


def test_feedback_rejects_unknown_rating(settings) -> None:
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="helpful, not_helpful, wrong_citation"):
        feedback.record(settings, answer(), "meh")


def test_store_questions_off_keeps_no_question_and_no_llm_answer(settings) -> None:
    off = replace(settings, store_questions=False)
    feedback.record(off, answer("extractive"), "helpful")
    feedback.record(off, answer("openai"), "not_helpful", "")
    first, second = rows(settings.home)
    assert first["question"] is None and first["answer"] == "Give amoxicillin 500 mg [1]"
    assert second["question"] is None and second["answer"] is None and second["comment"] is None


def test_retention_purges_free_text_of_old_rows_on_each_write(settings) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    s = replace(settings, feedback_retention_days=90)
    feedback.record(s, answer("openai"), "helpful", "patient detail", now=now - timedelta(days=91))
    feedback.record(s, answer("extractive"), "helpful", "kept", now=now - timedelta(days=89))
    feedback.record(s, answer(), "wrong_citation", "new", now=now)
    old, recent, new = rows(settings.home)
    assert (old["question"], old["comment"], old["answer"]) == (None, None, None)
    assert old["purged_at"] == "2026-06-01T12:00:00+00:00" and old["rating"] == "helpful"
    assert json.loads(old["citations"]), "citations (document text) are kept for statistics"
    assert recent["question"] and recent["comment"] == "kept" and new["question"]
    store = feedback.open_store(s)
    try:
        assert feedback.purge_expired(store, 90, now + timedelta(days=90)) == 1  # exactly 90 days: kept
        assert feedback.purge_expired(store, 90, now + timedelta(days=90, seconds=1)) == 1
        assert feedback.purge_expired(store, 90, now + timedelta(days=200)) == 0
    finally:
        store.close()
    assert all(r["question"] is None for r in rows(settings.home))


def test_recent_returns_newest_first(settings) -> None:
    feedback.record(settings, answer(), "helpful")
    feedback.record(settings, answer(abstained=True), "not_helpful")
    got = feedback.recent(settings)
    assert [r["rating"] for r in got] == ["not_helpful", "helpful"] and got[0]["abstained"] == 1


# --- knowledge page helpers ------------------------------------------------------------------------------
def test_save_upload_keeps_the_name_without_folders(tmp_path: Path) -> None:
    from ui.page_knowledge import save_upload, summary_line

    p = save_upload(tmp_path, "../../etc/NG138 2025.pdf", b"%PDF-1.4 x")
    assert p.parent.parent == tmp_path / "uploads" and p.name == "NG138 2025.pdf" and p.read_bytes()
    assert save_upload(tmp_path, "..\\.hidden.pdf", b"y").name == "hidden.pdf"
    from ingest.pipeline import IngestReport

    assert summary_line(IngestReport(added=[{}], generation="g1")) == (
        "1 added, 0 new version, 0 unchanged, 0 failed; published generation g1")


# --- guideline-qa serve ----------------------------------------------------------------------------------
def test_serve_command_line() -> None:
    from cli.serve_cmd import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8502)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(cmd[4]) == Path(__file__).resolve().parents[1] / "ui" / "app.py"
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8502"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.headless"] == "true"


def test_serve_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["serve", "--port", "70000"]) == 1
    assert "--port 70000: must be between 1 and 65535" in capsys.readouterr().err


def test_the_lead_is_parted_from_its_supports() -> None:
    assert views.lead_and_supports("Give 5 mg daily. [1] Halve it in renal impairment. [2] Stop. [3]") == (
        "Give 5 mg daily. [1]", "Halve it in renal impairment. [2] Stop. [3]")
    assert views.lead_and_supports("Give 5 mg [1][2]. Stop [3].") == ("Give 5 mg [1][2]", ". Stop [3].")
    assert views.lead_and_supports("No markers.") == ("No markers.", "")
    shown = views.lead_html("Give 5 mg. [1] Stop. [2]", views.recommendation_badge(
        {"strength": "conditional", "certainty": "low"}))
    assert shown == ('<div class="gqa-answer"><div class="gqa-lead">Give 5 mg. <span class="gqa-ref">[1]</span>'
                     '<span class="gqa-badge gqa-conditional">conditional recommendation · low certainty</span></div>'
                     '<div class="gqa-support">Stop. <span class="gqa-ref">[2]</span></div></div>')
    assert views.recommendation_badge(None) == "" and views.recommendation_badge({"strength": ""}) == ""


def test_a_paired_table_row_is_highlighted_where_its_cells_are_printed() -> None:
    page = "Table 1. Doses\nGroup | Dose\nAdults | 10 mg daily\nElderly | 5 mg daily"
    shown, found = views.highlighted(page, "Group: Elderly · Dose: 5 mg daily")
    assert found and "<mark>Elderly &#124; 5 mg daily</mark>" in shown
