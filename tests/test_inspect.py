"""`guideline-qa inspect`: pages with their labels and dropped running lines, chunks with kind and fields;
the store keeping the dropped lines; the knowledge page's view of one page; the benchmark's counts."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest
from fakes import HashEmbedder
from render_demo import DocSpec, Heading, PageBreak, Paragraph, Table, printed_page_label, render_pdf

from cli.main import main
from ingest.extract import extract_pdf, split_running_lines, strip_running_lines
from ingest.pipeline import ingest
from rag.snapshot import database_path
from rag.store import Store
from rag.types import Chunk, Page

ROOT = Path(__file__).resolve().parents[1]
HEADER = "Acme Anticoagulation Guideline 2024 | Internal"
FOOTER = "Acme Health - do not copy"
TEXTS = {  # one sentence of its own per page: the only text that differs from page to page is not a number
    1: "This guideline covers warfarin therapy in adults with atrial fibrillation.",
    2: "Check the international normalised ratio weekly until it is stable.",
    3: "Stop warfarin five days before planned surgery and bridge where needed.",
}


def spec(title: str = "Acme warfarin guideline") -> DocSpec:
    """Three pages under a running header and footer: a front page printed 'i', then pages '1' and '2'."""
    blocks = [Heading("1", "Scope"), Paragraph(TEXTS[1]), Heading("2", "Dosing"),
              Table("Table 1. Warfarin starting doses", ["Group", "Dose"],
                    [["Adults", "5 mg daily"], ["Elderly", "2 mg daily"]]),
              PageBreak(), Heading("3", "Monitoring"), Paragraph(TEXTS[2]),
              PageBreak(), Heading("4", "Stopping"), Paragraph(TEXTS[3])]
    return DocSpec(title=title, blocks=blocks, header_text=HEADER, footer_text=FOOTER, page_label_offset=1)


def running(n: int) -> tuple[str, str]:
    """What page n prints as header and footer (from the spec, not from the code under test)."""
    return HEADER, f"{FOOTER} | Page {printed_page_label(n, 1)}"


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return render_pdf(tmp_path / "src" / "acme_warfarin_2024.pdf", spec())


@pytest.fixture
def home(pdf: Path, settings) -> Path:
    report = ingest([pdf], settings, HashEmbedder())
    assert not report.failed, report.failed
    return settings.home


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def inspect_json(argv: list[str], capsys: pytest.CaptureFixture) -> dict:
    code, out, err = run(["inspect", *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


# --- what was dropped ------------------------------------------------------------------------------------
def test_split_running_lines_gives_the_dropped_lines_and_strip_keeps_its_answer() -> None:
    pages = ["Hdr\nA\nPage 1", "Hdr\nB\nPage 2"]
    assert split_running_lines(pages) == (["A", "B"], [("Hdr", "Page 1"), ("Hdr", "Page 2")])
    assert strip_running_lines(pages) == ["A", "B"]
    assert split_running_lines(["Only page\nText"]) == (["Only page\nText"], [()])
    assert split_running_lines(["A\nmild case", "B\nvivid case"])[1] == [(), ()]


def test_extract_records_each_page_s_header_and_footer_as_dropped(pdf: Path) -> None:
    pages = extract_pdf(pdf).pages
    assert [p.dropped for p in pages] == [running(n) for n in (1, 2, 3)]
    for p in pages:
        assert TEXTS[p.number] in " ".join(p.text.split())
        assert not any(line in p.text for line in p.dropped)


def test_the_store_keeps_the_dropped_lines(home: Path, pdf: Path) -> None:
    store = Store(database_path(home), readonly=True)
    try:
        (doc,) = store.documents()
        assert [p.dropped for p in store.pages(doc.doc_id)] == [p.dropped for p in extract_pdf(pdf).pages]
        assert [p.dropped for p in store.pages(doc.doc_id)] == [running(n) for n in (1, 2, 3)]
        assert store.dropped_recorded(doc.doc_id)
    finally:
        store.close()


def test_a_file_written_before_the_dropped_column_reads_none_recorded_and_gets_it(home: Path, capsys) -> None:
    store = Store(database_path(home), readonly=True)
    (doc,) = store.documents()
    texts = [p.text for p in store.pages(doc.doc_id)]
    store.close()
    con = sqlite3.connect(database_path(home))
    con.execute("ALTER TABLE pages DROP COLUMN dropped")  # as a file from before the column
    con.close()
    old = Store(database_path(home), readonly=True)  # a reader does not add it
    try:
        assert [p.text for p in old.pages(doc.doc_id)] == texts and not any(p.dropped for p in old.pages(doc.doc_id))
        assert not old.dropped_recorded(doc.doc_id)
    finally:
        old.close()
    out = inspect_json([doc.file_name], capsys)
    assert [p["dropped"] for p in out["pages"]] == [None, None, None]
    Store(database_path(home)).close()  # a writer adds it: the old rows stay not recorded
    con = sqlite3.connect(database_path(home))
    assert con.execute("SELECT DISTINCT dropped FROM pages").fetchall() == [("",)]
    con.close()
    code, text, _ = run(["inspect", doc.file_name, "--page", "2"], capsys)
    assert code == 0 and "dropped: not recorded" in text


# --- the command -----------------------------------------------------------------------------------------
def test_inspect_json_shows_the_document_its_pages_and_its_chunks_in_order(home: Path, capsys) -> None:
    from ingest.chunk import CHUNKER_VERSION

    store = Store(database_path(home), readonly=True)
    (doc,) = store.documents()
    chunks = store.chunks_of(doc.doc_id)
    store.close()
    out = inspect_json([doc.doc_id], capsys)
    assert out["document"] == {
        "file": "acme_warfarin_2024.pdf", "doc_id": doc.doc_id, "title": doc.title, "family": "acme-warfarin",
        "version": "2024", "type": doc.doc_type, "status": "current", "superseded_by": None, "ingested": True,
        "cut": 0, "chunker": CHUNKER_VERSION, "outdated": False, "pages": 3, "chunks": len(chunks)}
    assert [(p["number"], p["label"], p["ocr"], p["dropped"]) for p in out["pages"]] == [
        (n, printed_page_label(n, 1), False, list(running(n))) for n in (1, 2, 3)]
    listed = [c for p in out["pages"] for c in p["chunks"]]
    assert [c["chunk_id"] for c in listed] == [c.chunk_id for c in chunks]
    assert all(c["page"] == p["number"] for p in out["pages"] for c in p["chunks"])
    assert {c["kind"] for c in listed} == {"text", "table_row"}
    table = next(c for c in listed if c["kind"] == "table_row")
    assert "Group: Adults · Dose: 5 mg daily" in table["text"] and table["section"] == "2 Dosing"
    assert set(table) >= {"starts_mid", "ends_mid", "page_end", "table", "recommendation"}
    assert [c["section"] for c in out["pages"][2]["chunks"]] == ["4 Stopping"]
    assert inspect_json([doc.file_name, "--page", "2"], capsys)["pages"] == [out["pages"][1]]


def test_inspect_text_names_the_document_each_page_its_dropped_lines_and_chunks(home: Path, capsys) -> None:
    code, text, _ = run(["inspect", "acme_warfarin_2024.pdf"], capsys)
    assert code == 0
    assert "family acme-warfarin · version 2024 · current" in text and "cut 0 · chunker" in text
    for n in (1, 2, 3):
        assert f"page {n} (printed {printed_page_label(n, 1)})" in text
        assert f"dropped: {running(n)[0]!r} / {running(n)[1]!r}" in text
    assert "table_row p.1  2 Dosing" in text and "Elderly | 2 mg daily" in text
    code, one, _ = run(["inspect", "acme_warfarin_2024.pdf", "--page", "3"], capsys)
    assert code == 0 and "page 3 (printed 2)" in one and "page 2 " not in one and TEXTS[3][:30] in one


def test_inspect_shows_table_cells_and_recommendation_fields_where_chunks_have_them() -> None:
    from cli.inspect_cmd import describe
    from ingest.inspection import report

    row = Chunk("c0", "d", 0, 1, 1, "1", "2 Dosing", "Table 1. Doses\nGroup | Dose\n\nAdults | 5 mg", "table",
                fields=json.dumps({"table": {"caption": "Table 1. Doses", "header": ["Group", "Dose"],
                                             "cells": ["Adults", "5 mg"]}}))
    rec = Chunk("c1", "d", 1, 1, 2, "1", "3 Nets", "Strong recommendation for ... Nets (2019) ...", "recommendation",
                ends_mid=True, fields=json.dumps({"recommendation": {"strength": "strong for", "certainty": "high",
                                                                     "year": "2019"}}))
    head = {"file": "a.pdf", "doc_id": "d", "title": "A", "family": "a", "version": "1", "type": "guideline",
            "status": "current", "ingested": True, "cut": 0, "chunker": 1, "outdated": True}
    out = report(head, [Page(1, "1", "x", dropped=("Hdr",)), Page(2, "2", "y")], [row, rec])
    [p1, p2] = out["pages"]
    assert p1["chunks"][0]["table"] == {"caption": "Table 1. Doses", "header": ["Group", "Dose"],
                                        "cells": ["Adults", "5 mg"]}
    assert p1["chunks"][1]["recommendation"]["strength"] == "strong for" and p2["chunks"] == []
    text = describe(out)
    assert "header: Group | Dose" in text and "cells: Adults | 5 mg" in text
    assert "#1 recommendation p.1-2 [ends mid]  3 Nets" in text
    assert "strength: strong for, certainty: high, year: 2019" in text
    assert "`guideline-qa reindex` re-cuts it" in text and "no chunk starts on this page" in text


def test_a_pdf_not_ingested_is_read_in_memory_as_ingest_would_cut_it(pdf: Path, settings, tmp_path: Path,
                                                                     capsys) -> None:
    out = inspect_json([str(pdf)], capsys)
    assert not database_path(settings.home).exists(), "nothing is written"
    d = out["document"]
    assert (d["status"], d["ingested"], d["cut"], d["family"], d["version"]) == (
        "not ingested", False, None, "acme-warfarin", "2024")
    assert [p["dropped"] for p in out["pages"]] == [list(running(n)) for n in (1, 2, 3)]
    other = settings.__class__.from_env(home=tmp_path / "other")
    ingest([pdf], other, HashEmbedder())  # a small document: every unit fits, whichever counter cuts it
    store = Store(database_path(other.home), readonly=True)
    (doc,) = store.documents()
    stored = [(c.kind, c.section, c.page, c.text) for c in store.chunks_of(doc.doc_id)]
    store.close()
    kinds = {"table_row": "table"}
    assert [(kinds.get(c["kind"], c["kind"]), c["section"], c["page"], c["text"])
            for p in out["pages"] for c in p["chunks"]] == stored
    ingest([pdf], settings, HashEmbedder())  # once ingested, the same bytes are shown as stored
    assert inspect_json([str(pdf)], capsys)["document"]["ingested"] is True


@pytest.mark.slow
def test_the_in_memory_token_counter_counts_as_the_embedder(real_embedder, pdf: Path) -> None:
    from ingest.inspection import token_counter
    from rag.config import Settings

    texts = [p.text for p in extract_pdf(pdf).pages] + ["Dihydroartemisinin–piperaquine ≥ 35 kg: 80 + 480 mg"]
    assert token_counter(Settings.from_env().embed_model)(texts) == real_embedder.count_tokens(texts)


@pytest.mark.parametrize("argv, says", [
    (["nope.pdf"], "no document 'nope.pdf'"),
    (["acme_warfarin_2024.pdf", "--page", "4"], "--page 4: acme_warfarin_2024.pdf has 3 pages (1 to 3)"),
    (["acme_warfarin_2024.pdf", "--page", "0"], "--page 0: acme_warfarin_2024.pdf has 3 pages"),
])
def test_an_unknown_document_or_a_page_out_of_range_is_one_line_and_exit_1(home: Path, capsys, argv, says) -> None:
    code, out, err = run(["inspect", *argv], capsys)
    assert code == 1 and out == "" and says in err and err.count("\n") == 1


def test_nothing_ingested_or_a_broken_pdf_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    code, _, err = run(["inspect", "acme.pdf"], capsys)
    assert code == 1 and "nothing is ingested" in err and err.count("\n") == 1
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 not really")
    code, _, err = run(["inspect", str(bad)], capsys)
    assert code == 1 and "broken.pdf: corrupt or truncated PDF" in err and err.count("\n") == 1


# --- the knowledge-team page -----------------------------------------------------------------------------
def test_the_knowledge_page_shows_a_chosen_document_s_page(home: Path, settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import html
    import re

    from streamlit.testing.v1 import AppTest

    from rag.qa import QA
    from ui.services import QA_KEY

    other = render_pdf(tmp_path / "src" / "acme_gout_2023.pdf", spec("Acme gout guideline"))
    ingest([other], settings, HashEmbedder())
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.session_state[QA_KEY] = QA(settings, embedder=HashEmbedder())
    at = at.run().switch_page("page_knowledge.py").run()
    at.text_input(key="admin_token").input("tok")
    at = at.run()

    def shown(at) -> str:
        assert not at.exception and not at.error, [e.value for e in at.error]
        return html.unescape(re.sub(r"<[^>]+>", " ", "\n".join(m.value for m in at.markdown)))

    box = at.selectbox(key="inspect-doc")
    store = Store(database_path(home), readonly=True)
    ids = {d.file_name: d.doc_id for d in store.documents()}
    store.close()
    assert sorted(box.options) == ["acme_gout_2023.pdf (version 2023, current)",
                                   "acme_warfarin_2024.pdf (version 2024, current)"]
    at = box.select(ids["acme_warfarin_2024.pdf"]).run()
    page = shown(at)
    assert "PDF page 1 (printed page i)" in page and "table_row" in page and "Group: Adults · Dose: 5 mg daily" in page
    assert f"Dropped as running header or footer:  {running(1)[0]}" in page and running(1)[1] in page
    assert "Acme warfarin guideline" in page
    at = at.number_input(key=f"inspect-page-{ids['acme_warfarin_2024.pdf']}").set_value(3).run()
    page = shown(at)
    assert "PDF page 3 (printed page 2)" in page and TEXTS[3][:30] in page and "table_row" not in page
    assert running(3)[1] in page and "Section 4 Stopping" in page


def test_a_chunk_on_the_page_shows_its_kind_fields_and_text_escaped() -> None:
    from ui.inspection import chunk_html, dropped_html

    c = {"ordinal": 4, "kind": "recommendation", "section": "3 Nets", "page": 2, "page_end": 3, "starts_mid": True,
         "ends_mid": False, "ocr": False, "table": {"caption": "Table 1", "header": ["Group", "Dose"],
                                                   "cells": ["Adults", "5 mg"]},
         "recommendation": {"year": "2019", "strength": "conditional against"},
         "text": "Give <script>alert(1)</script> **now**"}
    shown = chunk_html(c)
    assert 'class="gqa-kind gqa-kind-recommendation">recommendation</span>' in shown
    assert "<script>" not in shown and "**" not in shown and "&#60;script&#62;" in shown
    assert "Header: Group &#124; Dose" in shown and "Cells: Adults &#124; 5 mg" in shown
    assert shown.index("Strength: conditional against") < shown.index("Year: 2019")
    assert "p. 2-3" in shown and "starts mid-sentence" in shown and "ends mid" not in shown
    assert "none" in dropped_html([]) and "not recorded" in dropped_html(None)
    assert "&#60;b&#62;" in dropped_html(["<b>Header</b>"])


# --- the benchmark's counts ------------------------------------------------------------------------------
def _bench():
    spec_ = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


def test_bench_counts_tables_matching_rows_records_warnings_and_ocr_pages() -> None:
    counts = _bench().document_counts
    head = "Table 1. Doses\nGroup | Dose"
    chunks = [
        Chunk("a", "d", 0, 1, 1, "1", "", f"{head}\n\nAdults | 5 mg\nChildren | 2 mg\nwrapped", "table"),
        Chunk("b", "d", 1, 2, 2, "2", "", f"{head}\n\nElderly | 1 mg | extra", "table"),  # the same table, on
        Chunk("c", "d", 2, 2, 2, "2", "", "Table 2. Bands\n\nAge | Weight | Dose", "table"),  # a header-only table
        Chunk("e", "d", 3, 3, 3, "3", "", "Table 2. Bands\n\nx", "table",
              fields=json.dumps({"table": {"caption": "Table 3. Renal", "header": ["eGFR", "Dose"],
                                           "cells": ["< 30", "half"]}})),
        Chunk("f", "d", 4, 3, 3, "3", "", "Strong recommendation for ...", "recommendation"),
        Chunk("g", "d", 5, 3, 3, "3", "", "WARNING: BLEEDING", "boxed_warning"),
        Chunk("h", "d", 6, 3, 3, "3", "", "Prose.", "text"),
    ]
    pages = [Page(1, "1", "a"), Page(2, "2", "b", ocr=True), Page(3, "3", "c")]
    assert counts(chunks, pages) == {
        "pages": 3, "chunks": 7, "tables": 3, "table rows": 6, "rows matching header": 3,
        "recommendations": 1, "boxed warnings": 1, "OCR pages": 1}


def test_bench_counts_only_reads_a_home_without_writing_to_it(home: Path, capsys) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in home.rglob("*"))
    assert _bench().main(["--counts-only", str(home)]) == 0
    table = capsys.readouterr().out
    assert "| acme_warfarin_2024.pdf | 3 |" in table and "| **total** | 3 |" in table
    assert sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in home.rglob("*")) == before
