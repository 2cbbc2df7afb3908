"""Query understanding: subjects and products, synonyms, intents, values, and bands that contain a value."""

from __future__ import annotations

import dataclasses

import pytest

from rag.query import Library, Query, Value, band_contains, formulations, understand
from rag.types import Document
from rag.values import parse_values


def doc(doc_id: str, title: str, family: str, doc_type: str = "label") -> Document:
    return Document(doc_id=doc_id, sha256=doc_id, file_name=f"{doc_id}.pdf", title=title, family=family,
                    version="2025", doc_type=doc_type)


DOCS = [
    doc("met-ir", "METFORMIN HYDROCHLORIDE TABLETS", "fda-metformin"),
    doc("met-er", "METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS", "fda-metformin-extended-release"),
    doc("cip-ir", "CIPROFLOXACIN", "fda-ciprofloxacin"),
    doc("cip-er", "Ciprofloxacin Extended-Release Tablets", "fda-ciprofloxacin-extended-release"),
    doc("apap", "Acetaminophen USP 325 mg Tablets", "fda-acetaminophen"),
    doc("malaria", "WHO guidelines for malaria, 16 October 2023", "who-guidelines-malaria", "guideline"),
    doc("eml", "WHO EML 23rd List (2023)", "who-essential-medicines", "formulary"),
]
LIB = Library.build(DOCS)


def ask(question: str, library: Library = LIB) -> Query:
    return understand(question, library)


# ---- subjects and products ----

def test_plain_product_name_has_both_products_as_subjects_and_prefers_the_plain_one() -> None:
    q = ask("What is the usual starting dose of metformin?")
    assert q.subjects == {"met-ir", "met-er"}
    assert q.preferred == {"met-ir"}
    assert q.names == ("metformin",)


@pytest.mark.parametrize("question", [
    "How is metformin extended-release started and titrated?",
    "How should Glucophage XR tablets be taken?",  # a brand name and an abbreviated form
])
def test_a_named_form_selects_only_that_product(question: str) -> None:
    q = ask(question)
    assert q.subjects == q.preferred == {"met-er"}


def test_ciprofloxacin_products_are_told_apart() -> None:
    assert ask("Can Cipro be taken with milk?").preferred == {"cip-ir"}
    assert ask("Can Cipro be taken with milk?").subjects == {"cip-ir", "cip-er"}
    assert ask("ciprofloxacin extended-release dose for cystitis").subjects == {"cip-er"}


def test_comparing_immediate_and_extended_release_keeps_both_products() -> None:
    q = ask("Does food affect immediate-release and extended-release metformin differently?")
    assert q.subjects == q.preferred == {"met-ir", "met-er"}


def test_a_synonym_finds_the_label_and_expands_the_terms() -> None:
    q = ask("What is the maximum daily dose of paracetamol for adults?")
    assert q.subjects == q.preferred == {"apap"}
    assert q.names == ("acetaminophen",)
    assert "paracetamol" in q.terms and "acetaminophen" not in q.terms
    assert q.expansions[0] == "acetaminophen"  # the canonical name first
    assert not set(q.expansions) & set(q.terms)


def test_a_disease_named_in_a_guideline_title_makes_it_a_subject() -> None:
    assert ask("What is the first-line treatment of uncomplicated malaria?").subjects == {"malaria"}
    assert ask("Which drugs prevent malarial relapse?").subjects == {"malaria"}  # 'malarial' meets 'malaria'
    assert "malaria" in ask("Which drugs prevent malarial relapse?").names


def test_an_acronym_title_is_named_by_the_words_it_abbreviates() -> None:
    assert ask("What does [c] mean in the WHO Essential Medicines List?").subjects == {"eml"}
    assert ask("Is warfarin on the EML?").subjects == {"eml"}


