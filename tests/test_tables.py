"""Tables as rows and columns: grids found by position, multi-row headers merged into one label per column,
each row's cells paired with their labels, a table continued on the next page keeping its header, and the
citation check that accepts a paired row only where the page prints it."""

from __future__ import annotations

import json
from pathlib import Path

from docgen import grid_table
from test_extract_chunk import chunks_of

from ingest import tables
from rag import pages
from rag.text import is_verbatim
from rag.verify import table_parts

HEADER = [["Body weight", "Dose (mg) of drug"], ["(kg)", "given daily for 3 days"]]
LABELS = ["Body weight (kg)", "Dose (mg) of drug given daily for 3 days"]
ROWS = [["5 to < 15", "20 + 120"], ["15 to < 25", "40 + 240"], ["25 to < 35", "60 + 360"],
        [">= 35", "80 + 480"], [">= 50", "90 + 500"]]


def paired(row: list[str]) -> str:
    return f"{LABELS[0]}: {row[0]} · {LABELS[1]}: {row[1]}"


def table_chunks(pdf: Path, hash_embedder):
    ext, chunks = chunks_of(pdf, hash_embedder)
    return ext, [c for c in chunks if c.kind == "table"]


def test_a_two_row_header_is_merged_and_each_cell_paired_with_its_label(tmp_path: Path, hash_embedder) -> None:
    ext, found = table_chunks(grid_table(tmp_path / "grid.pdf", HEADER, ROWS), hash_embedder)
    [chunk] = found
    head, rows = table_parts(chunk.text)
    assert head == [" | ".join(LABELS)]  # the header read column by column, top to bottom
    assert rows == [paired(r) for r in ROWS]
    assert json.loads(chunk.fields)["table"] == {"caption": "", "header": LABELS, "cells": ROWS}
    # every row, as the answerer quotes it, passes the verbatim check against its page
    page = ext.pages[0].text
    assert all(is_verbatim(r, page) for r in rows)
    # and the source view finds its cells where they are printed
    spans = pages.locate(page, rows[2])
    assert [page[s:e] for s, e in spans] == ["25 to < 35", "60 + 360"]


def test_the_line_naming_an_uncaptioned_table_is_its_caption(tmp_path: Path, hash_embedder) -> None:
    title = "Warfarin Sodium Single-Scored Tablets, USP"
    _, [chunk] = table_chunks(grid_table(tmp_path / "grid.pdf", HEADER, ROWS, title=title), hash_embedder)
    assert table_parts(chunk.text)[0] == [title, " | ".join(LABELS)]
    assert json.loads(chunk.fields)["table"]["caption"] == title


def test_a_table_continued_overleaf_keeps_its_header_there(tmp_path: Path, hash_embedder) -> None:
    ext, found = table_chunks(grid_table(tmp_path / "grid.pdf", HEADER, ROWS, per_page=2), hash_embedder)
    assert [c.page for c in found] == [1, 2]  # a table's chunk keeps to its page
    for chunk, body in zip(found, (ROWS[:2], ROWS[2:]), strict=True):
        head, rows = table_parts(chunk.text)
        assert head == [" | ".join(LABELS)]
        assert rows == [paired(r) for r in body]  # the header printed again is not a row
        assert all(is_verbatim(r, ext.pages[chunk.page - 1].text) for r in rows)


def test_rows_opening_the_next_page_without_a_header_take_the_header_from_before(tmp_path: Path,
                                                                                 hash_embedder) -> None:
    pdf = grid_table(tmp_path / "grid.pdf", HEADER, ROWS, per_page=2, repeat_header=False)
    _, found = table_chunks(pdf, hash_embedder)
    assert [c.page for c in found] == [1, 2]
    head, rows = table_parts(found[1].text)
    assert head == [" | ".join(LABELS)]
    assert rows == [paired(r) for r in ROWS[2:]]
    assert json.loads(found[1].fields)["table"]["header"] == LABELS


def test_a_paired_row_is_verbatim_only_as_the_page_prints_it() -> None:
    page = "Body weight | Dose (mg) of drug\n(kg) | given daily for 3 days\n5 to < 15 | 20 + 120\n15 to < 25 | 40 + 240"
    assert is_verbatim(paired(["15 to < 25", "40 + 240"]), page)
    # a band with another band's dose, a dose not printed, a label not on the page
    assert not is_verbatim(paired(["5 to < 15", "40 + 240"]), page)
    assert not is_verbatim(paired(["5 to < 15", "30 + 120"]), page)
    assert not is_verbatim("Age (years): 5 to < 15 · Dose (mg) of drug: 20 + 120", page)


