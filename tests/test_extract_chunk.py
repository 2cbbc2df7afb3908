"""Extraction and chunking on generated PDFs: known answers for pages, labels, sections, tables, sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
from docgen import DocSpec, Heading, PageBreak, Paragraph, Table, render_pdf
from render_demo import BulletList

from ingest.chunk import chunk_pages, page_units, split_sentences
from ingest.extract import extract_pdf, strip_running_lines
from ingest.naming import clean_title, derive_doc_type, derive_family, derive_version, version_key
from ingest.sections import _continues, heading_of, repeated_labels, section_number
from rag.types import Page
from rag.verify import table_parts

HEADER = "Zebra Quarterly Running Header"
FOOTER = "Confidential footer line"
TITLE = "Renal Dosing Handbook"


def handbook(outline: bool = True) -> DocSpec:
    """Front matter printed 'i', then one body page printed '1' with every kind of heading and a table."""
    return DocSpec(title=TITLE, header_text=HEADER, footer_text=FOOTER, page_label_offset=1, outline=outline,
                   blocks=[
                       Paragraph("This handbook is a generated test document. It has a preface page."),
                       PageBreak(),
                       Heading("1", "Scope"),
                       Paragraph("This handbook covers adults. It does not cover children."),
                       Heading("2", "Dosing"),
                       Heading("2.3", "Dosage in renal impairment"),
                       Paragraph("Reduce the dose by half when eGFR is below 30 mL/min (e.g. in elderly "
                                 "patients). Avoid in dialysis."),
                       Table("Table 1. Doses by eGFR", ["eGFR", "Dose"],
                             [["above 60", "500 mg twice daily"], ["30 to 60", "250 mg twice daily"],
                              ["below 30", "avoid"]]),
                       Heading("", "WARNINGS AND PRECAUTIONS"),
                       Paragraph("Lactic acidosis may occur. Stop the drug if it does."),
                       Heading("", "Special populations"),  # neither numbered nor capitals: only the outline knows
                       Paragraph("Pregnant women need specialist advice."),
                   ])


# Running lines are found by repetition, so a test document needs two pages for its header to go.
END = [PageBreak(), Paragraph("End of the document.")]


def chunks_of(path: Path, hash_embedder, body_tokens: int = 200, overlap: int = 1):
    ext = extract_pdf(path)
    return ext, chunk_pages("doc", ext.title, ext.pages, hash_embedder.count_tokens, 256, body_tokens, overlap)


def test_handbook_chunks_known_answer(tmp_path: Path, hash_embedder) -> None:
    ext, chunks = chunks_of(render_pdf(tmp_path / "handbook.pdf", handbook()), hash_embedder)
    renal = "2 Dosing > 2.3 Dosage in renal impairment"
    assert [(c.page, c.page_end, c.page_label, c.section, c.kind, c.text) for c in chunks] == [
        (1, 1, "i", "", "text", "This handbook is a generated test document. It has a preface page."),
        (2, 2, "1", "1 Scope", "text", "This handbook covers adults. It does not cover children."),
        (2, 2, "1", renal, "text",
         "Reduce the dose by half when eGFR is below 30 mL/min (e.g. in elderly patients). Avoid in dialysis."),
        (2, 2, "1", renal, "table",
         "Table 1. Doses by eGFR\neGFR | Dose\n\neGFR: above 60 · Dose: 500 mg twice daily\n"
         "eGFR: 30 to 60 · Dose: 250 mg twice daily\neGFR: below 30 · Dose: avoid"),
        # caption and header, a blank line, the rows: each cell after its column's label
        (2, 2, "1", "WARNINGS AND PRECAUTIONS", "text", "Lactic acidosis may occur. Stop the drug if it does."),
        (2, 2, "1", "Special populations", "text", "Pregnant women need specialist advice."),
    ]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert ext.title == TITLE


def test_running_header_and_footer_removed(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title=TITLE, header_text=HEADER, footer_text=FOOTER, blocks=[
        Heading("1", "Scope"), Paragraph("First page body about dosing."), PageBreak(),
        Paragraph("Second page body about monitoring."), PageBreak(), Paragraph("Third page body about storage."),
    ])
    ext, chunks = chunks_of(render_pdf(tmp_path / "running.pdf", spec), hash_embedder)
    assert len(ext.pages) == 3
    for page in ext.pages:
        assert HEADER.lower() not in page.text.lower(), page
        assert FOOTER.lower() not in page.text.lower(), page
    for c in chunks:
        assert "zebra" not in c.text.lower() and "confidential" not in c.text.lower(), c
    body = " ".join(c.text for c in chunks)
    for words in ("First page body about dosing.", "Second page body about monitoring.", "Third page body"):
        assert words in body


def test_footer_with_roman_page_number_removed(tmp_path: Path, hash_embedder) -> None:
    """Front matter printed 'Page i', 'Page ii' carries the same running footer as 'Page 1'."""
    ext, chunks = chunks_of(render_pdf(tmp_path / "handbook.pdf", handbook()), hash_embedder)
    assert [p.label for p in ext.pages] == ["i", "1"]
    for c in chunks:
        assert FOOTER.lower() not in c.text.lower(), c
        assert HEADER.lower() not in c.text.lower(), c


def test_page_labels_are_the_printed_numbers(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title=TITLE, page_label_offset=2, blocks=[
        Paragraph("Cover page text for the labels test."), PageBreak(),
        Paragraph("Contents page text for the labels test."), PageBreak(),
        Heading("1", "Introduction"), Paragraph("Body page one text."), PageBreak(),
        Paragraph("Body page two text."),
    ])
    ext, chunks = chunks_of(render_pdf(tmp_path / "labels.pdf", spec), hash_embedder)
    assert [(p.number, p.label) for p in ext.pages] == [(1, "i"), (2, "ii"), (3, "1"), (4, "2")]
    assert {c.page: c.page_label for c in chunks} == {1: "i", 2: "ii", 3: "1", 4: "2"}


def test_without_page_labels_label_is_page_number(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title=TITLE, blocks=[Paragraph("One."), PageBreak(), Paragraph("Two is here.")])
    ext, _ = chunks_of(render_pdf(tmp_path / "plain.pdf", spec), hash_embedder)
    assert [p.label for p in ext.pages] == ["1", "2"]


def test_sections_found_without_outline(tmp_path: Path, hash_embedder) -> None:
    """Numbered and label-style headings are recognised from the text alone; a plain-case heading is not."""
    _, chunks = chunks_of(render_pdf(tmp_path / "no-outline.pdf", handbook(outline=False)), hash_embedder)
    sections = [c.section for c in chunks]
    assert "1 Scope" in sections
    assert "2 Dosing > 2.3 Dosage in renal impairment" in sections
    assert "WARNINGS AND PRECAUTIONS" in sections
    assert "Special populations" not in sections


def test_outline_entries_are_read(tmp_path: Path) -> None:
    ext = extract_pdf(render_pdf(tmp_path / "handbook.pdf", handbook()))
    assert ext.pages[0].outline == ()
    assert ext.pages[1].outline == ((0, "1 Scope"), (0, "2 Dosing"), (1, "2.3 Dosage in renal impairment"),
                                    (0, "WARNINGS AND PRECAUTIONS"), (0, "Special populations"))


def test_section_continues_onto_next_page(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title=TITLE, blocks=[
        Heading("4", "Monitoring"), Paragraph("Check the INR weekly."), PageBreak(),
        Paragraph("Check the platelet count monthly."),
    ])
    _, chunks = chunks_of(render_pdf(tmp_path / "cont.pdf", spec), hash_embedder)
    assert [(c.page, c.section, c.text) for c in chunks] == [
        (1, "4 Monitoring", "Check the INR weekly."), (2, "4 Monitoring", "Check the platelet count monthly."),
    ]


def test_small_table_is_one_chunk(tmp_path: Path, hash_embedder) -> None:
    rows = [["Amoxicillin", "500 mg", "every 8 hours"], ["Doxycycline", "100 mg", "every 12 hours"],
            ["Clarithromycin", "500 mg", "every 12 hours"], ["Cefalexin", "500 mg", "every 6 hours"]]
    spec = DocSpec(title="Formulary", blocks=[
        Heading("3", "Dosing"), Paragraph("Doses for adults with normal renal function."),
        Table("Table 2. Oral doses", ["Drug", "Dose", "Interval"], rows),
        Paragraph("Review the patient after three days."), *END,
    ])
    _, chunks = chunks_of(render_pdf(tmp_path / "table.pdf", spec), hash_embedder)
    tables = [c for c in chunks if c.kind == "table"]
    assert len(tables) == 1
    assert tables[0].text.splitlines() == ["Table 2. Oral doses", "Drug | Dose | Interval", "",
                                           *[f"Drug: {a} · Dose: {b} · Interval: {c}" for a, b, c in rows]]
    assert tables[0].section == "3 Dosing"
    for c in chunks:
        if c.kind != "table":
            assert "Amoxicillin" not in c.text and "Table 2" not in c.text
    # the paragraph after the table is prose again, not a last table row
    assert [c.text for c in chunks if c.kind == "text" and "Review" in c.text] == [
        "Review the patient after three days."]


def test_long_table_split_only_between_rows(tmp_path: Path, hash_embedder) -> None:
    rows = [[f"Drug{i:02d}", f"{10 * i} mg", f"every {i % 4 + 6} hours"] for i in range(1, 25)]
    caption, header = "Table 3. Long dosing table", ["Drug", "Dose", "Interval"]
    spec = DocSpec(title="Formulary", blocks=[Heading("5", "Doses"), Table(caption, header, rows), *END])
    _, chunks = chunks_of(render_pdf(tmp_path / "long.pdf", spec), hash_embedder, body_tokens=60)
    tables = [c for c in chunks if c.kind == "table"]
    assert len(tables) >= 3, [c.text for c in tables]
    seen: list[str] = []
    for c in tables:
        lines = c.text.splitlines()
        assert lines[:3] == [caption, " | ".join(header), ""], lines  # caption and header repeated
        assert len(lines) > 3  # at least one row
        assert table_parts(c.text) == (lines[:2], lines[3:])  # as rag.verify reads it
        seen += lines[3:]
    assert seen == [f"Drug: {a} · Dose: {b} · Interval: {c}" for a, b, c in rows]  # every row whole, once, in order


SENTENCES = [
    "Start with 2.5 mg once daily (e.g. in the evening).",
    "Increase to 5 mg after one week if tolerated.",
    "Do not exceed 10 mg per day.",
    "Check renal function, i.e. the eGFR, before each increase.",
    "Stop the drug if the potassium rises above 6.0 mmol/L.",
    "Patients older than 75 years need lower doses.",
    "Avoid use with potassium-sparing diuretics.",
    "Record every dose change in the notes.",
    "Review the treatment after three months.",
    "Refer to a specialist if blood pressure stays high.",
]


def test_chunks_respect_sentence_boundaries(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title=TITLE, blocks=[Heading("6", "Titration"), Paragraph(" ".join(SENTENCES)), *END])
    _, chunks = chunks_of(render_pdf(tmp_path / "sentences.pdf", spec), hash_embedder, body_tokens=40)
    chunks = [c for c in chunks if c.page == 1]
    assert len(chunks) >= 3
    spans = []
    for c in chunks:
        matches = [(i, j) for i in range(len(SENTENCES)) for j in range(i + 1, len(SENTENCES) + 1)
                   if " ".join(SENTENCES[i:j]) == c.text]
        assert matches, f"chunk is not a run of whole sentences: {c.text!r}"
        spans.append(matches[0])
    assert spans[0][0] == 0 and spans[-1][1] == len(SENTENCES)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end - 1 <= start <= end  # consecutive, at most one sentence of overlap


def test_chunks_fit_the_budget(tmp_path: Path, hash_embedder) -> None:
    long_par = " ".join(SENTENCES * 6)
    spec = DocSpec(title=TITLE, blocks=[Heading("7", "Long section"), Paragraph(long_par), PageBreak(),
                                        Paragraph(long_par)])
    ext, chunks = chunks_of(render_pdf(tmp_path / "long.pdf", spec), hash_embedder)
    assert len(chunks) >= 4
    for c in chunks:
        assert hash_embedder.count_tokens([c.text])[0] <= 200
        assert hash_embedder.count_tokens([c.embed_text(ext.title)])[0] + 2 <= 256


@pytest.mark.slow
def test_chunks_fit_the_model_window(tmp_path: Path, real_embedder) -> None:
    """With the real tokenizer, prefix (title | section) + body + [CLS]/[SEP] fit 256 word pieces."""
    from rag.config import Settings

    s = Settings.from_env(home=tmp_path)
    long_par = " ".join(SENTENCES * 8)
    rows = [[f"Pharmacokinetic parameter {i}", f"{i}.{i} microgram/mL", "hydrochlorothiazide-containing"]
            for i in range(40)]
    spec = DocSpec(title="A deliberately long title for the tokenizer budget test of the chunker", blocks=[
        Heading("7", "Titration and pharmacokinetic considerations"),
        Heading("7.1", "Hydrochlorothiazide-containing combinations in renal impairment"),
        Paragraph(long_par), Table("Table 4. Pharmacokinetics", ["Parameter", "Value", "Product"], rows[:20]),
    ])
    files = [render_pdf(tmp_path / "budget.pdf", spec)]
    data = Path(__file__).resolve().parents[1] / "data"
    files += sorted(data.glob("*.pdf"))
    for f in files:
        ext = extract_pdf(f)
        chunks = chunk_pages("d", ext.title, ext.pages, real_embedder.count_tokens, s.max_seq_tokens,
                             s.chunk_tokens, s.overlap_sentences)
        assert chunks, f
        sizes = real_embedder.count_tokens([c.embed_text(ext.title) for c in chunks])
        assert max(sizes) + 2 <= s.max_seq_tokens, (f.name, max(sizes))
        assert real_embedder.model.max_seq_length == s.max_seq_tokens


def test_chunk_ids_stable_across_runs(tmp_path: Path, hash_embedder) -> None:
    a = render_pdf(tmp_path / "a" / "handbook.pdf", handbook())
    b = render_pdf(tmp_path / "b" / "handbook.pdf", handbook())
    assert a.read_bytes() == b.read_bytes()
    _, first = chunks_of(a, hash_embedder)
    _, second = chunks_of(b, hash_embedder)
    _, third = chunks_of(a, hash_embedder)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second] == [c.chunk_id for c in third]
    assert len({c.chunk_id for c in first}) == len(first)
    assert first == second


# --- known answers on the pure helpers ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Take 2.5 mg (e.g. at night). Then stop.", ["Take 2.5 mg (e.g. at night).", "Then stop."]),
    ("See Fig. 3 for details. Dr. Smith agrees.", ["See Fig. 3 for details.", "Dr. Smith agrees."]),
    ("Is it safe? Yes! Use 0.5 mg/kg.", ["Is it safe?", "Yes!", "Use 0.5 mg/kg."]),
    ("Give one dose, i.e. 500 mg. Repeat in 8 hours.", ["Give one dose, i.e. 500 mg.", "Repeat in 8 hours."]),
    ("Levels vs. placebo were lower. (See below.)", ["Levels vs. placebo were lower.", "(See below.)"]),
    ("no capital after the stop. so one sentence.", ["no capital after the stop. so one sentence."]),
    ("", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(("line", "outline", "expected"), [
    ("2.3 Dosage in renal impairment", set(), (2, "2.3 Dosage in renal impairment")),
    ("5 WARNINGS AND PRECAUTIONS", set(), (1, "5 WARNINGS AND PRECAUTIONS")),
    ("WARNINGS AND PRECAUTIONS", set(), (1, "WARNINGS AND PRECAUTIONS")),
    ("3. Treatment", set(), (1, "3. Treatment")),
    ("2.3.1  Children", set(), (3, "2.3.1 Children")),
    ("5 mg daily", set(), None),
    ("2.1 Take the tablet with food.", set(), None),
    ("Special populations", set(), None),
    ("Special populations", {"special populations"}, (1, "Special populations")),
    ("4.2 Elderly", {"4.2 elderly"}, (2, "4.2 Elderly")),
    ("DRUG | DOSE | ROUTE", set(), None),
    ("eGFR | Dose", set(), None),
    ("III. PROCESS AND PROCEDURES", set(), (1, "III. PROCESS AND PROCEDURES")),
    ("A. Filing Review and Assessment", set(), (2, "A. Filing Review and Assessment")),
    ("A. Testing for infection in humans", set(), None),  # a list item, not a heading
    ("I. INTRODUCTION........................ 1", set(), None),  # its contents entry
])
def test_heading_of(line: str, outline: set[str], expected) -> None:
    assert heading_of(line, outline) == expected


def test_strip_running_lines_known_answer() -> None:
    assert strip_running_lines(["Hdr\nA\nPage 1", "Hdr\nB\nPage 2"]) == ["A", "B"]
    assert strip_running_lines(["Only page\nText"]) == ["Only page\nText"]
    # a line on only one page of three is content, not a running line
    assert strip_running_lines(["Hdr\nIntro\nX", "Hdr\nY", "Hdr\nZ"]) == ["Intro\nX", "Y", "Z"]
    # printed page numbers are masked whether arabic or roman, but words are not
    assert strip_running_lines(["Cover\nFooter | Page ii", "Body\nFooter | Page 3"]) == ["Cover", "Body"]
    assert strip_running_lines(["A\nmild case", "B\nvivid case"]) == ["A\nmild case", "B\nvivid case"]
    # a page counter that a reading by position put mid-page goes too; a count in the text stays
    pages = [f"Body {n}\nmore\nand more\nstill more\n{n} of 4" for n in (1, 2, 4)]
    pages.insert(2, "for artesunate\n3 of 4\nin severe malaria\n2 of 3 doses\nlast\nlines\nhere")
    assert strip_running_lines(pages)[2] == "for artesunate\nin severe malaria\n2 of 3 doses\nlast\nlines\nhere"


@pytest.mark.parametrize(("a", "b"), [
    ("fda_warfarin_label_2025.pdf", "fda_warfarin_highlights_2022.pdf"),
    ("fda_amoxicillin_tablets_2015.pdf", "fda_amoxicillin_highlights_2025.pdf"),
    ("Guideline-Asthma_v2.pdf", "guideline_asthma_2019.PDF"),
])
def test_derive_family_same(a: str, b: str) -> None:
    assert derive_family(a) == derive_family(b)


@pytest.mark.parametrize(("a", "b"), [
    ("fda_metformin_extended_release_2025.pdf", "fda_metformin_highlights_2026.pdf"),
    ("fda_ciprofloxacin_extended_release_2025.pdf", "fda_ciprofloxacin_highlights_2025.pdf"),
    ("who_guideline_schistosomiasis_2022.pdf", "who_guidelines_malaria_2023.pdf"),
])
def test_derive_family_different(a: str, b: str) -> None:
    assert derive_family(a) != derive_family(b)


def test_derive_family_known_answers() -> None:
    assert derive_family("fda_warfarin_label_2025.pdf") == "fda-warfarin"
    assert derive_family("fda_metformin_extended_release_2025.pdf") == "fda-metformin-extended-release"
    assert derive_family("fda_metformin_highlights_2026.pdf") == "fda-metformin"
    assert derive_family("who_essential_medicines_2023.pdf") == "who-essential-medicines"


@pytest.mark.parametrize(("name", "title", "meta_year", "expected"), [
    ("fda_warfarin_label_2025.pdf", "", "", "2025"),
    ("fda_warfarin_highlights_2022.pdf", "Warfarin 2019", "2024", "2022"),
    ("guide.pdf", "Asthma guideline 2019 update", "2024", "2019"),
    ("guide.pdf", "Asthma guideline", "2024", "2024"),
    ("guide_2018_rev_2021.pdf", "", "", "2021"),
])
def test_derive_version(name: str, title: str, meta_year: str, expected: str) -> None:
    assert derive_version(name, title, meta_year) == expected


def test_derive_version_falls_back_to_today() -> None:
    from datetime import date

    assert derive_version("guide.pdf", "No year here", "") == date.today().isoformat()


def test_version_key_orders_labels() -> None:
    assert version_key("2023-10 v2") == (2023, 10, 2)
    labels = ["2025", "2015", "2023-10", "2023-2", "2024"]
    assert sorted(labels, key=version_key) == ["2015", "2023-2", "2023-10", "2024", "2025"]


@pytest.mark.parametrize(("name", "expected"), [
    ("who_essential_medicines_2023.pdf", "formulary"),
    ("fda_guidance_nda_bla_refuse_to_file.pdf", "guidance"),
    ("fda_warfarin_highlights_2022.pdf", "label"),
    ("who_guidelines_malaria_2023.pdf", "guideline"),
])
def test_derive_doc_type(name: str, expected: str) -> None:
    assert derive_doc_type(name, "") == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("These highlights do not include all the information needed to use METFORMIN HYDROCHLORIDE "
     "EXTENDED-RELEASE TABLETS safely and effectively. See full prescribing information for METFORMIN.",
     "METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS"),
    ("WARFARIN SODIUM TABLETS. These highlights do not include all the information needed to use "
     "WARFARIN SODIUM TABLETS safely and effectively.", "WARFARIN SODIUM TABLETS"),
    ("WHO guidelines for malaria, 16 October 2023", "WHO guidelines for malaria, 16 October 2023"),
    ("   ", "Untitled"),
    ("x" * 150, "x" * 100),
])
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


def test_heading_wrapped_over_two_lines_is_one_heading() -> None:
    page = Page(1, "1", "4. Safety of praziquantel for\ntreatment of schistosomiasis\nPraziquantel is well tolerated.")
    units = page_units([page])
    assert [(u.section, u.text) for u in units] == [
        ("4. Safety of praziquantel for treatment of schistosomiasis", "Praziquantel is well tolerated.")]


def test_numbered_list_item_is_not_a_heading() -> None:
    text = ("3 Verification\nWHO suggests a framework of:\n"
            "1. Testing for infection in humans with a diagnostic that has high\n"
            "sensitivity and specificity. This may require two steps.")
    units = page_units([Page(1, "1", text)])
    assert {u.section for u in units} == {"3 Verification"}
    assert "Testing for infection in humans with a diagnostic that has high sensitivity and specificity." in [
        u.text for u in units]


def test_a_numbered_line_the_outline_numbers_otherwise_is_a_list_item() -> None:
    outline = ((0, "4. Prevention"), (0, "5. Case management"), (1, "5.1 Diagnosing malaria"))
    pages = [Page(1, "1", "4. Prevention\nNets protect children.\n"
                           "4. Appropriate weight-based dosing\nDose by body weight.", outline=outline),
             Page(2, "2", "5. Case management\nTreat promptly.\n5.1 Diagnosing malaria\nTest first.\n"
                           "5.2 Treating malaria\nGive an ACT.")]
    units = page_units(pages)
    assert list(dict.fromkeys(u.section for u in units)) == [
        "4. Prevention", "5. Case management", "5. Case management > 5.1 Diagnosing malaria",
        # a number the outline does not hold (pypdf resolves only some entries) is left to the page
        "5. Case management > 5.2 Treating malaria"]
    assert "Dose by body weight." in " ".join(u.text for u in units if u.section == "4. Prevention")


@pytest.mark.parametrize("line", ["8. Future research needs 49", "2.1 Adult dosing ........ 12"])
def test_table_of_contents_lines_are_not_headings(line: str) -> None:
    assert heading_of(line, set()) is None


@pytest.mark.parametrize("text, section", [
    pytest.param("30. DENTAL MEDICINES AND PREPARATIONS\nfluoride\nToothpaste, cream or gel.",
                 "30. DENTAL MEDICINES AND PREPARATIONS", id="heading followed by lower-case names stays a heading"),
    pytest.param("4.1 Recommendations\n"
                 "2. Treatment with praziquantel is well tolerated across all age groups, when treating any\n"
                 "Schistosoma species, and in uninfected persons.",
                 "4.1 Recommendations", id="numbered list item continuing with a capital is not a heading"),
    pytest.param("1 Scope\n3. Implementing preventive chemotherapy based on prevalence of\ninfection 12\nTreat early.",
                 "1 Scope", id="wrapped table-of-contents entry is not a heading"),
])
def test_the_page_has_one_section(text: str, section: str) -> None:
    assert {u.section for u in page_units([Page(1, "1", text)])} == {section}


def test_label_heading_words_inside_a_cross_reference_stay_in_the_sentence() -> None:
    text = ("5 PRECAUTIONS\nTake with a meal. (See\nCLINICAL PHARMACOLOGY, Drug-drug Interactions\n,\nDOSAGE AND\n"
            "ADMINISTRATION\n, and\nPRECAUTIONS, Drug Interactions\n.) Swallow the tablet whole.")
    units = page_units([Page(1, "1", text)])
    assert {u.section for u in units} == {"5 PRECAUTIONS"}
    assert any("DOSAGE AND ADMINISTRATION" in u.text for u in units)


# A list of medicines, two to a page, each with its 'FIRST CHOICE' and 'SECOND CHOICE' lists (as in the WHO
# Essential Medicines List's antibiotics): the labels are not headings, and each record stays whole.
MEDICINES = [
    ("amikacin", "Injection: 250 mg/mL in 2 mL vial.", ["High-risk febrile neutropenia"], ["Sepsis in neonates"]),
    ("amoxicillin", "Tablet: 250 mg; 500 mg.", ["Otitis media", "Pharyngitis"], ["Acute bacterial meningitis"]),
    ("ampicillin", "Powder for injection: 500 mg in vial.", ["Pneumonia (severe)"], ["Acute bacterial meningitis"]),
    ("cefalexin", "Tablet: 125 mg; 250 mg.", ["Skin and soft tissue infections"], ["Pharyngitis"]),
    ("cefazolin", "Powder for injection: 1 g in vial.", ["Surgical prophylaxis"], ["Bone and joint infections"]),
    ("cloxacillin", "Capsule: 500 mg.", ["Skin and soft tissue infections"], ["Bone and joint infections"]),
]
NOTES = ["Doses are for adults.", "Children need weight-based doses.", "Check local resistance data."]


def medicine_list() -> DocSpec:
    blocks: list = [Heading("6.2.1", "Access group antibiotics")]
    for k, (name, form, first, second) in enumerate(MEDICINES):
        if k and k % 2 == 0:
            blocks.append(PageBreak())
        blocks += [Paragraph(name), Paragraph(form), Paragraph("FIRST CHOICE"), BulletList(first),
                   Paragraph("SECOND CHOICE"), BulletList(second)]
        if k % 2:  # a repeated line at the foot of each page is a running footer, stripped
            blocks += [Paragraph(NOTES[k // 2]), Paragraph("See the annex for the evidence.")]
    return DocSpec(title="Antibiotic list", blocks=blocks)


def test_record_list_keeps_each_medicine_whole_under_its_section(tmp_path: Path) -> None:
    ext = extract_pdf(render_pdf(tmp_path / "list.pdf", medicine_list()))
    units = page_units(ext.pages)
    section = "6.2.1 Access group antibiotics"
    assert [(u.kind, u.page, u.section, u.text) for u in units] == [
        ("table", 1, section, "amikacin Injection: 250 mg/mL in 2 mL vial. FIRST CHOICE - High-risk febrile "
                              "neutropenia SECOND CHOICE - Sepsis in neonates"),
        ("table", 1, section, "amoxicillin Tablet: 250 mg; 500 mg. FIRST CHOICE - Otitis media - Pharyngitis "
                              "SECOND CHOICE - Acute bacterial meningitis Doses are for adults."),
        ("table", 2, section, "ampicillin Powder for injection: 500 mg in vial. FIRST CHOICE - Pneumonia (severe) "
                              "SECOND CHOICE - Acute bacterial meningitis"),
        ("table", 2, section, "cefalexin Tablet: 125 mg; 250 mg. FIRST CHOICE - Skin and soft tissue infections "
                              "SECOND CHOICE - Pharyngitis Children need weight-based doses."),
        ("table", 3, section, "cefazolin Powder for injection: 1 g in vial. FIRST CHOICE - Surgical prophylaxis "
                              "SECOND CHOICE - Bone and joint infections"),
        ("table", 3, section, "cloxacillin Capsule: 500 mg. FIRST CHOICE - Skin and soft tissue infections "
                              "SECOND CHOICE - Bone and joint infections Check local resistance data."),
    ]


def test_record_list_chunks_hold_whole_rows(tmp_path: Path, hash_embedder) -> None:
    _, chunks = chunks_of(render_pdf(tmp_path / "list.pdf", medicine_list()), hash_embedder, body_tokens=60)
    rows = [row for c in chunks for row in c.text.split("\n")]
    assert [r.split()[0] for r in rows] == [m[0] for m in MEDICINES]  # every row starts with its medicine
    assert {c.kind for c in chunks} == {"table"}
    assert all(table_parts(c.text) == ([], c.text.split("\n")) for c in chunks)  # no caption or header


def test_repeated_labels_are_labels_but_a_cited_heading_is_not() -> None:
    record = "FIRST CHOICE\n- Otitis media\nSECOND CHOICE\n- Sepsis\n"
    pages = [Page(n, str(n), record * 2) for n in (1, 2, 3)]
    assert repeated_labels(pages) == {"FIRST CHOICE", "SECOND CHOICE"}
    # 'WARNINGS' cited twice on two pages, and the heading itself on a third: still a heading
    cited = "Avoid in pregnancy (see\nWARNINGS\n). Stop at once (see\nWARNINGS\n)."
    pages = [Page(1, "1", cited), Page(2, "2", cited), Page(3, "3", "WARNINGS\nLiver injury may occur.")]
    assert repeated_labels(pages) == set()
    assert {u.section for u in page_units(pages) if u.page == 3} == {"WARNINGS"}


def sections_of(text: str) -> list[tuple[str, str]]:
    """(section, text) of each unit of a one-page document."""
    return [(u.section, u.text) for u in page_units([Page(1, "1", text)])]


def test_unnumbered_heading_inside_a_numbered_section_is_its_sub_heading() -> None:
    # as in the WHO Essential Medicines List: AWaRe group notes under 6.2, then its numbered sub-sections
    text = ("6. ANTI-INFECTIVE MEDICINES\n6.2 Antibacterials\nAntibiotics are grouped by the risk of resistance.\n"
            "ACCESS GROUP ANTIBIOTICS\nAccess antibiotics are first choices.\n"
            "RESERVE GROUP ANTIBIOTICS\nReserve antibiotics are last resort options.\n"
            "6.2.1 Access group antibiotics\nAmoxicillin is an Access antibiotic.\n"
            "6.3 Antifungal medicines\nFluconazole is an antifungal.")
    top = "6. ANTI-INFECTIVE MEDICINES"
    assert sections_of(text) == [
        (f"{top} > 6.2 Antibacterials", "Antibiotics are grouped by the risk of resistance."),
        (f"{top} > 6.2 Antibacterials > ACCESS GROUP ANTIBIOTICS", "Access antibiotics are first choices."),
        (f"{top} > 6.2 Antibacterials > RESERVE GROUP ANTIBIOTICS", "Reserve antibiotics are last resort options."),
        (f"{top} > 6.2 Antibacterials > 6.2.1 Access group antibiotics", "Amoxicillin is an Access antibiotic."),
        (f"{top} > 6.3 Antifungal medicines", "Fluconazole is an antifungal."),
    ]


def test_capitals_heading_in_a_label_chapter_stays_in_it_when_a_chapter_is_left_out() -> None:
    text = ("14 CLINICAL STUDIES\nThe trial enrolled adults.\nSECONDARY ENDPOINTS\nFewer strokes occurred.\n"
            "16 HOW SUPPLIED\nTablets come in bottles of 90.")
    assert sections_of(text) == [
        ("14 CLINICAL STUDIES", "The trial enrolled adults."),
        ("14 CLINICAL STUDIES > SECONDARY ENDPOINTS", "Fewer strokes occurred."),
        ("16 HOW SUPPLIED", "Tablets come in bottles of 90."),
    ]


def test_capitals_headings_after_the_last_numbered_section_are_top_level() -> None:
    # a label's package label and product tables after section 17; '60 Capsules' does not continue 17
    text = ("17 PATIENT COUNSELING INFORMATION\nAdvise patients to finish the course.\n"
            "PACKAGE LABEL\nEach bottle holds capsules.\n60 Capsules\nKeep out of reach of children.\n"
            "INGREDIENTS AND APPEARANCE\nGelatin and titanium dioxide.")
    assert sections_of(text) == [
        ("17 PATIENT COUNSELING INFORMATION", "Advise patients to finish the course."),
        ("PACKAGE LABEL", "Each bottle holds capsules."),
        ("PACKAGE LABEL", "60 Capsules Keep out of reach of children."),
        ("INGREDIENTS AND APPEARANCE", "Gelatin and titanium dioxide."),
    ]  # '60 Capsules' leaps far past chapter 17: a count on the package, not chapter 60


def test_a_numbered_line_far_ahead_of_the_chapter_is_not_a_heading() -> None:
    text = ("14 CLINICAL STUDIES\nA randomized trial was run.\n29 Comparing Metformin and Glyburide\n"
            "Patients took both.\n16 HOW SUPPLIED\nBottles of 100.")
    assert list(dict.fromkeys(s for s, _ in sections_of(text))) == ["14 CLINICAL STUDIES", "16 HOW SUPPLIED"]


def test_a_subsection_after_chapters_left_out_is_still_a_heading() -> None:
    text = ("8.7 Hepatic Impairment\nNo change is needed.\n12.1 Mechanism of Action\nIt inhibits gyrase.\n"
            "29 Comparing Two Doses\nPatients took both.")
    assert list(dict.fromkeys(s for s, _ in sections_of(text))) == [
        "8.7 Hepatic Impairment", "12.1 Mechanism of Action"]


def test_a_grid_of_numbers_without_frames_is_read_as_rows_under_its_header_and_group() -> None:
    text = ("Annex 6. Equivalent prevalence\nPOC-CCA thresholds equivalent to Kato-Katz\n"
            "Kato-Katz POC-CCA Suggested threshold\nSingle\n1% 5-30% 10%\n25% 35-70% 50%\n"
            "Duplicate\n1% 5-25% 10%\n25% 30-70% 45%\nSource: Barenbold O, et al. 2018.")
    units = page_units([Page(1, "1", text)])
    rows = [(u.text, u.table_head.splitlines()) for u in units if u.kind == "table"]
    head = ["POC-CCA thresholds equivalent to Kato-Katz", "Kato-Katz POC-CCA Suggested threshold"]
    assert rows == [("1% 5-30% 10%", [*head, "Single"]), ("25% 35-70% 50%", [*head, "Single"]),
                    ("1% 5-25% 10%", [*head, "Duplicate"]), ("25% 30-70% 45%", [*head, "Duplicate"])]
    assert [u.text for u in units if u.kind == "text"] == ["Source: Barenbold O, et al. 2018."]
    # two lines of numbers are no grid: 'Take 1 2 3 tablets' stays a sentence
    assert all(u.kind == "text" for u in page_units([Page(1, "1", "Doses\n1 2 3\n4 5 6\nThen stop.")]))


def test_an_annex_is_a_heading() -> None:
    assert heading_of("Annex 4.2 Safety of praziquantel for treatment of schistosomiasis", set()) == (
        1, "Annex 4.2 Safety of praziquantel for treatment of schistosomiasis")
    assert heading_of("Annex 6 gives the conversion.", set()) is None


def test_a_numbered_reference_is_no_heading() -> None:
    assert heading_of("8. Ruberanziza E, Wittmann U, Mbituyumuremyi A, Mutabazi A, Campbell CH", set()) is None
    assert heading_of("8. Future research needs", set()) == (1, "8. Future research needs")


def test_a_capitals_title_wrapped_over_lines_is_one_heading_and_a_boxed_warning_holds_no_section() -> None:
    text = ("WARNING: SERIOUS ADVERSE REACTIONS INCLUDING TENDINITIS, TENDON\n"
            "RUPTURE, PERIPHERAL NEUROPATHY, CENTRAL NERVOUS SYSTEM EFFECTS AND\n"
            "EXACERBATION OF MYASTHENIA GRAVIS\nFluoroquinolones have been associated with tendinitis.\n"
            "1.1 Skin and Skin Structure Infections\nCiprofloxacin is indicated for skin infections.\n"
            "APPENDIX C: GUIDELINES FOR CONDUCTING AN IN VITRO ALCOHOL DOSE-\nDUMPING STUDY\n"
            "The sponsor should test drug release in alcohol.")
    assert list(dict.fromkeys(s for s, _ in sections_of(text))) == [
        "WARNING: SERIOUS ADVERSE REACTIONS INCLUDING TENDINITIS, TENDON RUPTURE, PERIPHERAL NEUROPATHY, "
        "CENTRAL NERVOUS SYSTEM EFFECTS AND EXACERBATION OF MYASTHENIA GRAVIS",
        "1.1 Skin and Skin Structure Infections",
        "APPENDIX C: GUIDELINES FOR CONDUCTING AN IN VITRO ALCOHOL DOSE-DUMPING STUDY"]


def test_label_with_only_capitals_headings_keeps_flat_sections() -> None:
    text = ("INDICATIONS AND USAGE\nTreats infections.\nDOSAGE AND ADMINISTRATION\nGive 500 mg twice daily.\n"
            "WARNINGS\nStop if a rash appears.")
    assert [s for s, _ in sections_of(text)] == ["INDICATIONS AND USAGE", "DOSAGE AND ADMINISTRATION", "WARNINGS"]


@pytest.mark.parametrize(("heading", "expected"), [
    ("6.2.1 Access group antibiotics", (6, 2, 1)), ("6. ANTI-INFECTIVE MEDICINES", (6,)),
    ("10.4. Recommendations for treatment", (10, 4)), ("RESERVE GROUP ANTIBIOTICS", None), ("Annex 2", None),
])
def test_section_number(heading: str, expected) -> None:
    assert section_number(heading) == expected


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((6, 2), (6, 2, 1), True), ((6, 2), (6, 3), True), ((6, 2), (7,), True), ((14,), (16,), True),
    ((17,), (60,), False), ((3,), (2,), False), ((6, 2), (6, 1), False), ((6, 2), (6, 2), False),
])
def test_continues(before: tuple[int, ...], after: tuple[int, ...], expected: bool) -> None:
    assert _continues(before, after) is expected


def test_record_list_sections_in_a_generated_pdf(tmp_path: Path, hash_embedder) -> None:
    spec = DocSpec(title="Antibiotic list", outline=False, blocks=[
        Heading("6", "ANTI-INFECTIVE MEDICINES"), Heading("6.2", "Antibacterials"),
        Paragraph("Antibiotics are grouped by the risk of resistance."),
        Paragraph("WATCH GROUP ANTIBIOTICS"), Paragraph("Watch antibiotics have a higher risk of resistance."),
        *medicine_list().blocks, Heading("6.3", "Antifungal medicines"), Paragraph("Fluconazole treats thrush."),
    ])
    _, chunks = chunks_of(render_pdf(tmp_path / "eml.pdf", spec), hash_embedder)
    top, access = "6 ANTI-INFECTIVE MEDICINES > 6.2 Antibacterials", "6.2.1 Access group antibiotics"
    assert [(c.kind, c.section) for c in chunks] == [
        ("text", top), ("text", f"{top} > WATCH GROUP ANTIBIOTICS"),
        ("table", f"{top} > {access}"),  # the medicines, not under WATCH GROUP ANTIBIOTICS
        ("text", f"{top} > {access}"),  # the note after the last medicine
        ("text", "6 ANTI-INFECTIVE MEDICINES > 6.3 Antifungal medicines"),
    ]


def test_edge_lines_that_differ_by_a_dose_are_not_running_lines() -> None:
    """Lines at the page edges that share a pattern but not a page number stay (only page counters and
    repeated text are running lines)."""
    from ingest.extract import strip_running_lines

    pages = ["Hdr\nA\nGive 5 mg daily", "Hdr\nB\nGive 10 mg daily", "Hdr\nC\nGive 20 mg daily"]
    assert strip_running_lines(pages) == ["A\nGive 5 mg daily", "B\nGive 10 mg daily", "C\nGive 20 mg daily"]
    counted = ["Hdr\nA\nPage 3 of 9", "Hdr\nB\nPage 4 of 9", "Hdr\nC\nPage 5 of 9"]
    assert strip_running_lines(counted) == ["A", "B", "C"]


@pytest.mark.parametrize("footer", ["Demonstration material | Page {n}", "{n} of 451", "Page {n} of 9",
                                    "https://www.fda.gov/drugs/label {n}/3", "{n}"])
def test_page_counters_are_running_lines_even_when_a_page_has_none(footer: str) -> None:
    """A counter is a running line by where its number stands, even where a scanned page (no text)
    breaks the count against the page index."""
    from ingest.extract import strip_running_lines

    pages = [f"Hdr\nBody {i} text here.\n{footer.format(n=n)}" for i, n in ((0, 1), (2, 2), (3, 3))]
    out = strip_running_lines([pages[0], "", pages[1], pages[2]])
    assert out == ["Body 0 text here.", "", "Body 2 text here.", "Body 3 text here."]