def test_a_question_naming_two_drugs_has_both_subjects() -> None:
    q = ask("I'm on metformin. Can I take acetaminophen for a headache?")
    assert q.subjects == {"met-ir", "met-er", "apap"}
    assert q.preferred == {"met-ir", "apap"}


def test_a_question_naming_nothing_in_the_library_has_no_subject() -> None:
    q = ask("What is the dose of lisinopril for hypertension?")
    assert q.subjects == q.preferred == frozenset()
    assert q.names == ("lisinopril",)  # still named, for the caller to see it is not covered


def test_everyday_title_words_name_nothing_unless_the_family_repeats_them() -> None:
    docs = [doc("ba", "General Considerations for Bioavailability Studies", "fda-guidance-bioavailability",
                "guidance"), DOCS[5]]
    everyday = {"general", "considerations", "consideration", "studies", "study", "malaria", "guidelines"}
    plain, strict = Library.build(docs), Library.build(docs, common=lambda t: t in everyday)
    question = "What general considerations apply to studies?"
    assert ask(question, plain).subjects == {"ba"}
    assert ask(question, strict).subjects == frozenset()
    assert ask("bioavailability study design", strict).subjects == {"ba"}
    # 'malaria' is an everyday word piece, but the guideline's family name says it is its subject
    assert ask("treatment of malaria", strict).subjects == {"malaria"}


def test_library_entries_record_title_drugs_and_forms() -> None:
    er = next(e for e in LIB.entries if e.doc_id == "met-er")
    assert er.drugs == {"metformin"} and er.forms == {"extended-release"}
    assert "glucophage" in er.synonyms
    assert ("metformin", "metformin") in er.naming
    assert not any(w in ("hydrochloride", "tablets", "extended") for _, w in er.naming)


def test_formulations_have_one_name_each() -> None:
    assert formulations("Cipro XR") == formulations("Extended-Release Tablets") == {"extended-release"}
    assert formulations("go to the ER now") == frozenset()  # the emergency room is no dosage form
    assert formulations("powder for injection") == {"injection"}


# ---- terms, intents, patient, amount ----

def test_terms_are_stems_in_order_without_repeats() -> None:
    q = ask("Doses  of metformin:   metformin doses?")
    assert q.text == "Doses of metformin: metformin doses?"
    assert q.terms == ("dose", "metformin")


@pytest.mark.parametrize(("question", "intents"), [
    ("What is the recommended dosage of metformin?", {"dosing", "recommendation"}),
    ("Who should not take ciprofloxacin?", {"contraindication"}),
    ("What are the common side effects of acetaminophen?", {"adverse"}),
    ("Can I take acetaminophen with warfarin?", {"interaction"}),
    ("Is metformin safe while breastfeeding?", {"pregnancy", "contraindication"}),
    ("What happens after an overdose of acetaminophen?", {"overdose"}),
    ("How should the oral suspension be stored after reconstitution?", {"storage"}),
    ("How often should INR be monitored?", {"monitoring"}),
    ("Dose adjustment in kidney disease?", {"renal", "dosing"}),
    ("Is it safe with liver cirrhosis?", {"hepatic"}),
    ("What is the dose for children?", {"pediatric", "dosing"}),
    ("What is schistosomiasis?", {"definition"}),
    ("How does the guideline define a hot-spot community?", {"definition"}),
])
def test_intents(question: str, intents: set[str]) -> None:
    assert intents <= ask(question).intents


def test_intents_absent_when_not_asked() -> None:
    assert ask("What is the maximum daily dose of acetaminophen?").intents == {"dosing"}
    assert "pediatric" not in ask("Is the dose changed in Child-Pugh class C?").intents
    assert "definition" not in ask("What is the dose of metformin?").intents


def test_values_give_intents_of_their_own() -> None:
    assert "renal" in ask("Metformin in a patient with an eGFR of 38?").intents
    assert "pediatric" in ask("Acetaminophen for a 9-year-old?").intents
    assert "pediatric" not in ask("Acetaminophen for a 40 year old man?").intents