def test_header_rows_merge_column_by_column_and_a_short_row_fills_the_right() -> None:
    assert tables.split_header([["Age", "Weight"], ["(years)", "(kg)"], ["2 to 5", "10"]]) == (
        2, ["Age (years)", "Weight (kg)"])
    assert tables.split_header([["Body weight (kg)", "Single dose of"], ["primaquine (mg base)"],
                                ["10 to < 25", "3.75"]]) == (2, ["Body weight (kg)",
                                                                 "Single dose of primaquine (mg base)"])
    assert tables.split_header([["Drug", "Dose"], ["Amoxicillin", "500 mg"]]) == (1, ["Drug", "Dose"])
    assert tables.split_header([["5 to < 9", "25 + 55"], ["9 to < 18", "50 + 110"]]) == (0, [])  # no header
    # a medicine and its form, a sentence: not labels (a label with ': ' would also misread the paired row)
    assert tables.split_header([["dexamethasone", "Injection: 4 mg/mL."], ["Vitamin A", "800 micrograms"]]) == (0, [])
    assert tables.pair(["Drug", "Dose"], ["Amoxicillin", "500 mg", "daily"]) == "Amoxicillin | 500 mg | daily"


def test_grids_are_replaced_in_the_page_text_only_where_their_cells_are_printed_whole() -> None:
    rows = [["Body weight", "Dose (mg)"], ["(kg)", "daily"], ["5 to < 15", "20 + 120"], ["≥ 35", "80 + 480"]]
    grid = (rows, [c for r in rows for c in r])
    # pypdf's plain text gives the header cell by cell, the rows across
    plain = "apart.\nBody weight\n(kg)\nDose (mg)\ndaily\n5 to < 15 20 + 120\n≥ 35 80 + 480\nFactors:"
    assert tables.mark_cells(plain, [grid]).split("\n") == [
        "apart.", "Body weight | Dose (mg)", "(kg) | daily", "5 to < 15 | 20 + 120", "≥ 35 | 80 + 480", "Factors:"]
    # a line that is not made of the grid's cells leaves the page as it was
    assert tables.mark_cells(plain.replace("80 + 480", "80 + 490"), [grid]) == plain.replace("80 + 480", "80 + 490")
    assert tables.grids([["Weight", "Dose"], ["(kg)"], ["5", "20 mg"], ["8", "30 mg"], ["10", "40 mg"],
                         ["A sentence of prose here."]]) == [(0, 5)]
    prose = [["the left column of prose runs on here", "and the right column of prose runs on too"]] * 4
    formulary = [["atropine", "Injection: 1 mg in 1 mL ampoule."], ["naloxone", "Injection: 400 micrograms."]] * 2
    index = [["abacavir ........ 19", "betamethasone ........ 42"]] * 4
    contents = [["1. Introduction", "1"], ["1.1 Methods", "3"], ["2. Background", "7"]]
    assert tables.grids(prose) == tables.grids(formulary) == tables.grids(index) == tables.grids(contents) == []


def test_one_text_block_printing_a_row_is_cut_into_cells(tmp_path: Path) -> None:
    """pypdf joins the shows of one BT block on one line into one run; wide gaps between them part cells."""
    from pypdf import PdfReader

    from ingest import drawing

    stream = b"BT /F1 10 Tf 72 700 Td (5 to < 8) Tj 150 0 Td (20 + 160) Tj 0 -14 Td (mg daily) Tj ET"
    pdf = _raw_pdf(tmp_path / "bt.pdf", stream)
    runs, _ = drawing.runs_and_boxes(PdfReader(pdf).pages[0])
    assert [(r.text.strip(), round(r.x0)) for r in runs] == [("5 to < 8", 72), ("20 + 160", 222), ("mg daily", 222)]


def _raw_pdf(dst: Path, stream: bytes) -> Path:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    dst.write_bytes(bytes(out))
    return dst


def test_a_grid_under_a_sentence_carried_over_the_page_break_is_read() -> None:
    """The sentence the page before left open runs on above the grid: that line is no table title."""
    from ingest.chunk import page_units
    from rag.types import Page

    pages = [Page(1, "1", "Give the dose that the band"), Page(2, "2", "below names\n5 to < 15 | 20 + 120\n"
                                                            "15 to < 25 | 40 + 240\n25 to < 35 | 60 + 360")]
    units = page_units(pages)
    assert [u.kind for u in units] == ["text", "table", "table", "table"]
    assert units[0].text == "Give the dose that the band below names" and not units[1].caption


def test_a_continued_tables_row_is_verified_by_its_cells_under_the_stored_header() -> None:
    from rag.text import is_verbatim, paired_row, row_on_page

    quote = paired_row(["Body weight (kg)", "Dose (mg)"], ["25 to < 36", "80 + 640"])
    overleaf = "Dose continued\n25 to < 36 | 80 + 640\n36 to < 75 | 120 + 960"  # no header reprinted
    assert not is_verbatim(quote, overleaf)
    assert row_on_page(quote, overleaf, ["Body weight (kg)", "Dose (mg)"])
    assert not row_on_page(quote, overleaf, ["Age (years)", "Dose (mg)"])  # labels of another table
    assert not row_on_page(quote, "25 to < 36 | 60 + 480", ["Body weight (kg)", "Dose (mg)"])  # other cells
