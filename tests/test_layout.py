"""Reading order by position (ingest/layout.py): generated PDFs whose content stream is out of reading order."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from fpdf import FPDF

from ingest.extract import extract_pdf
from ingest.layout import clean_residue, intact

LEFT = [f"Left column line {i} tells the reader about warfarin dosing step {i}." for i in range(8)]
RIGHT = [f"Right column line {i} explains how the INR is monitored at visit {i}." for i in range(8)]


def _pdf() -> FPDF:
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    return pdf


def two_columns_line_by_line(path: Path) -> Path:
    """Two prose columns, written across the page one line at a time (left, right, left, right...)."""
    pdf = _pdf()
    for i, (a, b) in enumerate(zip(LEFT, RIGHT, strict=True)):
        pdf.text(40, 100 + 14 * i, a)
        pdf.text(310, 100 + 14 * i, b)
    pdf.output(str(path))
    return path


BEFORE = ["The usual starting dose is 2 to 5 mg once daily and the dose is then adjusted",
          "according to the INR, which is checked every few days at the start of treatment, but"]
AFTER = ["more often in elderly patients. Maintenance doses are usually 2 to 10 mg daily.",
         "Review the INR at every change of interacting medicines."]
BOX = ["Strong recommendation for", "Give vitamin K to reverse warfarin in major bleeding.",
       "*Not evaluated using the GRADE framework"]


def box_drawn_last(path: Path, top: bool) -> Path:
    """A column of prose and a shaded box (at the top of the page, or between two parts of a sentence),
    the box drawn after all the prose, as MAGICapp pages are."""
    pdf = _pdf()
    y = 200.0 if top else 100.0
    for ln in BEFORE:
        pdf.text(60, y, ln)
        y += 13
    box_y = 100.0 if top else y + 4
    y = y + 10 if top else y + 4 + 14 * len(BOX) + 16
    for ln in AFTER:
        pdf.text(60, y, ln)
        y += 13
    for i in range(3):  # lines printed below the box, written before it
        pdf.text(60, y + 13 * i, f"Further advice {i} follows for the pharmacist who dispenses the tablets.")
    pdf.set_fill_color(220, 235, 250)
    pdf.rect(50, box_y - 10, 480, 14 * len(BOX) + 8, style="F")
    for i, ln in enumerate(BOX):
        pdf.text(60, box_y + 14 * i, ln)
    pdf.output(str(path))
    return path


def _text(path: Path) -> str:
    return extract_pdf(path).pages[0].text


def test_columns_written_line_by_line_are_read_one_after_another(tmp_path: Path) -> None:
    text = _text(two_columns_line_by_line(tmp_path / "cols.pdf"))
    lines = [ln for ln in text.splitlines() if ln]
    assert lines == LEFT + RIGHT


def test_a_box_in_the_middle_of_a_sentence_is_read_after_the_sentence_ends(tmp_path: Path) -> None:
    text = _text(box_drawn_last(tmp_path / "mid.pdf", top=False))
    flat = " ".join(text.split())
    sentence = " ".join(BEFORE + AFTER[:1]).split(". Maintenance")[0]
    assert sentence in flat, "the sentence the box interrupts is read whole"
    assert " ".join(BOX) in flat, "the box is read whole"
    assert flat.index(" ".join(BOX)) > flat.index("more often in elderly patients.")


def test_a_box_drawn_last_at_the_top_of_the_page_is_read_first(tmp_path: Path) -> None:
    text = _text(box_drawn_last(tmp_path / "top.pdf", top=True))
    flat = " ".join(text.split())
    assert flat.startswith(" ".join(BOX))
    assert " ".join(BEFORE + AFTER) in flat


def test_the_stream_order_stays_where_nothing_is_out_of_place(tmp_path: Path) -> None:
    pdf = _pdf()
    for i, ln in enumerate(BEFORE + AFTER):
        pdf.text(60, 100 + 13 * i, ln)
    pdf.output(str(tmp_path / "plain.pdf"))
    assert [ln for ln in _text(tmp_path / "plain.pdf").splitlines() if ln] == BEFORE + AFTER


@pytest.mark.parametrize(("raw", "clean"), [
    ("DOSAGE\n(2)\n(2)\n• Give 2.5 mg (2.4) (2)", "DOSAGE\n• Give 2.5 mg (2.4)"),
    ("Renal (2.4)\n(\n2\n)\n(\n2\n)\nNext", None),  # pypdf's glyph-per-line form: see below
    ("155\n(3.1)\n117\n(2.3)", "155\n(3.1)\n117\n(2.3)"),  # table values, not residue
    ("Cells: (3.1) (2.3)", "Cells: (3.1) (2.3)"),
])
def test_cross_reference_residue(raw: str, clean: str | None) -> None:
    if clean is not None:
        assert clean_residue(raw) == clean


def test_glyph_per_line_references_are_joined_then_dropped_when_repeated(tmp_path: Path) -> None:
    from ingest.layout import _CHAR_LINES

    raw = "Renal (2.4)\n(\n2\n)\n(\n2\n)\nNext"
    assert clean_residue(_CHAR_LINES.sub(r"(\1)", raw)) == "Renal (2.4)\nNext"


def test_intact_counts_the_plain_lines_kept_whole() -> None:
    assert intact("a b c d\ne f g h", "e f g h\na b c d") == 1.0
    assert intact("a b c d\ne f g h", "a b\nc d e f g h") == 1.0  # line breaks do not matter
    assert intact("a b c d\ne f g h", "a b e f\nc d g h") == 0.0  # words of two lines interleaved
    assert intact("short\nlines", "anything") == 1.0


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "who_guidelines_malaria_2023.pdf").exists(), reason="real corpus not found")
def test_malaria_page_170_keeps_its_recommendation_box_out_of_the_sentence() -> None:
    """The box drawn last on PDF page 170 no longer splits 'as chloroquine but | by less than quinine'."""
    import pypdf

    from ingest.extract import _page_text

    reader = pypdf.PdfReader(CORPUS / "who_guidelines_malaria_2023.pdf")
    text = _page_text(reader.pages[169])
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "Strong recommendation for" or "Strong recommendation for" in lines[:3]
    assert any(ln.endswith("same amount as chloroquine but") for ln in lines[-3:])  # continued on p.171
    assert "Practical info" in text and text.index("*Not evaluated") < text.index("Practical info")


def framed_warning(path: Path) -> Path:
    """A label page: a boxed warning framed by four thin bars, then ordinary sections."""
    pdf = _pdf()
    lines = ["WARNING: BLEEDING RISK", "Warfarin sodium can cause major or fatal bleeding.",
             "Perform regular monitoring of INR in all treated patients."]
    for i, ln in enumerate(lines):
        pdf.text(60, 100 + 13 * i, ln)
    pdf.set_fill_color(0, 0, 0)
    for x, y, w, h in [(50, 86, 480, 3), (50, 138, 480, 3), (50, 86, 3, 55), (527, 86, 3, 55)]:
        pdf.rect(x, y, w, h, style="F")
    for i, ln in enumerate(["INDICATIONS AND USAGE", "Warfarin sodium is indicated for the prophylaxis of "
                            "venous thrombosis.", "Take it at the same time every day with a glass of water."]):
        pdf.text(60, 170 + 13 * i, ln)
    pdf.output(str(path))
    return path


def test_the_sentences_of_a_framed_boxed_warning_are_marked(tmp_path: Path) -> None:
    from ingest.chunk import chunk_pages

    ext = extract_pdf(framed_warning(tmp_path / "label.pdf"))
    assert ext.pages[0].boxed and "can cause major or fatal bleeding" in ext.pages[0].boxed[0]
    chunks = chunk_pages("d", "WARFARIN", ext.pages, lambda ts: [len(t.split()) for t in ts], 256, 200, 0)
    boxed = " ".join(c.text for c in chunks if c.kind == "boxed_warning")
    other = " ".join(c.text for c in chunks if c.kind != "boxed_warning")
    assert "major or fatal bleeding" in boxed and "monitoring of INR" in boxed
    assert "prophylaxis of venous thrombosis" in other and "bleeding" not in other


GUIDANCE = ["II. BACKGROUND", "",
            "The FDA will file an NDA within 60 days of receipt or inform the applicant of the refusal to",
            "file. The FDA generally makes filing determinations for BLAs within the same time frame.",
            "", "Filing an application means that the FDA has made a threshold determination that it",
            "is sufficiently complete to permit a substantive review.", "",
            "III. PROCESS AND PROCEDURES", "", "A. Filing Review and Assessment"]


def numbered_lines(path: Path, first: int, step: int = 1) -> Path:
    """A draft-guidance page: every line (blank ones too) numbered in the left margin, right-aligned, each
    number written after its line as FDA's generator does."""
    pdf = _pdf()
    for i, line in enumerate(GUIDANCE + ["Applications are assessed for completeness first."] * 3):
        y = 100 + 14 * i
        if line:
            pdf.text(72, y, line)
        number = str(first + step * i)
        pdf.text(57 - pdf.get_string_width(number), y, number)
    pdf.output(str(path))
    return path