@pytest.mark.parametrize(("question", "patient"), [
    ("Can I take acetaminophen with warfarin?", True),
    ("My son is 8. How much acetaminophen can he have?", True),
    ("I'm on metformin and have a CT scan tomorrow.", True),
    ("What is the starting dose of metformin?", False),
    ("My patient has an eGFR of 40. Should metformin be stopped?", False),
    ("What complication should I suspect after starting warfarin?", False),
])
def test_patient_questions(question: str, patient: bool) -> None:
    assert ask(question).patient is patient


@pytest.mark.parametrize(("question", "amount"), [
    ("What is the maximum daily dose of acetaminophen?", True),
    ("How much metformin can be given?", True),
    ("Which regimen is used for uncomplicated malaria?", True),
    ("How should amoxicillin be dosed in renal impairment?", True),
    ("What are the side effects of metformin?", False),
    ("Can ciprofloxacin be given to children?", False),
])
def test_asks_amount(question: str, amount: bool) -> None:
    assert ask(question).asks_amount is amount


def test_query_is_frozen() -> None:
    q = ask("metformin dose")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.text = "x"  # type: ignore[misc]
    hash(q)


# ---- values ----

@pytest.mark.parametrize(("question", "expected"), [
    ("Dose for a 20 kg child?", [(20.0, "kg", "weight")]),
    ("creatinine clearance 25 mL/min", [(25.0, "mL/min", "renal")]),
    ("Patient with CrCl of 25", [(25.0, "mL/min", "renal")]),
    ("Metformin with eGFR 38?", [(38.0, "mL/min/1.73m2", "renal")]),
    ("eGFR 38 mL/min/1.73 m2", [(38.0, "mL/min/1.73m2", "renal")]),
    ("for a child 8 years old", [(8.0, "years", "age")]),
    ("a 6-month-old infant", [(6.0, "months", "age")]),
    ("treatment for 6 months", [(6.0, "months", "duration")]),
    ("Can I take 500 mg twice daily for 7 days?", [(500.0, "mg", "dose"), (7.0, "days", "duration")]),
    ("up to 2,000 mg a day", [(2000.0, "mg", "dose")]),
    ("10 mg/kg every 8 hours", [(10.0, "mg/kg", "dose"), (8.0, "hours", "duration")]),
    ("a child weighing 44 lbs", [(20.0, "kg", "weight")]),
    ("an INR of 9", [(9.0, "INR", "other")]),
    ("a 25% Kato-Katz prevalence", [(25.0, "%", "share")]),
    ("CYP2C9 *1/*3 and VKORC1 AG", []),
])
def test_values(question: str, expected: list[tuple[float, str, str]]) -> None:
    assert [(v.number, v.unit, v.kind) for v in parse_values(question)] == expected
    assert [(v.number, v.unit, v.kind) for v in ask(question).values] == expected


def test_a_value_keeps_its_text_as_written() -> None:
    (v,) = parse_values("What about a CrCl of 25?")
    assert v.text == "CrCl of 25"


# ---- bands ----

KG = "Body weight (kg)"


def w(n: float) -> Value:
    return Value(n, "kg", "weight", f"{n} kg")


def renal(n: float, unit: str = "mL/min") -> Value:
    return Value(n, unit, "renal", f"CrCl {n}")


def age(n: float, unit: str = "years") -> Value:
    return Value(n, unit, "age", f"{n} {unit}")


