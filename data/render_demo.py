"""Render the demonstration corpus (two small, clearly fictional PDFs) with fpdf2.

The module doubles as a tiny, importable document renderer for tests::

    import sys; sys.path.insert(0, "data")
    from render_demo import DocSpec, Heading, Paragraph, Table, PageBreak, render_pdf

    render_pdf(tmp_path / "x.pdf", DocSpec(title="T", blocks=[Heading("1", "Scope"), Paragraph("...")]))

Running it as a script (``python data/render_demo.py``) rewrites ``data/demo_guideline.pdf`` and
``data/demo_formulary.pdf`` byte-for-byte deterministically (fixed creation date, fixed metadata),
then checks ``data/demo_eval.jsonl`` against the rendered text (``--no-check`` skips that).

Everything here is DEMONSTRATION MATERIAL written for this project - NOT FOR CLINICAL USE.
Only core fonts (Helvetica) are used, so all text must be Latin-1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

__all__ = [
    "DEMO_MARK",
    "BulletList",
    "DocSpec",
    "Heading",
    "PageBreak",
    "Paragraph",
    "Table",
    "Title",
    "printed_page_label",
    "render_pdf",
    "guideline_spec",
    "formulary_spec",
    "render_demo_corpus",
]

DEMO_MARK = "DEMONSTRATION MATERIAL - NOT FOR CLINICAL USE"
FIXED_CREATION_DATE = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
DATA_DIR = Path(__file__).resolve().parent
FONT = "Helvetica"


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    """Large bold title (cover pages). Not added to the outline."""

    text: str
    subtitle: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class BulletList:
    items: Sequence[str]


@dataclass(frozen=True)
class Heading:
    """A section heading rendered as ``"{number} {title}"`` (just ``title`` when number is empty).

    The outline level is the number of dots in ``number`` ("3" -> 0, "3.3" -> 1) unless ``level``
    is given; unnumbered (label-style) headings default to level 0.
    """

    number: str
    title: str
    level: int | None = None

    @property
    def text(self) -> str:
        return f"{self.number} {self.title}" if self.number else self.title

    @property
    def outline_level(self) -> int:
        if self.level is not None:
            return self.level
        return self.number.count(".") if self.number else 0


@dataclass(frozen=True)
class Table:
    """A grid table with a caption line above it; ``caption`` is printed verbatim ("Table 1. ...")."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    col_widths: Sequence[float] | None = None  # relative widths, one per column

    def __post_init__(self) -> None:
        n = len(self.header)
        if any(len(r) != n for r in self.rows):
            raise ValueError(f"{self.caption!r}: every row must have {n} cells")
        if self.col_widths is not None and len(self.col_widths) != n:
            raise ValueError(f"{self.caption!r}: col_widths must have {n} entries")


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Title | Paragraph | BulletList | Heading | Table | PageBreak


@dataclass(frozen=True)
class DocSpec:
    """A document: blocks plus the running header/footer printed on every page.

    ``page_label_offset`` is the number of front-matter pages: those are printed (and labelled in
    /PageLabels) as lowercase roman numerals i, ii, ...; the page after them is printed 1.
    With 0, printed page numbers equal the 1-based PDF page index and no /PageLabels is written.
    """

    title: str
    blocks: Sequence[Block]
    header_text: str | None = None  # default: "<title> | DEMONSTRATION MATERIAL - NOT FOR CLINICAL USE"
    footer_text: str | None = None  # default: "Demonstration material - not for clinical use"
    page_label_offset: int = 0
    outline: bool = True
    author: str = "guideline-qa project (demonstration material)"
    subject: str = DEMO_MARK
    creation_date: datetime = field(default=FIXED_CREATION_DATE)

    @property
    def header_line(self) -> str:
        return self.header_text if self.header_text is not None else f"{self.title} | {DEMO_MARK}"

    @property
    def footer_line(self) -> str:
        return (
            self.footer_text
            if self.footer_text is not None
            else "Demonstration material - not for clinical use"
        )


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _roman(n: int) -> str:
    out = []
    for value, sym in (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    ):  # fmt: skip
        while n >= value:
            out.append(sym)
            n -= value
    return "".join(out)