def test_line_numbers_in_the_margin_are_not_read_into_sentences_and_headings(tmp_path: Path) -> None:
    text = _text(numbered_lines(tmp_path / "draft.pdf", first=53))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert "II. BACKGROUND" in lines and "III. PROCESS AND PROCEDURES" in lines
    assert "refusal to file. The FDA generally" in " ".join(text.split())
    assert not any(ln.strip().isdigit() for ln in lines)
    assert not any(str(n) in text for n in range(61, 68))  # the margin's numbers, none of them in the text


def test_a_margin_column_of_numbers_that_do_not_count_lines_is_kept(tmp_path: Path) -> None:
    text = _text(numbered_lines(tmp_path / "weights.pdf", first=10, step=10))  # 10, 20, 30 ...: not line numbers
    assert "100" in text.split() and "50" in text.split()


def test_line_numbers_are_stripped_from_plain_text_where_positions_cannot_be_trusted() -> None:
    """pypdf writes a margin's line numbers at the end of each line; a number the text states stays."""
    from ingest.layout import strip_line_numbers

    plain = "III. PROCESS AND PROCEDURES 106 \n 107 \nThe FDA will file within 60 days 108 \nof receipt 60\n"
    assert strip_line_numbers(plain, set(range(106, 110))).splitlines() == [
        "III. PROCESS AND PROCEDURES", "", "The FDA will file within 60 days", "of receipt 60"]


