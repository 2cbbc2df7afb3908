"""Quotable units: what an answer may quote of a passage, and what it never does."""

from __future__ import annotations

import pytest

from rag.types import Chunk
from rag.units import context, heading, quotable, units


def chunk(text: str, kind: str = "text", section: str = "2 DOSAGE AND ADMINISTRATION", **kw) -> Chunk:
    return Chunk(chunk_id="c", doc_id="d", ordinal=0, page=1, page_end=1, page_label="1", section=section,
                 text=text, kind=kind, **kw)


@pytest.mark.parametrize(("text", "ok"), [
    ("Take 500 mg twice daily with meals.", True),
    ("What is type 2 diabetes?", False),  # a Medication Guide's own question
    ("DOSAGE AND ADMINISTRATION", False),
    ("Dosing Recommendations without Consideration of Genotype", False),
    ("See below.", False),  # a fragment
    ("I. INTRODUCTION .............................................. 1", False),  # contents
    ("1. Steinmann P, Keiser J, Bos R, Tanner M. Schistosomiasis and water resources.", False),
    ("18 Jiang, W, F Maklouf, DJ Schuirmann, X Zhang, 2015, A Bioequivalence Approach for Generic Narrow "
     "Therapeutic Index Drugs, AAPS J, 17(4):891-901.", False),
    ("Give 15 mg/kg (maximum 4 doses in 24 hours) for 3 days.", True),
    ("Loebstein R, Addis A, Ho E, et al. Pregnancy outcome following exposure.", False),
    ("Pediatrics. 1996;69:83-89 reported no malformations in exposed infants.", False),
    ("To report SUSPECTED ADVERSE REACTIONS, contact FDA at 1-800-FDA-1088 or www.fda.gov/medwatch.", False),
    ("In case of overdose, contact a Poison Control Center right away (1-800-222-1222).", True),
    ("( 2.1 , 2.2 , 2.3 )", False),  # cross-references alone
    ("Seasonal malaria chemoprevention (4.2.3)", False),  # a contents entry
    ("Hypersensitivity to metformin (4)", True),  # a Highlights item and its section
    ("2.1 Dosing for Adult and Pediatric Patients > 3 Months of Age 2.2 Dosing in Neonates and Infants", False),
    ("Give 2.5 mg daily; see 5.1 Bleeding and 5.2 Necrosis.", True),  # a sentence citing two sections
    ("Applications for NME NDAs or original BLAs received between", False),  # broken off
    ("Do not use right before or after heart surgery", True),  # a list item needs no full stop
    ('" for more information about side effects.', False),  # the rest of a sentence
    ("or within 1 year) and H. pylori infection at baseline.", False),
    ("If you have kidney disease, ask a doctor.", True),
    ("Office of Communications, Silver Spring, MD 20993-0002 Phone: 855-543-3784; "
     "https://www.fda.gov/Drugs/default.htm", False),  # a cover page's address block
    ("Department of Health and Human Services Food and Drug Administration Center for Drug Evaluation and "
     "Research (CDER) December 2017 Procedural", False),  # a title page's block of names
])
def test_quotable(text: str, ok: bool) -> None:
    assert quotable(text, "sentence") is ok


def test_heading_needs_capitals_and_no_closing_punctuation() -> None:
    assert heading("Adult Dosage for Metformin Hydrochloride Tablets")
    assert not heading("Discontinue metformin if eGFR falls below 30 mL/min.")


def test_prose_is_cut_at_bullets_and_highlights_items() -> None:
    c = chunk("Starting dose: 500 mg orally twice a day (2.1) Increase the dose in increments of 500 mg weekly "
              "(2.1) • Do not crush or chew the tablets. • Take with the evening meal.")
    assert [(u.text, u.kind) for u in units(c)] == [
        ("Starting dose: 500 mg orally twice a day (2.1)", "item"),
        ("Increase the dose in increments of 500 mg weekly (2.1)", "item"),
        ("Do not crush or chew the tablets.", "item"), ("Take with the evening meal.", "item")]


def test_a_list_items_stem_travels_with_it_and_is_no_unit_by_itself() -> None:
    c = chunk("Lisinopril tablets are contraindicated in patients with: • a history of angioedema related to "
              "previous treatment with an ACE inhibitor • hereditary or idiopathic angioedema. "
              "Do not co-administer aliskiren in patients with diabetes.", section="4 CONTRAINDICATIONS")
    stem = "Lisinopril tablets are contraindicated in patients with:"
    assert [(u.text, u.kind, u.head) for u in units(c)] == [
        ("a history of angioedema related to previous treatment with an ACE inhibitor", "item", stem),
        ("hereditary or idiopathic angioedema.", "item", stem),
        ("Do not co-administer aliskiren in patients with diabetes.", "sentence", "")]
    assert not quotable("Atorvastatin calcium tablets are indicated:", "item")
    assert "contraindicated" in context("LISINOPRIL TABLETS", "4 CONTRAINDICATIONS", units(c)[0])