def printed_page_label(page_index: int, page_label_offset: int = 0) -> str:
    """The page number printed on (and labelled for) 1-based PDF page ``page_index``."""
    if page_index < 1:
        raise ValueError("page_index is 1-based")
    if page_index <= page_label_offset:
        return _roman(page_index)
    return str(page_index - page_label_offset)


class _DocPDF(FPDF):
    def __init__(self, spec: DocSpec) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.spec = spec
        self.set_margins(left=20, top=22, right=20)
        self.set_auto_page_break(auto=True, margin=20)

    def header(self) -> None:
        # /PageLabels: front matter in lowercase roman, body restarting at 1.
        off = self.spec.page_label_offset
        if off > 0 and self.page == 1:
            self.set_page_label(label_style="r", label_start=1)
        elif off > 0 and self.page == off + 1:
            self.set_page_label(label_style="D", label_start=1)
        self.set_text_color(90, 90, 90)
        self.set_y(10)
        self._fit_line(self.spec.header_line, 8)
        self.set_draw_color(150, 150, 150)
        rule_y = max(15.5, self.get_y() + 1)
        self.line(self.l_margin, rule_y, self.w - self.r_margin, rule_y)
        self.set_text_color(0, 0, 0)
        self.set_y(max(self.t_margin, rule_y + 4))

    def footer(self) -> None:
        label = printed_page_label(self.page, self.spec.page_label_offset)
        if self.spec.page_label_offset:
            # The printed number and the /PageLabels entry written by fpdf2 must agree.
            assert self.get_page_label() == label, (self.get_page_label(), label)
        self.set_y(-14)
        self.set_text_color(90, 90, 90)
        self._fit_line(f"{self.spec.footer_line} | Page {label}", 8)
        self.set_text_color(0, 0, 0)

    def _fit_line(self, text: str, size: float) -> None:
        """One centred line, shrinking the font (down to 6 pt) to fit the text width."""
        width = self.w - self.l_margin - self.r_margin
        self.set_font(FONT, "", size)
        while size > 6 and self.get_string_width(text) > width:
            size -= 0.5
            self.set_font(FONT, "", size)
        self.multi_cell(0, 4, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _check_latin1(text: str, where: str) -> str:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}: core fonts need Latin-1 text, got {text!r}") from exc
    return text


_HEADING_SIZE = {0: 14, 1: 12}