@pytest.mark.parametrize(("text", "value", "hint", "expected"), [
    ("25 to < 36", w(30), KG, True),
    ("25 to < 36", w(25), KG, True),
    ("25 to < 36", w(20), KG, False),
    ("25 to < 36", w(36), KG, False),  # the upper end is excluded
    ("5 to < 15 kg", w(10), None, True),
    ("≥ 35", w(35), KG, True),
    ("≥ 35", w(34.9), KG, False),
    (">= 80 kg", w(80), None, True),
    ("< 15", w(14), KG, True),
    ("< 15", w(15), KG, False),
    ("30-50 mL/min", renal(40), None, True),
    ("30-50 mL/min", renal(25), None, False),
    ("CrCl 30 to 59 mL/min", renal(59), None, True),
    ("CrCl < 30", renal(25), None, True),  # the label before the band gives its unit
    ("eGFR between 30 and 45 mL/min/1.73 m2", renal(38, "mL/min/1.73m2"), None, True),
    ("Do not use with eGFR below 30 mL/minute/1.73 m.", renal(38, "mL/min/1.73m2"), None, False),
    ("less than 30 mL/min", renal(25), None, True),
    ("6 to 11 years", age(8), None, True),
    ("6 to 11 years", age(12), None, False),
    ("under 2 years", age(6, "months"), None, True),  # compared across units
    ("under 2 years", age(3), None, False),
    ("6 months to < 2 years", age(1), None, True),
    ("2 years and older", age(8), None, True),
])
def test_band_contains(text: str, value: Value, hint: str | None, expected: bool) -> None:
    assert band_contains(text, value, hint) is expected


@pytest.mark.parametrize(("text", "value", "hint"), [
    ("25 to < 36", w(30), None),  # no unit and no header: not a weight band
    ("5 to < 15 mg", w(10), None),  # a mg band is not a kg band
    ("Give 500 mg twice daily.", w(30), KG),  # no band at all
    ("6 to 11 years", w(8), None),
    ("25 to < 36 | 80 + 480", Value(80, "mg", "dose", "80 mg"), f"{KG} | Dose (mg)"),  # the bands are weights
])
def test_band_contains_is_none_without_a_band_of_the_value_unit(text: str, value: Value, hint: str | None) -> None:
    assert band_contains(text, value, hint) is None


def test_a_flattened_weight_table_contains_a_value_in_one_of_its_rows() -> None:
    text = "5 to < 15 20 + 120 15 to < 25 40 + 240 25 to < 35 60 + 360 ≥ 35 80 + 480"
    assert band_contains(text, w(20), KG) is True
    assert band_contains(text, w(3), KG) is False


@pytest.mark.parametrize(("question", "kind"), [
    ("How long can the mixed suspension be used?", "time"),
    ("For how many days should it be given?", "time"),
    ("How many ibuprofen 200 mg tablets can an adult take?", "tablet"),
    ("How many patients had diarrhea?", ""),
    ("What is the dose?", ""),
])
def test_the_kind_of_number_asked_for(question: str, kind: str) -> None:
    assert ask(question).counts == kind


@pytest.mark.parametrize(("question", "intents"), [
    ("Can I take ibuprofen with lisinopril?", {"interaction"}),
    ("Is it fine to take ibuprofen around heart surgery?", {"contraindication"}),
    ("When should I take it?", {"dosing"}),  # 'take' asks how to take a drug when nothing else is asked
])
def test_take_asks_about_taking_only_when_nothing_else_is_asked(question: str, intents: set[str]) -> None:
    assert ask(question).intents == intents


@pytest.mark.parametrize(("question", "names"), [
    ("How should ciprofloxacin be adjusted for a creatinine clearance of 40 mL/min?", ("ciprofloxacin",)),
    ("Monitor serum potassium with lisinopril?", ("lisinopril",)),
    ("Can potassium supplements be taken with lisinopril?", ("potassium", "lisinopril")),
])
def test_a_substance_named_as_what_a_test_measures_is_no_drug_asked_about(question: str, names: tuple) -> None:
    """'creatinine clearance' does not make creatinine a subject: a renal sentence of another drug's
    label would be 'about' it."""
    assert [n for n in ask(question).names if n in ("ciprofloxacin", "lisinopril", "potassium", "creatinine")] \
        == list(names)