def test_a_list_of_references_gives_no_units() -> None:
    cited = "Testing for G6PD deficiency for safe use of primaquine in radical cure of P. vivax (Policy brief)."
    assert units(chunk(cited, section="References")) == []
    assert units(chunk(cited, section="15 REFERENCES")) == []
    assert [u.text for u in units(chunk(cited, section="5.2.1.5 Uncomplicated malaria"))] == [cited]


def test_the_sections_own_heading_glued_on_is_left_out() -> None:
    c = chunk("Dosing Recommendations without Consideration of Genotype If the genotypes are not known, the "
              "initial dose is usually 2 to 5 mg once daily.",
              section="2 DOSAGE > 2.3 Dosing Recommendations without Consideration of Genotype")
    assert [u.text for u in units(c)] == ["If the genotypes are not known, the initial dose is usually 2 to 5 mg "
                                          "once daily."]


def test_a_recommendation_record_is_one_unit_and_rows_carry_their_head() -> None:
    rec = chunk("Recommendation 3 WHO suggests biannual preventive chemotherapy. Conditional recommendation "
                "Certainty of evidence: very low", kind="recommendation")
    assert [(u.text, u.kind) for u in units(rec)] == [(rec.text, "recommendation")]
    table = chunk("Table 1. Doses\nGroup | Dose\n\nAdults | 10 mg daily", kind="table")
    [row] = units(table)
    assert (row.text, row.kind, row.head) == ("Adults | 10 mg daily", "row", "Table 1. Doses\nGroup | Dose")
    assert context("ZORB", "2 DOSAGE", row) == "ZORB | 2 DOSAGE\nTable 1. Doses\nGroup | Dose\nAdults | 10 mg daily"


def test_a_long_run_of_list_lines_is_cut_where_a_new_line_began() -> None:
    lines = ("Do not use if you have ever had an allergic reaction to any other pain reliever or fever reducer "
             "right before or after heart surgery",
             "Ask a doctor before use if you have problems or serious side effects from taking pain relievers "
             "or fever reducers such as stomach bleeding",
             "Stop use and ask a doctor if you experience any of the following signs of stomach bleeding "
             "such as feeling faint or vomiting blood")
    got = [u.text for u in units(chunk(" ".join(lines), section="Warnings"))]
    assert got == list(lines)
    short = "Take it with Warfarin Sodium Tablets only when your doctor says so."  # a name, not a new line
    assert [u.text for u in units(chunk(short))] == [short]


def test_a_list_printed_without_bullets_is_cut_at_each_lower_case_entry() -> None:
    guide = chunk("Do not take metformin tablets if you: have severe kidney problems. are allergic to metformin. "
                  "Take it with meals (e.g. with breakfast).", section="MEDICATION GUIDE")
    stem = "Do not take metformin tablets if you:"
    assert [(u.text, u.kind, u.head) for u in units(guide)] == [
        ("Do not take metformin tablets if you: have severe kidney problems.", "item", ""),
        ("are allergic to metformin.", "item", stem),
        ("Take it with meals (e.g. with breakfast).", "sentence", "")]
    # a formulary's entries: each medicine by itself, a label before a colon being no stem
    eml = chunk("protamine sulfate Injection: 10 mg/mL in 5 mL ampoule. \uf06f warfarin Therapeutic alternatives "
                "to be reviewed Tablet: 1 mg; 2 mg; 5 mg (sodium).", section="10.2 Medicines affecting coagulation")
    assert [(u.text, u.head) for u in units(eml)] == [
        ("protamine sulfate Injection: 10 mg/mL in 5 mL ampoule.", ""),
        ("\uf06f warfarin Therapeutic alternatives to be reviewed Tablet: 1 mg; 2 mg; 5 mg (sodium).", "")]
    # an abbreviation's full stop ends no entry
    assert len(units(chunk("Use other drugs (e.g. theophylline, tizanidine) with caution."))) == 1
    assert len(units(chunk("Severely impaired patients (GFR < 30 mL/min. should not receive 875 mg)."))) == 1