def _render_block(pdf: _DocPDF, block: Block, spec: DocSpec) -> None:
    if isinstance(block, PageBreak):
        pdf.add_page()
    elif isinstance(block, Title):
        pdf.set_font(FONT, "B", 20)
        pdf.multi_cell(0, 9, _check_latin1(block.text, "Title"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if block.subtitle:
            pdf.ln(2)
            pdf.set_font(FONT, "", 12)
            pdf.multi_cell(0, 6, _check_latin1(block.subtitle, "Title"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(6)
    elif isinstance(block, Heading):
        text = _check_latin1(block.text, "Heading")
        level = block.outline_level
        size = _HEADING_SIZE.get(level, 11)
        if pdf.will_page_break(size + 14):  # keep a heading with the first lines below it
            pdf.add_page()
        pdf.ln(3 if level else 4)
        if spec.outline:
            pdf.start_section(text, level=level)
        pdf.set_font(FONT, "B", size)
        pdf.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)
    elif isinstance(block, Paragraph):
        pdf.set_font(FONT, "B" if block.bold else "", 10)
        pdf.multi_cell(0, 5, _check_latin1(block.text, "Paragraph"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2.5)
    elif isinstance(block, BulletList):
        pdf.set_font(FONT, "", 10)
        for item in block.items:
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(4, 5, "-")
            pdf.multi_cell(0, 5, _check_latin1(item, "BulletList"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1)
        pdf.ln(1.5)
    elif isinstance(block, Table):
        if pdf.will_page_break(30):  # keep the caption with the heading row and first rows
            pdf.add_page()
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(0, 5, _check_latin1(block.caption, "Table"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)
        pdf.set_font(FONT, "", 8.5)
        pdf.set_draw_color(0, 0, 0)
        with pdf.table(
            col_widths=tuple(block.col_widths) if block.col_widths else None,
            text_align="LEFT",
            line_height=4.2,
            padding=1.2,
            headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
            first_row_as_headings=True,
        ) as table:
            for cells in [block.header, *block.rows]:
                row = table.row()
                for cell in cells:
                    row.cell(_check_latin1(cell, "Table"))
        pdf.ln(4)
    else:  # pragma: no cover - guarded by the Block union
        raise TypeError(f"unknown block {block!r}")


def render_pdf(path: str | Path, spec: DocSpec) -> Path:
    """Render ``spec`` to ``path`` (parent folders created) and return the path."""
    path = Path(path)
    _check_latin1(spec.title, "DocSpec.title")
    _check_latin1(spec.header_line, "DocSpec.header_text")
    _check_latin1(spec.footer_line, "DocSpec.footer_text")
    pdf = _DocPDF(spec)
    pdf.set_title(spec.title)
    pdf.set_author(spec.author)
    pdf.set_subject(spec.subject)
    pdf.set_creator("data/render_demo.py")
    pdf.set_lang("en")
    pdf.set_creation_date(spec.creation_date)
    pdf.add_page()
    for block in spec.blocks:
        _render_block(pdf, block, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


# --------------------------------------------------------------------------------------------------
# The demo content (fictional, written for this project)
# --------------------------------------------------------------------------------------------------

GUIDELINE_TITLE = "Demonstration Guideline: Management of Community-Acquired Pneumonia in Adults"
FORMULARY_TITLE = "Demonstration Formulary: Adult Oral Antibiotics"


def guideline_spec() -> DocSpec:
    blocks: list[Block] = [
        Title(GUIDELINE_TITLE, "Version 2026 | " + DEMO_MARK),
        Paragraph(
            "This document is demonstration material written for the guideline-qa project. It "
            "imitates the structure of a clinical guideline so that retrieval, chunking and citation "
            "can be tested. It is not a clinical guideline and must not be used to make decisions "
            "about patient care.",
            bold=True,
        ),
        Paragraph("Summary of key recommendations", bold=True),
        BulletList(
            [
                "Assess severity with a CURB-65 style score and clinical judgement at first contact.",
                "Offer amoxicillin as first choice for low-severity pneumonia managed in the community.",
                "Give antibiotics within 4 hours of presentation to hospital, and within 1 hour if "
                "sepsis is suspected.",
                "Treat for a total of 5 days in most patients, and stop antibiotics at 5 days unless "
                "the patient is still unstable.",
                "Adjust doses of renally cleared antibiotics when the eGFR is below 30 mL/min/1.73 m2.",
                "Review every patient at 48 to 72 hours and de-escalate or switch to oral treatment when "
                "possible.",
            ]
        ),
        Paragraph(
            "Document history: version 2026 replaces the 2024 demonstration edition. Changes: the "
            "treatment duration table was simplified and a section on monitoring was added."
        ),
        PageBreak(),
        # ---- printed page 1
        Heading("1", "Scope"),
        Paragraph(
            "This guideline covers the assessment and empirical antibiotic treatment of "
            "community-acquired pneumonia (CAP) in adults aged 18 years and over, in primary care and "
            "in hospital. It does not cover hospital-acquired pneumonia, ventilator-associated "
            "pneumonia, pneumonia in people who are severely immunocompromised, or children."
        ),
        Paragraph(
            "Community-acquired pneumonia is defined here as an acute infection of the lung "
            "parenchyma, with new shadowing on a chest X-ray where one is available, acquired outside "
            "hospital or diagnosed within 48 hours of admission."
        ),
        Heading("2", "Assessment"),
        Paragraph(
            "Take a history and examine the patient, including respiratory rate, blood pressure, "
            "oxygen saturation, temperature and mental state. In hospital, obtain a chest X-ray, full "
            "blood count, urea and electrolytes, and C-reactive protein. Send blood cultures and a "
            "sputum sample before the first antibiotic dose in moderate or high-severity pneumonia, "
            "without delaying treatment."
        ),
        Heading("2.1", "Severity scoring"),
        Paragraph(
            "Use a CURB-65 style score together with clinical judgement. Score one point for each of "
            "the following features:"
        ),
        BulletList(
            [
                "Confusion (new disorientation in person, place or time).",
                "Urea above 7 mmol/L (hospital setting only; use CRB-65 in the community).",
                "Respiratory rate of 30 breaths per minute or more.",
                "Blood pressure: systolic below 90 mmHg or diastolic 60 mmHg or less.",
                "Age 65 years or over.",
            ]
        ),
        Paragraph(
            "Interpretation: a score of 0 or 1 indicates low severity, and most patients can be "
            "treated at home. A score of 2 indicates moderate severity; consider hospital assessment. "
            "A score of 3 to 5 indicates high severity; arrange urgent hospital admission and assess "
            "for critical care. The score supports, and does not replace, clinical judgement: "
            "consider social circumstances, comorbidities and oxygen saturation below 92%."
        ),
        PageBreak(),
        # ---- printed page 2
        Heading("3", "Treatment"),
        Paragraph(
            "Start empirical antibiotic treatment as soon as the diagnosis is made. Choose the regimen "
            "by severity as shown in Table 1, taking into account previous microbiology results, "
            "recent antibiotic use, allergies and local resistance patterns. Give the first dose "
            "within 4 hours of presentation to hospital, and within 1 hour when sepsis is suspected."
        ),
        Table(
            "Table 1. Recommended empirical antibiotic regimens by severity",
            ["Severity", "First choice", "Alternative", "Duration"],
            [
                [
                    "Low (score 0-1), community",
                    "amoxicillin 500 mg orally three times daily",
                    "doxycycline 200 mg orally on day 1, then 100 mg once daily; or clarithromycin "
                    "500 mg orally twice daily",
                    "5 days",
                ],
                [
                    "Moderate (score 2)",
                    "amoxicillin 500 mg orally three times daily, plus clarithromycin 500 mg orally "
                    "twice daily if atypical infection is suspected",
                    "doxycycline 200 mg orally on day 1, then 100 mg once daily",
                    "5 days",
                ],
                [
                    "High (score 3-5)",
                    "co-amoxiclav 1.2 g intravenously three times daily, plus clarithromycin 500 mg "
                    "intravenously twice daily",
                    "levofloxacin 500 mg intravenously twice daily (after specialist advice)",
                    "5 days, review at 48 to 72 hours",
                ],
                [
                    "Penicillin allergy, low or moderate",
                    "doxycycline 200 mg orally on day 1, then 100 mg once daily",
                    "clarithromycin 500 mg orally twice daily",
                    "5 days",
                ],
                [
                    "Suspected Legionella, any severity",
                    "add clarithromycin 500 mg twice daily to the regimen above",
                    "levofloxacin 500 mg orally twice daily (after specialist advice)",
                    "7 to 10 days",
                ],
            ],
            col_widths=(22, 34, 32, 12),
        ),
        Heading("3.1", "Outpatient treatment"),
        Paragraph(
            "For adults with low-severity pneumonia managed in the community, offer amoxicillin "
            "500 mg orally three times daily. If amoxicillin is unsuitable, offer doxycycline or "
            "clarithromycin (see Table 1). Advise the patient to seek help if symptoms worsen or do "
            "not start to improve within 3 days. Higher doses of amoxicillin (1 g three times daily) "
            "may be used on specialist advice."
        ),
        Heading("3.2", "Inpatient treatment"),
        Paragraph(
            "For moderate-severity pneumonia in hospital, give amoxicillin orally, adding "
            "clarithromycin when an atypical pathogen is suspected. For high-severity pneumonia, give "
            "co-amoxiclav 1.2 g intravenously three times daily with clarithromycin 500 mg "
            "intravenously twice daily. Switch from intravenous to oral treatment when the patient "
            "is clinically improving, has been afebrile for 48 hours and can take oral medicines."
        ),
        PageBreak(),
        # ---- printed page 3
        Heading("3.3", "Dosage in renal impairment"),
        Paragraph(
            "Estimate renal function (eGFR, or creatinine clearance for narrow-therapeutic-index "
            "drugs and at extremes of body weight) before prescribing. Amoxicillin and doxycycline "
            "need no dose change when the eGFR is 30 mL/min/1.73 m2 or above."
        ),
        BulletList(
            [
                "Clarithromycin: if the eGFR is below 30 mL/min/1.73 m2, reduce the dose by half, to "
                "250 mg twice daily.",
                "Co-amoxiclav (intravenous): if the eGFR is 10 to 30 mL/min/1.73 m2, give 1.2 g "
                "initially and then 600 mg every 12 hours.",
                "Levofloxacin: if the eGFR is 20 to 50 mL/min/1.73 m2, give 500 mg initially and "
                "then 250 mg every 12 hours.",
                "Amoxicillin: if the eGFR is below 30 mL/min/1.73 m2, monitor closely and seek "
                "pharmacist advice; no routine reduction is needed for a 5-day course.",
            ]
        ),
        Paragraph(
            "Doxycycline is suitable in renal impairment at the usual dose. Recheck renal function "
            "within 48 hours in patients with acute kidney injury."
        ),
        Heading("4", "Duration and follow-up"),
        Paragraph(
            "Prescribe a 5-day course of antibiotics for low, moderate and high-severity pneumonia. "
            "Stop antibiotic treatment after 5 days unless microbiological results suggest a longer "
            "course is needed, or the patient is not clinically stable (for example, fever in the "
            "past 48 hours or more than one sign of clinical instability). Legionella pneumonia is "
            "treated for 7 to 10 days."
        ),
        Paragraph(
            "Explain to patients that after starting treatment their symptoms should steadily "
            "improve, although the rate of improvement varies: fever usually settles within 1 week, "
            "cough and sputum by 3 weeks, and fatigue may last up to 6 months. Arrange a clinical "
            "review at 6 weeks, and a repeat chest X-ray at 6 weeks for people who are over 50 "
            "years, who smoke, or whose symptoms persist."
        ),
        Heading("5", "Penicillin allergy"),
        Paragraph(
            "Ask about the nature of any reported penicillin allergy. A history of immediate "
            "hypersensitivity (anaphylaxis, angioedema or urticaria within an hour of a dose) "
            "excludes all penicillins, including amoxicillin and co-amoxiclav. In these patients, "
            "use doxycycline 200 mg on day 1 then 100 mg once daily, or clarithromycin 500 mg "
            "twice daily, for low or moderate severity. For high severity, seek specialist advice; "
            "levofloxacin is an option. Record the allergy and its type in the patient record and "
            "consider referral for penicillin allergy testing after recovery."
        ),
        PageBreak(),
        # ---- printed page 4
        Heading("6", "Monitoring"),
        Paragraph(
            "Monitor temperature, respiratory rate, pulse, blood pressure, mental state and oxygen "
            "saturation at least twice daily in hospital, and more often in high-severity pneumonia. "
            "Aim for an oxygen saturation of 94 to 98%, or 88 to 92% in people at risk of "
            "hypercapnic respiratory failure."
        ),
        Paragraph(
            "Repeat C-reactive protein at 48 to 72 hours in hospitalised patients who are not "
            "improving as expected. If the C-reactive protein has not fallen by at least half, "
            "consider complications such as empyema, an alternative diagnosis or a resistant "
            "organism, and review the antibiotic choice."
        ),
        Paragraph(
            "Before discharge, check that in the previous 24 hours the patient has had no more than "
            "one of: temperature above 37.5 C, respiratory rate of 24 breaths per minute or more, "
            "heart rate above 100 beats per minute, systolic blood pressure of 90 mmHg or less, "
            "oxygen saturation below 90% on room air, abnormal mental status, or inability to eat "
            "without assistance."
        ),
        Heading("7", "About this document"),
        Paragraph(
            "This demonstration guideline was written for software testing. Its structure (numbered "
            "sections, a recommendation table and a running header and footer) is realistic; its "
            "content is simplified and must not be used for patient care."
        ),
    ]
    return DocSpec(
        title=GUIDELINE_TITLE,
        blocks=blocks,
        header_text=f"Demonstration Guideline: Community-Acquired Pneumonia in Adults (2026) | {DEMO_MARK}",
        footer_text="Demonstration material - not for clinical use",
        page_label_offset=1,
    )


def formulary_spec() -> DocSpec:
    rows = [
        ["Amoxicillin", "250 mg, 500 mg capsules", "500 mg three times daily", "3 g",
         "eGFR below 30: usual dose, seek pharmacist advice for long courses"],
        ["Co-amoxiclav", "500/125 mg tablets", "one 500/125 mg tablet three times daily",
         "1.5 g amoxicillin", "eGFR below 30: 500/125 mg twice daily"],
        ["Doxycycline", "100 mg capsules", "200 mg on day 1, then 100 mg once daily", "200 mg",
         "No adjustment needed"],
        ["Clarithromycin", "250 mg, 500 mg tablets", "500 mg twice daily", "1 g",
         "eGFR below 30: halve the dose"],
        ["Azithromycin", "250 mg, 500 mg tablets", "500 mg once daily for 3 days", "500 mg",
         "eGFR below 10: use with caution"],
        ["Flucloxacillin", "250 mg, 500 mg capsules", "500 mg to 1 g four times daily", "4 g",
         "eGFR below 10: maximum 4 g daily"],
        ["Phenoxymethylpenicillin", "250 mg tablets", "500 mg four times daily", "4 g",
         "No adjustment needed"],
        ["Cefalexin", "250 mg, 500 mg capsules", "500 mg two or three times daily", "4 g",
         "eGFR 10 to 40: maximum 1.5 g daily"],
        ["Nitrofurantoin", "100 mg modified-release capsules", "100 mg twice daily", "200 mg",
         "Avoid if eGFR below 45"],
        ["Trimethoprim", "100 mg, 200 mg tablets", "200 mg twice daily", "400 mg",
         "eGFR 15 to 30: halve the dose after 3 days; below 15: halve the dose"],
        ["Ciprofloxacin", "250 mg, 500 mg tablets", "500 mg twice daily", "1.5 g",
         "eGFR below 30: halve the dose"],
        ["Metronidazole", "200 mg, 400 mg tablets", "400 mg three times daily", "1.2 g",
         "No adjustment needed"],
    ]  # fmt: skip
    blocks: list[Block] = [
        Title(FORMULARY_TITLE, "Version 2026 | " + DEMO_MARK),
        Paragraph(
            "This formulary extract is demonstration material written for the guideline-qa project. "
            "It imitates a product-label style document so that table extraction and citation can be "
            "tested. It must not be used for prescribing.",
            bold=True,
        ),
        Heading("", "DOSAGE AND ADMINISTRATION"),
        Paragraph(
            "Doses are for adults with normal hepatic function. Renal adjustments refer to the "
            "estimated glomerular filtration rate (eGFR) in mL/min/1.73 m2. Take tablets and "
            "capsules with a full glass of water; doxycycline should be taken sitting or standing "
            "upright."
        ),
        Table(
            "Table 1. Adult oral dosing",
            ["Drug", "Strength", "Usual adult dose", "Maximum daily dose", "Renal adjustment"],
            rows,
            col_widths=(23, 20, 22, 14, 21),
        ),
        Heading("", "CONTRAINDICATIONS"),
        BulletList(
            [
                "Penicillins (amoxicillin, co-amoxiclav, flucloxacillin, phenoxymethylpenicillin): "
                "history of immediate hypersensitivity to any penicillin.",
                "Co-amoxiclav and flucloxacillin: history of cholestatic jaundice or hepatic "
                "dysfunction with the same drug.",
                "Doxycycline: pregnancy, breastfeeding and children under 12 years.",
                "Nitrofurantoin: eGFR below 45, and at term in pregnancy.",
                "Trimethoprim: blood dyscrasias and the first trimester of pregnancy.",
            ]
        ),
        Heading("", "WARNINGS AND PRECAUTIONS"),
        BulletList(
            [
                "Clarithromycin and azithromycin can prolong the QT interval; avoid with other drugs "
                "that prolong the QT interval. Clarithromycin interacts with statins: withhold "
                "simvastatin during treatment.",
                "Ciprofloxacin: fluoroquinolones can cause tendon damage, including tendon rupture, "
                "especially in people over 60 years or taking corticosteroids; stop at the first "
                "sign of tendon pain.",
                "Metronidazole: avoid alcohol during treatment and for 48 hours after the last dose.",
                "Trimethoprim can raise serum potassium; monitor in renal impairment and with other "
                "drugs that cause hyperkalaemia.",
                "All antibiotics: Clostridioides difficile associated diarrhoea has been reported; "
                "advise patients to seek help for severe or persistent diarrhoea.",
            ]
        ),
    ]
    return DocSpec(
        title=FORMULARY_TITLE,
        blocks=blocks,
        header_text=f"{FORMULARY_TITLE} (version 2026) | {DEMO_MARK}",
        footer_text="Demonstration material - not for clinical use",
    )


DEMO_DOCS = {"demo_guideline.pdf": guideline_spec, "demo_formulary.pdf": formulary_spec}


def render_demo_corpus(out_dir: str | Path = DATA_DIR) -> list[Path]:
    out_dir = Path(out_dir)
    return [render_pdf(out_dir / name, make()) for name, make in DEMO_DOCS.items()]


# --------------------------------------------------------------------------------------------------
# Eval-set check: every must_include term occurs on one of its listed pages
# --------------------------------------------------------------------------------------------------


def check_eval(eval_path: str | Path, pdf_dir: str | Path) -> list[str]:
    """Return a list of problems with ``eval_path`` (empty when it is consistent with the PDFs)."""
    from pypdf import PdfReader  # only needed for the check

    pdf_dir = Path(pdf_dir)
    texts: dict[str, list[str]] = {}
    problems: list[str] = []
    keys = {"id", "question", "answerable", "answer", "must_include", "sources", "category", "difficulty"}
    for n, line in enumerate(Path(eval_path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        qid = item.get("id", f"line {n}")
        if set(item) != keys:
            problems.append(f"{qid}: keys {sorted(item)} != {sorted(keys)}")
            continue
        if not item["answerable"]:
            if item["answer"] or item["must_include"] or item["sources"]:
                problems.append(f"{qid}: unanswerable items need empty answer, must_include and sources")
            continue
        if not item["sources"] or not item["must_include"]:
            problems.append(f"{qid}: answerable items need sources and must_include")
        pages_text = []
        for src in item["sources"]:
            doc = src["doc"]
            if doc not in texts:
                texts[doc] = [p.extract_text() or "" for p in PdfReader(pdf_dir / doc).pages]
            for page in src["pages"]:
                if not 1 <= page <= len(texts[doc]):
                    problems.append(f"{qid}: {doc} has no page {page}")
                    continue
                pages_text.append(texts[doc][page - 1].lower())
        for term in item["must_include"]:
            if term.lower() not in item["answer"].lower():
                problems.append(f"{qid}: must_include {term!r} is not in the reference answer")
            if not any(term.lower() in t for t in pages_text):
                flat = [re.sub(r"\s+", " ", t) for t in pages_text]
                hint = " (only after joining wrapped lines)" if any(term.lower() in t for t in flat) else ""
                problems.append(f"{qid}: {term!r} not found on {item['sources']}{hint}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(DATA_DIR), help="where to write the PDFs")
    parser.add_argument("--no-check", action="store_true", help="skip checking demo_eval.jsonl")
    args = parser.parse_args(argv)
    for path in render_demo_corpus(args.out_dir):
        print(f"wrote {path}")
    eval_path = DATA_DIR / "demo_eval.jsonl"
    if not args.no_check and eval_path.exists():
        problems = check_eval(eval_path, args.out_dir)
        for p in problems:
            print(f"eval check: {p}", file=sys.stderr)
        if problems:
            return 1
        print(f"eval check: {eval_path.name} OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