ITEMS = ["Take the tablets once daily at any time of the day, with or without food.",
         "Assess LDL-C as early as 4 weeks after starting, and adjust the dosage if necessary.",
         "If a dose is missed, do not take the missed dose; resume with the next dose."]


def bullets_written_first(path: Path, sub: bool = False) -> Path:
    """A list whose bullets the stream writes first and whose items' text it writes after them (as some
    label generators do); with `sub`, the bullets are the letter o (a sub-list set in a symbol font)."""
    pdf = _pdf()
    pdf.text(40, 80, "2.1 Important Dosage Information")
    for i in range(len(ITEMS)):
        pdf.text(50, 100 + 14 * i, "o" if sub else "-")
    for i, item in enumerate(ITEMS):
        pdf.text(62, 100 + 14 * i, item)
    pdf.text(40, 100 + 14 * len(ITEMS) + 10, "2.2 Recommended Dosage in Adult Patients")
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("sub", [False, True])
def test_bullets_written_apart_from_their_items_are_read_before_them(tmp_path: Path, sub: bool) -> None:
    text = _text(bullets_written_first(tmp_path / "bullets.pdf", sub))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    mark = "\u25e6" if sub else "-"
    assert [f"{mark} {it}" for it in ITEMS] == [ln for ln in lines if ln.endswith(".")]
    assert lines[0] == "2.1 Important Dosage Information" and lines[-1].startswith("2.2 Recommended")


