"""Abbreviations a document defines count as their long form."""

from __future__ import annotations

from rag.abbreviations import definitions


def test_short_forms_spelled_by_the_initials_before_them_are_found() -> None:
    found = definitions([
        "Pediatric patients with heterozygous familial hypercholesterolemia (HeFH) start at 10 mg.",
        "Reduce the dose when creatinine clearance (CrCl) is below 30 mL/min.",
        "Center for Drug Evaluation and Research (CDER)",
    ])
    assert found["hefh"] == {"heterozygou", "familial", "hypercholesterolemia"}
    assert found["crcl"] == {"creatinine", "clearance"}
    assert found["cder"] == {"center", "drug", "evaluation", "research"}


def test_parentheses_that_are_not_definitions_are_left_alone() -> None:
    assert definitions(["Take 2 tablets (500 mg) daily.", "See Warnings (5.1).", "low dose (LD) given"]) == {
        "ld": {"low", "dose"}}
    assert definitions(["an unrelated phrase (XYZ)"]) == {}


def test_a_long_form_in_the_question_also_searches_its_short_form() -> None:
    from rag.lexical import Lexical

    rows = [("atorva", "ZORB | 1 INDICATIONS | Patients with heterozygous familial hypercholesterolemia (HeFH)."),
            ("atorva", "ZORB | 2.3 Pediatric Dosage | HeFH: start at 10 mg once daily."),
            ("other", "QUINT | 2 Dosage | Give 5 mg once daily.")]
    lexical = Lexical.build(rows)
    asked = {"heterozygou", "familial", "hypercholesterolemia", "dose"}
    assert lexical.abbreviating(frozenset(asked)) == {"hefh"}
    assert lexical.abbreviating(frozenset({"familial", "dose"})) == frozenset()  # the whole long form only
    found = [r for r, _ in lexical.ranking("heterozygous familial hypercholesterolemia dose hefh", None, 3)]
    assert 1 in found and 1 not in [r for r, _ in lexical.ranking(
        "heterozygous familial hypercholesterolemia dose", None, 3)]
