"""Scanned pages (`ingest --ocr`): only pages without a text layer are read by OCR, page numbers stay true,
OCR text is marked (`ocr`) in the store, the JSON and the app; without --ocr or without the tools, one line.

Fast tests stand in for ocrmypdf with a fake that "reads" the k-th page of the PDF it is handed as the k-th
text (it never sees page numbers, so the mapping back to true page numbers is what is tested); the slow
ones run the real ocrmypdf and tesseract and skip where they are not installed.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from docgen import guide, mixed, scanned
from fakes import HashEmbedder

from cli.main import main
from ingest import ocr
from ingest.extract import PdfBytes
from ingest.pipeline import ingest
from rag.snapshot import database_path
from rag.store import Store
from rag.types import Chunk, Page, sha256_hex

QUININE = ("Scanned dosing note.", "Give quinine 10 mg per kg", "every eight hours.")
def _tools_ready() -> bool:
    """ocrmypdf and tesseract on PATH, with tesseract's English data."""
    if ocr.missing_tools():
        return False
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=False)
    return "eng" in langs.stdout.split()


needs_tools = pytest.mark.skipif(not _tools_ready(), reason=f"OCR tools missing: {ocr.INSTALL}")


def fake_ocr(monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> list[int]:
    """Replace ocrmypdf: the k-th page of the PDF it gets reads as texts[k]; returns each call's page count."""
    from pypdf import PdfReader

    calls: list[int] = []

    def run(src: Path, side: Path, name: str, scans: list[int]) -> str:
        n = len(PdfReader(src).pages)
        calls.append(n)
        return "\f".join(texts[:n]) + "\f"  # ocrmypdf may end the sidecar with a form feed

    monkeypatch.setattr(ocr, "_run_ocrmypdf", run)
    monkeypatch.setattr(ocr, "missing_tools", lambda: [])
    return calls


def with_ocr(settings):
    """`ingest --ocr`'s settings."""
    return replace(settings, ocr=True)


def stored(settings) -> tuple[list[Page], list[Chunk]]:
    store = Store(database_path(settings.home), readonly=True)
    try:
        (doc,) = store.documents()
        return store.pages(doc.doc_id), store.chunks_of(doc.doc_id)
    finally:
        store.close()


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds SentenceTransformerEmbedder: give it the HashEmbedder instead."""
    import rag.embedder

    monkeypatch.setattr(rag.embedder, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())


# --- pure helpers ---------------------------------------------------------------------------------------
def test_which_pages_need_ocr_and_how_its_text_is_cleaned() -> None:
    assert ocr.needs_ocr("") and ocr.needs_ocr(" 12 \n") and ocr.needs_ocr("Page 3 of 9")
    assert not ocr.needs_ocr("Give 5 mg daily to adults over 18.")
    assert ocr.clean("[OCR skipped on page(s) 1]Give  5 mg \n\n\n\nDaily ") == "Give 5 mg\n\nDaily"


def test_chunks_touching_an_ocr_page_are_marked() -> None:
    pages = [Page(1, "1", "a"), Page(2, "2", "b", ocr=True), Page(3, "3", "c")]
    chunks = [Chunk(f"c{i}", "d", i, first, last, str(first), "", "t") for i, (first, last)
              in enumerate([(1, 1), (1, 2), (2, 2), (2, 3), (3, 3)])]
    assert [c.ocr for c in ocr.mark_ocr(chunks, pages)] == [False, True, True, True, False]
    assert ocr.mark_ocr(chunks, [Page(1, "1", "a")]) is chunks


# --- what is read, and where it is put (fake OCR) --------------------------------------------------------
def test_only_pages_without_text_are_ocrd_and_keep_their_true_numbers(settings, hash_embedder, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = mixed(tmp_path / "acme_malaria_2024.pdf", tmp_path, "malaria", {2: ("first",), 4: ("second",)})
    calls = fake_ocr(monkeypatch, ["Scanned part one: give quinine every eight hours.",
                                   "Scanned part two: give artesunate at once."])
    report = ingest([pdf], with_ocr(settings), hash_embedder)
    assert not report.failed and calls == [2], "one OCR run over the two scanned pages only"
    pages, chunks = stored(settings)
    assert [p.ocr for p in pages] == [False, True, False, True]
    assert "part one" in pages[1].text and "part two" in pages[3].text
    assert "Scope" in pages[0].text and "Follow up part 2" in pages[2].text, "text pages keep pypdf's text"
    for c in chunks:
        assert c.ocr == (c.page <= 2 <= c.page_end or c.page <= 4 <= c.page_end), c
    assert {c.page for c in chunks if "quinine" in c.text} == {2}
    assert {c.page for c in chunks if "artesunate" in c.text} == {4}
    store = Store(database_path(settings.home), readonly=True)
    (doc,) = store.documents()
    store.close()
    assert doc.sha256 == sha256_hex(pdf.read_bytes()) and doc.doc_id == doc.sha256[:16], "the original is hashed"


def test_without_ocr_the_scan_is_refused_and_nothing_is_ocrd(settings, hash_embedder, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_ocr(monkeypatch, ["Scanned page: give 5 mg daily"])
    scan = scanned(tmp_path / "scan.pdf", tmp_path)
    report = ingest([scan], settings, hash_embedder)
    (failed,) = report.failed
    assert "no extractable text; OCR is not supported" in failed["error"] and "--ocr" in failed["error"]
    pdf = mixed(tmp_path / "acme_malaria_2024.pdf", tmp_path, "malaria", {2: QUININE})
    assert not ingest([pdf], settings, hash_embedder).failed
    pages, chunks = stored(settings)
    assert calls == [] and not any(p.ocr for p in pages) and not any(c.ocr for c in chunks)
    assert pages[1].text == "", "the scanned page stays without text"


def test_missing_tools_are_one_line_naming_the_install_command(settings, hash_embedder, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    scan = scanned(tmp_path / "scan.pdf", tmp_path)
    text = guide(tmp_path / "acme_gout_2024.pdf", "gout")
    blank = tmp_path / "blank.pdf"
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.write(blank)
    report = ingest([scan, text, blank], with_ocr(settings), hash_embedder)
    errors = {Path(e["file"]).name: e["error"] for e in report.failed}
    assert [Path(e["file"]).name for e in report.added] == [text.name], "pages with text need no tools"
    assert errors["scan.pdf"].startswith("scan.pdf: 1 page(s) have no text layer and need OCR")
    assert "ocrmypdf and tesseract are not installed" in errors["scan.pdf"] and ocr.INSTALL in errors["scan.pdf"]
    assert "\n" not in errors["scan.pdf"]
    assert "no page image to read by OCR" in errors["blank.pdf"], "a blank page is not sent to OCR"


def test_cli_ocr_flag_reaches_the_store_and_the_json(tmp_path: Path, capsys, fake_model,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ocr(monkeypatch, ["Give quinine 10 mg per kg every eight hours for severe malaria."])
    pdf = mixed(tmp_path / "acme_malaria_2024.pdf", tmp_path, "malaria", {2: QUININE})
    assert main(["ingest", str(pdf), "--ocr", "--json"]) == 0
    capsys.readouterr()
    assert main(["retrieve", "quinine every eight hours", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and all(h["ocr"] == (h["page"] <= 2 <= h["page_end"]) for h in hits)
    assert hits[0]["page"] == 2 and hits[0]["ocr"] is True
    assert main(["ask", "How often is quinine 10 mg per kg given for severe malaria?", "--json"]) == 0
    cites = json.loads(capsys.readouterr().out)["citations"]
    assert cites and any(c["ocr"] for c in cites)
    assert all(c["ocr"] == (c["page"] == 2) for c in cites)


def test_ocrmypdf_failures_are_one_line(settings, hash_embedder, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ocrmypdf on PATH that exits as the real one does without tesseract's English data."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in [("ocrmypdf", "echo 'OCR engine does not have language data for: eng' >&2; exit 3"),
                       ("tesseract", "exit 0")]:
        exe = bin_dir / tool
        exe.write_text(f"#!/bin/sh\n{body}\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    scan = scanned(tmp_path / "scan.pdf", tmp_path)
    (failed,) = ingest([scan], with_ocr(settings), hash_embedder).failed
    assert failed["error"].startswith("scan.pdf: OCR cannot run (OCR engine does not have language data")
    assert ocr.INSTALL in failed["error"] and "\n" not in failed["error"]


def test_stores_written_before_the_ocr_columns_read_and_migrate(settings, hash_embedder, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ocr(monkeypatch, ["Give quinine 10 mg per kg every eight hours."])
    ingest([mixed(tmp_path / "m.pdf", tmp_path, "malaria", {2: QUININE})], with_ocr(settings), hash_embedder)
    pages, chunks = stored(settings)
    assert any(p.ocr for p in pages) and any(c.ocr for c in chunks)
    con = sqlite3.connect(database_path(settings.home))
    con.execute("ALTER TABLE pages DROP COLUMN ocr")  # as a file from before them
    con.execute("ALTER TABLE chunks DROP COLUMN ocr")
    con.close()
    old_pages, old_chunks = stored(settings)  # a reader takes the default
    assert [p.text for p in old_pages] == [p.text for p in pages] and not any(p.ocr for p in old_pages)
    assert [c.chunk_id for c in old_chunks] == [c.chunk_id for c in chunks] and not any(c.ocr for c in old_chunks)
    Store(database_path(settings.home)).close()  # a writer adds the columns, old rows as they were read
    assert stored(settings) == (old_pages, old_chunks)


# --- the app ---------------------------------------------------------------------------------------------
def _app(qa):
    from streamlit.testing.v1 import AppTest

    from ui.services import QA_KEY

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=60)
    at.session_state[QA_KEY] = qa
    return at.run()


def _ask(at, question: str):
    at.text_input(key="question").input(question)
    return next(b for b in at.button if b.label == "Ask").click().run()


def test_citations_from_ocr_pages_carry_the_badge(settings, hash_embedder, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.qa import QA
    from ui.views import OCR_BADGE

    fake_ocr(monkeypatch, ["Give quinine 10 mg per kg every eight hours for severe malaria."])
    ingest([mixed(tmp_path / "acme_malaria_2024.pdf", tmp_path, "malaria", {2: QUININE})],
           with_ocr(settings), hash_embedder)
    at = _ask(_app(QA(settings, embedder=hash_embedder)), "How often is quinine given for severe malaria?")
    assert not at.exception
    cards = [m.value for m in at.markdown if 'class="gqa-head"' in m.value]
    assert cards and any("gqa-ocr" in c for c in cards)
    assert OCR_BADGE.split(":")[0] in "\n".join(cards)
    at = _ask(at, "What does this guideline on malaria cover in adults?")
    cards = [m.value for m in at.markdown if 'class="gqa-head"' in m.value]
    text = "\n".join(m.value for m in at.markdown)
    assert cards and "page 1" in text.lower() and not any("gqa-ocr" in c for c in cards)


def test_knowledge_page_checkbox_turns_ocr_on(settings, hash_embedder, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.qa import QA
    from ui.page_knowledge import OCR_LABEL

    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    fake_ocr(monkeypatch, ["Scanned page: give 5 mg daily"])
    scan = scanned(tmp_path / "in" / "scan.pdf", tmp_path)
    at = _app(QA(settings, embedder=hash_embedder)).switch_page("page_knowledge.py").run()
    at.text_input(key="admin_token").input("tok")
    at = at.run()
    at.text_input(key="folder-path").input(str(scan))
    submit = next(b for b in at.button if b.label == "Ingest from the server")
    at = submit.click().run()
    assert {m.label: m.value for m in at.metric}["Failed"] == "1"
    box = at.checkbox(key="folder-ocr")
    assert box.label == OCR_LABEL
    box.check()
    at = next(b for b in at.button if b.label == "Ingest from the server").click().run()
    assert {m.label: m.value for m in at.metric}["Added"] == "1"
    pages, _ = stored(settings)
    assert [p.ocr for p in pages] == [True]


# --- the real tools ---------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_tools
def test_tesseract_reads_a_scanned_page(settings, hash_embedder, tmp_path: Path) -> None:
    scan = scanned(tmp_path / "acme_quinine_2024.pdf", tmp_path, QUININE)
    report = ingest([scan], with_ocr(settings), hash_embedder)
    assert not report.failed, report.failed
    pages, chunks = stored(settings)
    words = " ".join(c.text for c in chunks).lower()
    assert all(w in words for w in ("quinine", "every", "eight", "hours")), words
    assert [p.ocr for p in pages] == [True] and all(c.ocr and c.page == 1 for c in chunks)


@pytest.mark.slow
@needs_tools
def test_a_mixed_document_keeps_its_page_numbers(settings, hash_embedder, tmp_path: Path) -> None:
    pdf = mixed(tmp_path / "acme_malaria_2024.pdf", tmp_path, "malaria", {2: QUININE})
    report = ingest([pdf], with_ocr(settings), hash_embedder)
    assert not report.failed, report.failed
    pages, chunks = stored(settings)
    assert [p.number for p in pages] == [1, 2, 3] and [p.ocr for p in pages] == [False, True, False]
    assert "quinine" in pages[1].text.lower() and "quinine" not in pages[0].text + pages[2].text
    assert {c.page for c in chunks if "quinine" in c.text.lower()} == {2}
    assert {c.page for c in chunks if "Follow up part 2" in c.text} == {3}
    assert all(c.ocr == (c.page <= 2 <= c.page_end) for c in chunks)


@pytest.mark.slow
@needs_tools
def test_a_scan_with_nothing_on_it_is_one_line(tmp_path: Path) -> None:
    from ingest.extract import BadDocument

    blank = scanned(tmp_path / "blank_scan.pdf", tmp_path, ())
    with pytest.raises(BadDocument) as info:
        ocr.extract_with_ocr(PdfBytes(blank.name, blank.read_bytes()))
    assert str(info.value).startswith("blank_scan.pdf: no extractable text, not even by OCR of its 1 scanned")