IMPACT = ["Carbonic anhydrase inhibitors frequently cause a decrease in",
          "serum bicarbonate and induce non-anion gap, hyperchloremic",
          "metabolic acidosis. Concomitant use may increase the risk",
          "for lactic acidosis."]


def labelled_cell(path: Path, label: tuple[str, ...]) -> Path:
    """An FDA interaction table: a caption, a drug class, and a row label centred left of a framed cell
    of several lines (so its baseline is that of a line inside the cell's sentence)."""
    pdf = _pdf()
    pdf.text(40, 60, "Table 3: Clinically Significant Drug Interactions with Zorbital")
    pdf.text(40, 84, "Carbonic Anhydrase Inhibitors")
    top = 96
    pdf.rect(140, top, 400, 14 * len(IMPACT) + 6)
    for i, ln in enumerate(IMPACT):
        pdf.text(146, top + 12 + 14 * i, ln)
    mid = top + 12 + 14 * (len(IMPACT) // 2)
    for i, part in enumerate(label):  # on the cell's middle baselines
        pdf.text(50, mid - 14 * (len(label) - 1) + 14 * i, part)
    pdf.text(50, top + 14 * len(IMPACT) + 22, "Intervention: Consider more frequent monitoring of these patients.")
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("label", [("Clinical Impact:",), ("Clinical", "Impact:")])
def test_a_row_label_is_read_before_the_cell_it_names(tmp_path: Path, label: tuple[str, ...]) -> None:
    """Not '... hyperchloremic Clinical Impact: metabolic acidosis.' (pypdf's layout text of such a row)."""
    text = " ".join(_text(labelled_cell(tmp_path / "table.pdf", label)).split())
    assert f"Clinical Impact: {' '.join(IMPACT)}" in text
    assert text.index("for lactic acidosis.") < text.index("Intervention: Consider")


INHIBITORS = ["acyclovir, allopurinol, caffeine,", "ciprofloxacin, disulfiram,", "famotidine, fluvoxamine,",
              "verapamil, zileuton"]
INDUCERS = ["montelukast,", "omeprazole, phenytoin,", "cigarette smoking"]


def matrix_table(path: Path) -> Path:
    """FDA's CYP450 table: a header, then rows whose middle cell is framed and holds several lines, the
    cell right of it printed line by line and the row label centred on the left."""
    pdf = _pdf()
    pdf.text(40, 60, "Table 2: Examples of CYP450 Interactions with Zorbital")
    pdf.text(50, 84, "Enzyme")
    pdf.text(130, 84, "Inhibitors")
    pdf.text(400, 84, "Inducers")
    for r, name in enumerate(("CYP2C9", "CYP1A2")):
        top = 92 + r * (14 * len(INHIBITORS) + 14)  # apart: touching frames of one width read as grid cells
        pdf.rect(120, top, 270, 14 * len(INHIBITORS) + 6)
        for i, ln in enumerate(INHIBITORS):
            pdf.text(126, top + 12 + 14 * i, ln)
        for i, ln in enumerate(INDUCERS):
            pdf.text(400, top + 12 + 14 * i, ln)
        pdf.text(50, top + 12 + 14 * (len(INHIBITORS) // 2), name)
    pdf.output(str(path))
    return path


def test_a_row_with_a_framed_cell_is_read_cell_by_cell(tmp_path: Path) -> None:
    """'CYP1A2 | <its inhibitors> | <its inducers>', not a line of each cell's fourth line."""
    lines = _text(matrix_table(tmp_path / "matrix.pdf")).splitlines()
    row = f"CYP1A2 | {' '.join(INHIBITORS)} | {' '.join(INDUCERS)}"
    assert row in lines and lines.index("Enzyme | Inhibitors | Inducers") < lines.index(row)
