"""The page as printed: rendering, locating a quote with PDFium's text page, the highlight, the cache, `page`.

Where a highlight should be is asked of PDFium independently of rag.pages: its own search finds the
quote's first and last words, and the character boxes between them, flipped into pixels at the render
scale, are the boxes the tint must fall in.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, needs_corpus
from render_demo import DocSpec, Heading, Paragraph, Table, render_pdf

from cli.main import main
from rag import pages
from rag.errors import ConfigError
from rag.pages import DEFAULT_DPI, HIGHLIGHT_ALPHA, HIGHLIGHT_RGB, PageCache, render_page

ONE_LINE = "Review the INR after three days."
TWO_LINES = ("Give warfarin at the lowest dose that keeps the international normalised ratio within the target range "
             "and review the dose after every change in concomitant medicines.")
ROW = "Elderly | warfarin 5 mg daily"
# The tint over white paper; text under it is darker, so only paper is counted.
TINT = np.array([round(255 + HIGHLIGHT_ALPHA * (c - 255)) for c in HIGHLIGHT_RGB])
MARGIN = math.ceil(pages.PAD_PT * DEFAULT_DPI / 72) + 3  # px: the drawn padding, and rounding


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    """One page: a one-line sentence, a sentence over two lines, a two-row table."""
    blocks = [Heading("1", "Dosing"), Paragraph(f"{ONE_LINE} {TWO_LINES} Last one."),
              Table("Table 1. Doses", ["Group", "Dose"], [["Adults", "warfarin 10 mg daily"], ["Elderly", ROW[10:]]])]
    return render_pdf(tmp_path / "warfarin_guide.pdf", DocSpec(title="Guideline on warfarin", blocks=blocks))


def tinted(png: bytes) -> np.ndarray:
    """A boolean mask of the pixels in the highlight colour."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return np.all(np.abs(rgb - TINT) <= 2, axis=2)


def pdfium_lines(path: Path, page: int, first: str, last: str, dpi: int = DEFAULT_DPI) -> list[tuple]:
    """Pixel boxes (left, top, right, bottom), one a printed line, of the text from `first` to `last`."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    doc = pdfium.PdfDocument(str(path))
    p = doc[page - 1]
    assert p.get_rotation() == 0
    text = p.get_textpage()
    start, _ = text.search(first, match_case=True).get_next()
    end, count = text.search(last, index=start, match_case=True).get_next()
    scale, height = dpi / 72, p.get_height()
    boxes = []
    for i in range(start, end + count):
        if chr(pdfium_c.FPDFText_GetUnicode(text, i)).isspace():  # U+0002, a hyphen at a line end, is printed
            continue
        left, bottom, right, top = text.get_charbox(i, loose=True)
        boxes.append((left * scale, (height - top) * scale, right * scale, (height - bottom) * scale))
    doc.close()
    lines: list[list[tuple]] = []
    for b in sorted(boxes, key=lambda b: b[1] + b[3]):  # characters of one line share their middle (4 pt)
        if lines and (b[1] + b[3]) - (lines[-1][-1][1] + lines[-1][-1][3]) < 8 * scale:
            lines[-1].append(b)
        else:
            lines.append([b])
    return [(min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
            for bs in lines]


def inside(mask: np.ndarray, boxes: list[tuple], margin: int = MARGIN) -> np.ndarray:
    """The mask's pixels that lie within any of the boxes, grown by `margin`."""
    keep = np.zeros_like(mask)
    for x0, y0, x1, y1 in boxes:
        keep[max(0, int(y0) - margin):int(y1) + margin + 1, max(0, int(x0) - margin):int(x1) + margin + 1] = True
    return mask & keep


