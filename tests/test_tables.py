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


def _ruled_table(tmp_path: Path, thickness: float = 0.0, columns: int = 3) -> Path:
    """A table drawn as FDA labels draw it: each cell's four edges a rectangle of no thickness, two of its
    cells wrapping over two lines."""
    xs, ys = [72, 200, 330, 460][:columns + 1], [700, 670, 610]
    edges = []
    for top, bottom in zip(ys, ys[1:], strict=False):
        for left, right in zip(xs, xs[1:], strict=False):
            width, height = right - left, top - bottom
            edges += [f"{left} {bottom} {width} {thickness} re", f"{left} {top} {width} {thickness} re",
                      f"{left} {bottom} {thickness} {height} re", f"{right} {bottom} {thickness} {height} re"]
    texts = [(75, 685, "Infection"), (203, 685, "Adult dose"), (333, 685, "Child dose"),
             (75, 650, "Lower respiratory"), (75, 638, "tract"), (203, 650, "875 mg every"), (203, 638, "12 hours"),
             (333, 650, "45 mg/kg/day"), (333, 638, "every 12 hours")]
    texts = [t for t in texts if t[0] < xs[-1]]
    shows = " ".join(f"BT /F1 10 Tf {x} {y} Td ({s}) Tj ET" for x, y, s in texts)
    return _raw_pdf(tmp_path / "ruled.pdf", (" ".join(edges) + " f " + shows).encode())


def test_a_table_drawn_with_rules_is_read_by_its_cells(tmp_path: Path) -> None:
    """Cells that wrap over lines come out whole, each row one line: the gap reader would read 'tract' and
    '12 hours' as rows of their own."""
    from pypdf import PdfReader

    from ingest import drawing, layout

    page = PdfReader(_ruled_table(tmp_path)).pages[0]
    runs, _ = drawing.runs_and_boxes(page)
    cells = drawing.ruled_cells(page)
    assert len(cells) == 6
    (rows, pieces), = tables.ruled_grids(runs, cells)
    assert rows == [["Infection", "Adult dose", "Child dose"],
                    ["Lower respiratory tract", "875 mg every 12 hours", "45 mg/kg/day every 12 hours"]]
    text, _ = layout.read_page(page, page.extract_text())
    assert "Lower respiratory tract | 875 mg every 12 hours | 45 mg/kg/day every 12 hours" in text.split("\n")
    # thin bars (shading, underlines) rule no cells; a table of two columns is left to the gap reader
    assert drawing.ruled_cells(PdfReader(_ruled_table(tmp_path, thickness=1.0)).pages[0]) == []
    two = PdfReader(_ruled_table(tmp_path, columns=2)).pages[0]
    assert tables.ruled_grids(drawing.runs_and_boxes(two)[0], drawing.ruled_cells(two)) == []


def test_a_merged_cell_is_one_cell_given_in_each_row_it_spans(tmp_path: Path) -> None:
    from ingest.drawing import Run

    # a 3 x 3 grid whose first column's two lower boxes are one cell (no rule between them)
    cells = [(0, 60, 100, 90, (0, 1, 0, 1)), (100, 60, 200, 90, (1, 2, 0, 1)), (200, 60, 300, 90, (2, 3, 0, 1)),
             (0, 0, 100, 60, (0, 1, 1, 3)), (100, 30, 200, 60, (1, 2, 1, 2)), (200, 30, 300, 60, (2, 3, 1, 2)),
             (100, 0, 200, 30, (1, 2, 2, 3)), (200, 0, 300, 30, (2, 3, 2, 3))]
    runs = [Run(5, 60, 75, 8, "Site"), Run(105, 160, 75, 8, "Severity"), Run(205, 260, 75, 8, "Dose"),
            Run(5, 60, 40, 8, "Ear"), Run(105, 160, 45, 8, "Mild"), Run(205, 260, 45, 8, "500 mg"),
            Run(105, 160, 15, 8, "Severe"), Run(205, 260, 15, 8, "875 mg"), Run(205, 260, 5, 8, "twice")]
    (rows, _), = tables.ruled_grids(runs, cells)
    assert rows == [["Site", "Severity", "Dose"], ["Ear", "Mild", "500 mg"], ["Ear", "Severe", "875 mg twice"]]
    # text run across a rule: not read as this grid
    assert tables.ruled_grids([*runs, Run(90, 140, 45, 8, "across")], cells) == []


def test_a_wrapped_caption_goes_on_and_a_row_with_an_empty_cell_keeps_the_carried_header() -> None:
    """Table 1's caption wraps onto a second line; overleaf, the row a page break cut has an empty cell."""
    from ingest.chunk import page_units
    from rag.types import Page

    first = ("Table 1. Dosing Recommendations for Adult and Pediatric Patients > 3\nMonths of Age\n\n"
             "Infection | Severity | Adult Dose | Child Dose\n\nEar | Mild | 500 mg every 12 hours | 25 mg/kg/day")
    overleaf = "Ear | 250 mg every 8 hours | 20 mg/kg/day\n\nLung | Severe | 875 mg every 12 hours | 45 mg/kg/day"
    units = [u for u in page_units([Page(1, "1", first), Page(2, "2", overleaf)]) if u.kind == "table"]
    assert units[0].caption.endswith("Months of Age")
    assert all(u.header == ("Infection", "Severity", "Adult Dose", "Child Dose") for u in units)
    assert units[-1].text.startswith("Infection: Lung · Severity: Severe")
    assert units[-2].text == "Ear | 250 mg every 8 hours | 20 mg/kg/day"  # fewer cells: as printed