def covered(mask: np.ndarray, box: tuple) -> float:
    """The share of the box's pixels that are tinted."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return float(mask[y0:y1, x0:x1].mean())


# --- matching (pure) -------------------------------------------------------------------------------------
def test_fold_ignores_case_whitespace_hyphens_and_ligatures() -> None:
    assert pages.fold("Anti-\ncoagu\u0002lant ﬁne")[0] == "anticoagulantfine"
    assert pages.fold("Give\r\n 5 MG")[1] == [0, 1, 2, 3, 7, 9, 10]


def test_locate_maps_back_to_page_characters() -> None:
    page = "Dosing\r\nGive 2 mg\r\nonce daily. Review the anticoagu\u0002lant dose."
    [(s, e)] = pages.locate(page, "give 2 MG once")
    assert page[s:e] == "Give 2 mg\r\nonce"
    [(s, e)] = pages.locate(page, "Review the anticoagu-\nlant dose.")
    assert page[s:e] == "Review the anticoagu\u0002lant dose."
    assert pages.locate(page, "Give 3 mg once") is None


def test_locate_a_table_row_cell_by_cell_nearest_together() -> None:
    page = "Group Dose\r\nAdults 10 mg\r\nElderly 5 mg\r\nChildren 5 mg"
    spans = pages.locate(page, "Elderly | 5 mg")
    assert [page[s:e] for s, e in spans] == ["Elderly", "5 mg"] and spans[1][0] == page.index("Elderly 5") + 8
    # a row shown as "header: cell" pairs finds the cells; a cell not on the page fails the row
    assert [page[s:e] for s, e in pages.locate(page, "Group: Children · Dose: 5 mg")] == ["Children", "5 mg"]
    assert pages.locate(page, "Elderly | 7 mg") is None


def test_locate_tolerates_residue_in_a_long_quote_only() -> None:
    page = "Reduce the dose ( 2 ) ( 2 ) in patients with renal impairment and monitor closely. Other text."
    [(s, e)] = pages.locate(page, "Reduce the dose in patients with renal impairment and monitor closely.")
    assert page[s:e].startswith("Reduce the dose") and page[s:e].endswith("monitor closely.")
    assert pages.locate("Give the ( 2 ) dose.", "Give the dose.") is None  # too short to guess


def test_locate_a_quote_read_in_another_order_in_long_pieces_only() -> None:
    # PDFium reads this table row cell by cell; the row as an older extraction stored it ran across cells
    page = ("Severity First choice Alternative\r\nLow (score 0-1),\r\ncommunity amoxicillin 500 mg orally three "
            "times daily\r\ndoxycycline 200 mg orally on day 1,\r\nthen 100 mg once daily\r\nModerate (score 2)\r\n"
            "amoxicillin 500 mg orally twice daily\r\ndoxycycline 100 mg once daily")
    row = ("Low (score 0-1), | doxycycline 200 mg orally on day 1, community | "
           "amoxicillin 500 mg orally three times dailythen 100 mg once daily")
    shown = [page[s:e] for s, e in pages.locate(page, row)]
    assert shown == ["Low (score 0-1),", "doxycycline 200 mg orally on day 1,", "community",
                     "amoxicillin 500 mg orally three times daily", "then 100 mg once daily"]
    assert all(e <= page.index("Moderate") for s, e in pages.locate(page, row)), "all in the Low row"
    spliced = "doxycycline 200 mg orally on day 1, Moderate (score 2) then 100 mg once daily"  # a box inside
    assert [page[s:e] for s, e in pages.locate(page, spliced)] == [
        "doxycycline 200 mg orally on day 1,", "Moderate (score 2)", "then 100 mg once daily"]
    assert pages.locate(page, "daily mg orally once amoxicillin three Severity times") is None, "words, not pieces"


def test_merge_lines_joins_glyph_boxes_of_a_line_not_table_cells() -> None:
    glyphs = [(0, 2, 8, 12), (9, 0, 16, 12), (17, 2, 25, 12), (80, 1, 90, 12), (0, 20, 9, 32)]
    assert pages.merge_lines(glyphs) == [(0, 0, 25, 12), (80, 1, 90, 12), (0, 20, 9, 32)]


# --- rendering and the highlight -------------------------------------------------------------------------
def test_highlight_of_a_sentence_falls_on_its_printed_box(pdf: Path) -> None:
    data = pdf.read_bytes()
    plain = render_page(data, 1)
    assert plain.found is None and not tinted(plain.png).any(), "the page without highlight has none"
    shown = render_page(data, 1, ONE_LINE)
    [line] = pdfium_lines(pdf, 1, "Review", "days.")
    mask = tinted(shown.png)
    assert shown.found and mask.sum() == inside(mask, [line]).sum(), "no tint away from the sentence"
    assert covered(mask, line) > 0.4, "the sentence's paper is tinted"
    [(x0, y0, x1, y1)] = shown.boxes
    assert x0 <= line[0] + 1 and x1 >= line[2] - 1 and y0 <= line[1] + 1 and y1 >= line[3] - 1


def test_a_sentence_over_two_lines_is_highlighted_on_both(pdf: Path) -> None:
    shown = render_page(pdf.read_bytes(), 1, TWO_LINES)
    lines = pdfium_lines(pdf, 1, "Give warfarin", "medicines.")
    assert len(lines) == 2, "the test sentence must wrap"
    mask = tinted(shown.png)
    assert all(covered(mask, line) > 0.4 for line in lines)
    assert mask.sum() == inside(mask, lines).sum()
    [before] = pdfium_lines(pdf, 1, "Review", "days.")  # the sentence before it, on its first line
    assert covered(mask, (before[0], before[1] + 3, before[2] - 3, before[3] - 3)) == 0


def test_a_table_row_highlights_its_cells_not_the_other_row(pdf: Path) -> None:
    mask = tinted(render_page(pdf.read_bytes(), 1, ROW).png)
    cells = pdfium_lines(pdf, 1, "Elderly", "Elderly") + pdfium_lines(pdf, 1, "warfarin 5 mg", "daily")
    assert all(covered(mask, c) > 0.3 for c in cells)
    assert mask.sum() == inside(mask, cells).sum()
    assert covered(mask, pdfium_lines(pdf, 1, "Adults", "Adults")[0]) == 0


def test_text_not_on_the_page_is_not_found_and_the_page_is_plain(pdf: Path) -> None:
    shown = render_page(pdf.read_bytes(), 1, "Give aspirin 300 mg at once.")
    assert shown.found is False and not shown.boxes and not tinted(shown.png).any()


def test_a_page_out_of_range_names_the_count(pdf: Path) -> None:
    with pytest.raises(ConfigError, match=r"page 2 is out of range for x.pdf: it has 1 page"):
        render_page(pdf.read_bytes(), 2, name="x.pdf")


# --- the cache -------------------------------------------------------------------------------------------
def test_the_second_render_comes_from_the_cache(pdf: Path, tmp_path: Path, monkeypatch) -> None:
    cache = PageCache(tmp_path / "pages", 10 * 1024 * 1024)
    first = render_page(pdf.read_bytes(), 1, ONE_LINE, cache=cache)
    doc_id = pages.hashlib.sha256(pdf.read_bytes()).hexdigest()[:16]
    assert not first.cached and (tmp_path / "pages" / doc_id / f"1-{DEFAULT_DPI}.png").is_file()
    monkeypatch.setattr(pages, "_render", lambda *a: pytest.fail("rendered again"))
    second = render_page(pdf.read_bytes(), 1, ONE_LINE, cache=cache)
    assert second.cached and second.png == first.png and second.boxes == first.boxes


def test_the_cache_keeps_within_its_bound_dropping_the_least_recently_used(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "pages", 2500)
    for n in (1, 2):
        cache.put("doc", n, 72, bytes(1000))
        os.utime(cache.path("doc", n, 72), (n, n))  # page 1 older than page 2
    assert cache.get("doc", 1, 72) is not None  # a use: page 1 is now the most recent
    cache.put("doc", 3, 72, bytes(1000))
    assert [p.name for p in sorted((tmp_path / "pages" / "doc").iterdir())] == ["1-72.png", "3-72.png"]
    assert not list((tmp_path / "pages" / "doc").glob(".tmp-*")), "written atomically, no temporary left"


# --- the command line ------------------------------------------------------------------------------------
def test_cli_page_writes_the_highlighted_png(pdf: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "p.png"
    assert main(["page", str(pdf), "1", "--highlight", ONE_LINE, "--out", str(out)]) == 0
    assert "highlighted in 1 box" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and tinted(out.read_bytes()).any()


def test_cli_highlight_not_on_the_page_exits_2_with_one_line(pdf: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "p.png"
    assert main(["page", str(pdf), "1", "--highlight", "Give aspirin 300 mg", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'Give aspirin 300 mg' is not on page 1 of warfarin_guide.pdf" in err
    assert out.is_file() and not tinted(out.read_bytes()).any()


@pytest.mark.parametrize("argv, needle", [
    (["7"], "page 7 is out of range for warfarin_guide.pdf: it has 1 page"),
    (["0"], "page 0 is out of range"),
])
def test_cli_page_out_of_range_exits_1(pdf: Path, tmp_path: Path, capsys, argv, needle) -> None:
    assert main(["page", str(pdf), *argv, "--out", str(tmp_path / "p.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and not (tmp_path / "p.png").exists()


def test_cli_page_of_an_ingested_document_and_of_one_whose_pdf_is_gone(settings, hash_embedder, tmp_path: Path,
                                                                        capsys) -> None:
    from docgen import guide

    from ingest.pipeline import ingest
    from rag.store import Store

    src = guide(tmp_path / "src" / "gout_guide_2024.pdf", "gout")
    assert not ingest([src], settings, hash_embedder).failed
    [doc] = Store(settings.home / "gqa.sqlite", readonly=True).documents()
    out = tmp_path / "p.png"
    for ref in ("gout_guide_2024.pdf", doc.doc_id):
        assert main(["page", ref, "1", "--highlight", "Treat gout promptly.", "--out", str(out)]) == 0, ref
    assert (settings.home / "pages" / doc.doc_id / f"1-{DEFAULT_DPI}.png").is_file()
    src.unlink()
    assert main(["page", "gout_guide_2024.pdf", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"gout_guide_2024.pdf (doc {doc.doc_id}): its source PDF {src}" in err


# --- the real corpus -------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_corpus
def test_warfarin_label_page_6_quote_is_highlighted_in_its_text_box() -> None:
    from pypdf import PdfReader

    path = CORPUS / "fda_warfarin_label_2025.pdf"
    text = PdfReader(str(path)).pages[5].extract_text()  # the stored text is pypdf's: "low-\ndose" included
    start = text.index("therapy with combined moderate")
    quote = text[start:text.index("is recommended.", start) + len("is recommended.")]
    assert "\n" in quote, "the quote should cross a line"
    shown = render_page(path.read_bytes(), 6, quote)
    lines = pdfium_lines(path, 6, "therapy with combined moderate", "is recommended.")
    mask = tinted(shown.png)
    assert shown.found and len(lines) == 2
    assert all(covered(mask, line) > 0.3 for line in lines)
    assert mask.sum() == inside(mask, lines).sum()
