"""The evidence score's priors (the section that answers a kind of question, the product form asked about,
prescribing before patient text, the band that holds a value) and the choice of the lead and its supports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.answer_config import DEFAULT
from rag.extractive import Candidate, candidates, rerank, score_candidates, select, technical_terms
from rag.query import Library, formulations, understand
from rag.types import Chunk, Document, Hit


class SameVector:
    """Every text embeds to one vector, so scores differ only by terms and priors."""

    id, dim = "same", 4

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))


def candidate(text: str, title: str = "METFORMIN TABLETS", section: str = "14 CLINICAL STUDIES") -> Candidate:
    doc = Document(doc_id=title, sha256=title, file_name=f"{title}.pdf", title=title, family=title,
                   version="2025", doc_type="label")
    chunk = Chunk(chunk_id=f"{title}/{section}/{text}", doc_id=title, ordinal=0, page=1, page_end=1,
                  page_label="1", section=section, text=text)
    return Candidate(Hit(chunk=chunk, doc=doc, score=0.0, rank=1), text, 0)


def query(question: str, cands: list[Candidate], common=lambda t: False):
    """The question understood against a library of the candidates' documents."""
    return understand(question, Library.build({c.hit.doc.doc_id: c.hit.doc for c in cands}.values(), common))


def scores(question: str, cands: list[Candidate]) -> list[float]:
    return [c.score for c in score_candidates(query(question, cands), cands, SameVector(), lambda t: 1.0)]


@pytest.mark.parametrize(("text", "expected"), [
    ("METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS", {"extended-release"}),
    ("Ciprofloxacin Extended Release Tablets", {"extended-release"}),
    ("Heparin injection and chewable aspirin", {"injection", "chewable"}),
    ("WARFARIN SODIUM TABLETS", set()),
])
def test_formulations(text: str, expected: set[str]) -> None:
    assert formulations(text) == expected


def test_prescribing_text_ranks_above_patient_text_unless_a_patient_asks() -> None:
    same = "Warfarin can cause bleeding that may be serious."
    guide = candidate(same, title="WARFARIN SODIUM TABLETS", section="MEDICATION GUIDE")
    warnings = candidate(same, title="WARFARIN SODIUM TABLETS", section="5 WARNINGS AND PRECAUTIONS")
    a, b = scores("Does warfarin cause bleeding?", [guide, warnings])
    assert b - a == pytest.approx(DEFAULT.patient_penalty)
    a, b = scores("Can I take warfarin if I bleed easily?", [guide, warnings])
    assert a == pytest.approx(b)


def test_a_row_whose_band_holds_the_questions_value_ranks_first() -> None:
    head = "Body weight (kg) | Dose (mg)"
    rows = [replace(candidate(r, title="MALARIA GUIDELINES", section="Dosing"), head=head, kind="row")
            for r in ("15 to < 25 | 40 + 240", "25 to < 35 | 60 + 360")]
    low, high = scores("What dose for a child of 30 kg?", rows)
    assert high - low == pytest.approx(2 * DEFAULT.band_bonus)


def test_dosing_question_prefers_the_dosage_section() -> None:
    same = "Metformin was given with the evening meal."
    other = candidate(same, section="6 ADVERSE REACTIONS")
    dosing = candidate(same, section="2 DOSAGE AND ADMINISTRATION > 2.1 Adults")
    a, b = scores("How is metformin started and titrated?", [other, dosing])
    assert b - a == pytest.approx(DEFAULT.section_bonus)


def test_a_recommendation_record_answers_what_is_recommended_wherever_it_is_filed() -> None:
    same = "Adults and children with severe malaria should be treated with intravenous artesunate."
    prose = candidate(same, title="WHO GUIDELINES FOR MALARIA", section="5.2.2.1 Artesunate")
    record = replace(prose, kind="recommendation")
    a, b = scores("What does WHO recommend for severe malaria?", [prose, record])
    assert b - a == pytest.approx(DEFAULT.section_bonus)
    a, b = scores("Why is severe malaria dangerous?", [prose, record])
    assert a == pytest.approx(b)
    filed = replace(prose, hit=replace(prose.hit, chunk=replace(prose.hit.chunk, section="3.1 Recommendations")))
    a, b = scores("What does WHO recommend for severe malaria?", [filed, replace(filed, kind="recommendation")])
    assert a == pytest.approx(b)  # a recommendations section already says so: the bonus is not doubled


def test_question_of_another_kind_gets_no_section_bonus() -> None:
    same = "Metformin was given with the evening meal."
    other = candidate(same, section="6 ADVERSE REACTIONS")
    dosing = candidate(same, section="2 DOSAGE AND ADMINISTRATION")
    a, b = scores("Why is metformin linked to the evening meal?", [other, dosing])
    assert a == pytest.approx(b)


def test_clinical_studies_give_way_to_the_prescribing_sections_unless_asked_about() -> None:
    same = "Metformin was titrated from 500 mg to 2,000 mg daily."
    study, other = candidate(same), candidate(same, section="6 ADVERSE REACTIONS")
    a, b = scores("Why is metformin linked to the evening meal?", [study, other])
    assert b - a == pytest.approx(DEFAULT.study_penalty)
    a, b = scores("How was metformin titrated in the clinical trials?", [study, other])
    assert a >= b


def test_plain_question_prefers_the_plain_product_label() -> None:
    same = "Discontinue metformin if eGFR falls below 30 mL/minute/1.73 m2."
    plain = candidate(same, title="METFORMIN HYDROCHLORIDE TABLETS")
    extended = candidate(same, title="METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS")
    a, b = scores("When should metformin be stopped for renal impairment?", [plain, extended])
    assert a - b == pytest.approx(DEFAULT.formulation_penalty)


def test_question_naming_the_formulation_is_not_penalised() -> None:
    same = "Swallow the tablets whole; never crush, cut or chew them."
    plain = candidate(same, title="METFORMIN HYDROCHLORIDE TABLETS")
    extended = candidate(same, title="METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS")
    a, b = scores("How must metformin extended-release tablets be swallowed?", [plain, extended])
    assert b >= a


def rare_idf(rare: set[str]):
    """idf: the given stems are rare in the library, every other word common."""
    return lambda t: 8.0 if t in rare else 1.0


def chosen(question: str, cand: Candidate, rare: set[str]) -> tuple[list[Candidate], bool]:
    return select(query(question, [cand]), [replace(cand, score=0.7)], rare_idf(rare))


def test_dose_question_is_not_answered_by_another_drugs_dose() -> None:
    other = candidate("Patients with neurocysticercosis are treated with praziquantel 50 mg/kg per day.",
                      title="Schistosomiasis guideline", section="4 Safety")
    _, abstained = chosen("What dose of oxamniquine should be used?", other, {"oxamniquine"})
    assert abstained


def test_dose_question_is_answered_by_a_dose_for_its_subject() -> None:
    own = candidate("Oxamniquine is given as 15 mg/kg once.", title="Schistosomiasis guideline", section="4")
    picked, abstained = chosen("What dose of oxamniquine should be used?", own, {"oxamniquine"})
    assert not abstained and picked[0].text == own.text


def test_table_row_names_its_subject_through_the_caption() -> None:
    from dataclasses import replace

    row = replace(candidate("250 mg/5 mL | 100 mL | 59 mL", section="2.5 Mixing"),
                  head="Table 2. Amount of Water for Reconstitution")
    question = "How much water is needed to reconstitute the suspension?"
    assert not chosen(question, row, {"reconstitute"})[1]
    assert chosen(question, replace(row, head=""), {"reconstitute"})[1]  # the bare row names no subject


def test_table_row_shares_its_header_words() -> None:
    from dataclasses import replace

    row = "Oral Suspension 250 mg/5 mL | 100 mL | 74 mL"
    mixing = replace(candidate(row, section="2.5 Mixing"), head="Table 2. Amount of Water for Reconstitution")
    bare = candidate(row, section="2.5 Mixing")
    a, b = scores("How much water is needed for a 100 mL bottle?", [mixing, bare])
    assert a > b


def test_question_naming_a_library_drug_is_not_answered_from_another_drugs_label() -> None:
    cipro = replace(candidate("If a dose is missed, take it later the same day.", title="CIPROFLOXACIN",
                              section="2 DOSAGE"), score=0.8)
    warfarin = replace(candidate("If a dose is missed, take it as soon as possible on the same day.",
                                 title="WARFARIN SODIUM TABLETS", section="2.4 Missed Dose"), score=0.7)
    everyday = {"missed", "tablet", "handled", "sodium"}.__contains__  # one word piece each in MiniLM
    both = [cipro, warfarin]
    picked, abstained = select(query("How is a missed warfarin tablet handled?", both, everyday), both,
                               lambda t: 1.0, everyday)
    assert not abstained and [c.text for c in picked] == [warfarin.text]
    # a question naming no drug of the library is answered from the best unit, whichever label it is in
    picked, _ = select(query("How is a missed tablet handled?", both, everyday), both, lambda t: 1.0, everyday)
    assert [c.text for c in picked] == [cipro.text]


def test_a_support_is_quoted_only_for_what_the_lead_lacks() -> None:
    def unit(text: str, score: float, position: int) -> Candidate:
        return replace(candidate(text, title="WARFARIN SODIUM TABLETS", section="2 DOSAGE"), score=score,
                       position=position)

    lead = unit("The initial dose of warfarin is usually 2 to 5 mg once daily.", 0.80, 0)
    same = unit("Warfarin is usually started at 2 to 5 mg once daily.", 0.78, 1)
    other = unit("Typical maintenance doses are 2 to 10 mg once daily.", 0.70, 2)
    q = query("What initial and maintenance doses of warfarin are usual?", [lead])
    scored = score_candidates(q, [lead, same, other], SameVector(), lambda t: 1.0)
    scored = [replace(c, score=s) for c, s in zip(scored, (0.80, 0.78, 0.70), strict=True)]
    picked, abstained = select(q, scored, lambda t: 1.0)
    # 'same' adds nothing the lead lacks; 'other' adds the maintenance dose
    assert not abstained and [c.text for c in picked] == [lead.text, other.text]


@pytest.mark.parametrize("text, head, rows", [
    ("Table 2. Doses\nGroup | Dose\n\nAdults | 10 mg daily\nChildren | 5 mg daily",
     "Table 2. Doses\nGroup | Dose", ["Adults | 10 mg daily", "Children | 5 mg daily"]),
    ("Group | Dose\n\nAdults | 10 mg daily", "Group | Dose", ["Adults | 10 mg daily"]),  # no caption
    ("amoxicillin FIRST CHOICE - Otitis media\nampicillin FIRST CHOICE - Sepsis in neonates", "",
     ["amoxicillin FIRST CHOICE - Otitis media", "ampicillin FIRST CHOICE - Sepsis in neonates"]),  # records
])
def test_table_rows_are_candidates_and_the_head_travels_with_them(text: str, head: str, rows: list[str]) -> None:
    c = candidate(text)
    table = Hit(chunk=replace(c.hit.chunk, kind="table", text=text), doc=c.hit.doc, score=1.0, rank=1)
    got = candidates([table])
    assert [x.text for x in got] == rows and {x.head for x in got} == {head}


BONUS = DEFAULT.with_values(subject_bonus=0.15, w_fusion=0.0)  # a bonus that outweighs the 0.07 between the two


def test_passages_that_name_the_questions_subject_are_shown_first() -> None:
    general = candidate("Selected Access group antibiotics are recommended as first choice options.",
                        title="WHO MODEL LIST OF ESSENTIAL MEDICINES", section="6.2 Antibacterials")
    record = candidate("amoxicillin FIRST CHOICE - Otitis media - Pharyngitis",
                       title="WHO MODEL LIST OF ESSENTIAL MEDICINES", section="6.2.1 Access group antibiotics")
    general = replace(general, hit=replace(general.hit, rank=1), score=0.52)
    record = replace(record, hit=replace(record.hit, rank=2), score=0.45)
    hits = [general.hit, record.hit]
    label = candidate("Amoxicillin is a penicillin-class antibacterial.", title="AMOXICILLIN TABLETS")
    q = query("Which AWaRe group is amoxicillin in?", [general, label])
    unnamed = query("Which AWaRe group is it in?", [general, label])
    assert [h.chunk.chunk_id for h in rerank(hits, [general, record], unnamed, BONUS)] == [general.hit.chunk.chunk_id,
                                                                                    record.hit.chunk.chunk_id]
    shown = rerank(hits, [general, record], q, BONUS)
    assert [h.chunk.chunk_id for h in shown] == [record.hit.chunk.chunk_id, general.hit.chunk.chunk_id]
    assert [h.rank for h in shown] == [1, 2]


def test_asked_part_leaves_out_the_vignette() -> None:
    from rag.extractive import asked_part

    assert asked_part("A hiker takes metformin and acetazolamide. Is there an interaction?") == \
        "Is there an interaction?"
    assert asked_part("Which amoxicillin regimen treats early Lyme disease?") == \
        "Which amoxicillin regimen treats early Lyme disease?"


def test_a_subject_the_library_never_names_is_refused_only_where_it_is_asked() -> None:
    from rag.extractive import unsupported_terms

    label = candidate("Stop metformin before an iodinated contrast imaging procedure.", title="METFORMIN TABLETS")
    q_asked = query("Does metformin treat polycystic ovary syndrome?", [label])
    q_scene = query("A patient with polycystic kidneys has a contrast scan. Does metformin need stopping?", [label])
    df = {"polycy": 0, "ovary": 0, "kidney": 0}.get
    rare = unsupported_terms(q_asked, [label.hit], lambda p: df(p, 50), 1000)
    assert "polycystic" in rare
    assert unsupported_terms(q_scene, [label.hit], lambda p: df(p, 50), 1000) == []


def test_a_number_question_is_refused_when_the_number_is_for_something_else() -> None:
    lvad = "What target INR range does the warfarin label give for a left ventricular assist device?"
    af = replace(candidate("For atrial fibrillation, maintain an INR of 2.0 to 3.0 (target 2.5).",
                           title="WARFARIN SODIUM TABLETS", section="2 DOSAGE"), score=0.7)
    q = query(lvad, [af])
    assert q.asks_number
    idf = rare_idf({"ventricular", "assist", "device", "lvad"})
    scored = [replace(af, terms=frozenset({"warfarin", "inr", "target", "range"}))]
    assert select(q, scored, idf, cfg=DEFAULT.with_values(number_cover=0.5))[1]  # refused
    assert not select(q, scored, idf, cfg=DEFAULT.with_values(number_cover=0.0))[1]  # the rule off: answered


def test_doses_are_amounts_not_ages() -> None:
    from rag.extractive import doses

    assert doses("Pediatric patients 10 years and older: 10 mg once daily for 3 days") == ["10mg"]
    assert doses("250 mg/5 mL; 2 tablets") == ["250mg", "5ml", "2tablet"]


def test_a_number_is_stated_whatever_its_unit_but_not_by_a_cross_reference() -> None:
    from rag.extractive import states_number

    assert states_number("Maintain an INR of 2.0 to 3.0.") and states_number("Give it twice a year.")
    assert not states_number("See Warnings and Precautions (5.1) [see Use in Specific Populations (8.6)].")
    # a footnote mark glued to a word's full stop is no number; a number after a space is
    assert not states_number("The acceptable criteria might need to be narrowed.62")
    assert states_number("Decide within 60 days.")


def test_a_list_item_is_shown_under_its_heading() -> None:
    from rag.answering import list_heading

    item = replace(candidate("Acute or chronic metabolic acidosis, including diabetic ketoacidosis.",
                             section="4 CONTRAINDICATIONS"), kind="item")
    assert list_heading(item) == "CONTRAINDICATIONS: "
    assert list_heading(replace(item, kind="sentence")) == ""
    assert list_heading(replace(item, text="CONTRAINDICATIONS include metabolic acidosis.")) == ""
    stem = "Metformin is contraindicated in patients with:"
    assert list_heading(replace(item, head=stem)) == f"{stem} "  # its list's stem says more than the heading


def test_a_row_states_the_amount_its_column_label_gives_the_unit_of() -> None:
    from rag.extractive import doses

    row = "Body weight (kg): 15 to < 25 · Dose (mg) of artemether + lumefantrine given twice daily: 40 + 240"
    assert doses(row) == ["40+240mg"]
    assert doses("Body weight (kg): 15 to < 25 · Age (years): 3") == []


def test_a_share_is_an_amount_a_support_may_add() -> None:
    title, section = "SCHISTOSOMIASIS GUIDELINE", "Annex 4.2 Safety of praziquantel"
    lead = replace(candidate("These adverse events of praziquantel are generally not serious.", title=title,
                             section=section), score=0.60)
    share = replace(candidate("The adverse events of praziquantel were abdominal pain (16.5%) and headache (13.2%).",
                              title=title, section=section), score=0.55, position=1)
    q = query("How often did adverse events of praziquantel occur?", [lead])
    scored = score_candidates(q, [lead, share], SameVector(), lambda t: 1.0)
    assert scored[1].terms == scored[0].terms  # the share adds no term: only its numbers
    picked, _ = select(q, scored, lambda t: 1.0)
    assert [c.text for c in picked] == [lead.text, share.text]


def test_a_drug_no_document_is_about_is_answered_from_the_units_naming_it() -> None:
    title, section = "WHO GUIDELINES FOR MALARIA", "5.2.1.1.2 Dosing of ACTs"
    other = replace(candidate("Children weighing < 25 kg should receive at least 2.5 mg/kg bw dihydroartemisinin.",
                              title=title, section=section), score=0.70)
    row = replace(candidate("Body weight (kg): 15 to < 25 · Dose (mg) of artemether + lumefantrine: 40 + 240",
                            title=title, section=section), kind="row", score=0.60)
    q = query("What is the dose of artemether-lumefantrine for a child weighing 20 kg?", [other, row])
    assert not q.subjects and q.names == ("artemether-lumefantrine",)
    [scored] = score_candidates(q, [row], SameVector(), lambda t: 1.0)
    assert "artemether-lumefantrine" in scored.terms  # the combination, named drug by drug
    picked, abstained = select(q, [other, row], lambda t: 1.0)
    assert not abstained and [c.text for c in picked] == [row.text]


def test_a_recommendation_is_shown_with_its_strength_and_certainty_unless_its_quote_states_them() -> None:
    import json

    from rag.answering import strength

    c = candidate("WHO suggests a two-step diagnostic process in humans.", section="6.1 Recommendation")
    graded = replace(c.hit.chunk, kind="recommendation",
                     fields=json.dumps({"recommendation": {"strength": "conditional", "certainty": "low"}}))
    record = replace(c, kind="recommendation", hit=replace(c.hit, chunk=graded))
    assert strength(record) == " (conditional recommendation; certainty of evidence: low)"
    assert strength(replace(record, text=record.text + " Conditional recommendation Certainty of evidence: low")) == ""
    assert strength(replace(record, kind="sentence")) == ""
    malaria = replace(graded, fields=json.dumps({"recommendation": {"strength": "strong against"}}))
    assert strength(replace(record, hit=replace(c.hit, chunk=malaria))) == " (strong recommendation against)"


def test_a_question_naming_two_documents_is_shown_the_best_passage_of_each() -> None:
    def passage(title: str, text: str, rank: int, score: float) -> Candidate:
        c = candidate(text, title=title)
        return replace(c, hit=replace(c.hit, rank=rank, doc=replace(c.hit.doc, family=title)), score=score)

    a1 = passage("WARFARIN SODIUM TABLETS", "Warfarin interacts with many drugs.", 1, 0.9)
    a2 = passage("WARFARIN SODIUM TABLETS", "Warfarin is metabolised by CYP2C9.", 2, 0.8)
    b1 = passage("ACETAMINOPHEN TABLETS", "Ask a doctor before use if you take warfarin.", 3, 0.5)
    q = query("Can acetaminophen be taken with warfarin?", [a1, b1])
    shown = rerank([a1.hit, a2.hit, b1.hit], [a1, a2, b1], q)
    assert [h.doc.title for h in shown[:2]] == ["WARFARIN SODIUM TABLETS", "ACETAMINOPHEN TABLETS"]


def test_supports_never_come_from_a_third_document_that_only_mentions_the_subject() -> None:
    label = replace(candidate("The maximum daily dose of acetaminophen is 4,000 mg in 24 hours.",
                              title="ACETAMINOPHEN TABLETS", section="Directions"), score=0.8)
    malaria = replace(candidate("Paracetamol (acetaminophen) at a dose of 15 mg/kg every 6 hours treats fever.",
                                title="WHO GUIDELINES FOR MALARIA", section="7.2 Fever"), score=0.75)
    q = query("What is the maximum daily dose of paracetamol for adults?", [label, malaria])
    terms = frozenset({"maximum", "daily", "dose", "paracetamol"})
    picked, abstained = select(q, [replace(label, terms=terms - {"daily"}), replace(malaria, terms=terms)],
                               lambda t: 1.0)
    assert not abstained and [c.hit.doc.title for c in picked] == ["ACETAMINOPHEN TABLETS"]


@pytest.mark.parametrize("title, section, before, lead, question", [
    ("AMOXICILLIN CAPSULES", "5.5 Use in Patients With Mononucleosis",
     "Most patients with mononucleosis who receive amoxicillin develop a skin rash.",
     "Thus, amoxicillin should not be administered to patients with mononucleosis.",
     "Should amoxicillin be given in infectious mononucleosis?"),
    # a list of examples names instances of what the unit before says
    ("METFORMIN HYDROCHLORIDE TABLETS", "7 DRUG INTERACTIONS",
     "Intervention: Consider more frequent monitoring of these patients.",
     "Examples: topiramate, zonisamide, acetazolamide or dichlorphenamide.",
     "Does acetazolamide interact with metformin?"),
])
def test_a_lead_that_refers_back_is_supported_by_the_sentence_before(title: str, section: str, before: str,
                                                                      lead: str, question: str) -> None:
    first = replace(candidate(before, title=title, section=section), position=0, score=0.65)
    last = replace(candidate(lead, title=title, section=section), position=1, score=0.8)
    q = query(question, [last])
    both = [replace(first, hit=last.hit), last]
    picked, _ = select(q, both, lambda t: 1.0)
    assert [c.text for c in picked] == [lead, before]
    alone, _ = select(q, [replace(both[0], position=5), last], lambda t: 1.0)  # not the sentence before
    assert [c.text for c in alone] == [lead]


def test_the_unit_after_the_lead_is_quoted_across_a_passage_boundary() -> None:
    # A Drug Facts alert whose next line (the symptoms, what to do) was cut into the next passage.
    first = candidate("Liver warning: this product contains acetaminophen.", title="ACETAMINOPHEN TABLETS",
                      section="Warnings")
    lead = replace(first, text="Allergy alert: acetaminophen may cause severe skin reactions.", position=3, score=0.6)
    nxt = replace(first, hit=replace(first.hit, chunk=replace(first.hit.chunk, chunk_id="next", ordinal=1), rank=2),
                  text="Symptoms may include: blisters. If a skin reaction occurs, stop use.", position=0,
                  score=0.5)
    q = query("What skin reactions does the acetaminophen label warn about?", [lead])
    terms = frozenset({"skin", "reaction", "acetaminophen"})
    picked, _ = select(q, [replace(first, score=0.2), replace(lead, terms=terms), replace(nxt, terms=terms)],
                       lambda t: 1.0)
    assert [c.text for c in picked] == [lead.text, nxt.text]
    # the next passage's first unit does not follow a unit that is not its passage's last
    later = replace(first, text="Do not use with other drugs containing acetaminophen.", position=4, score=0.2)
    picked, _ = select(q, [later, replace(lead, terms=terms), replace(nxt, terms=terms)], lambda t: 1.0)
    assert [c.text for c in picked] == [lead.text]


def test_numbers_a_question_does_not_ask_for_are_no_reason_to_quote() -> None:
    lead = replace(candidate("Allergy alert: acetaminophen may cause severe skin reactions.",
                             title="ACETAMINOPHEN TABLETS", section="Warnings"), score=0.6)
    days = replace(lead, text="Stop use and ask a doctor if pain lasts more than 10 days.", position=5, score=0.5)
    terms = frozenset({"skin", "reaction", "acetaminophen"})
    ask = query("What skin reactions does the acetaminophen label warn about?", [lead])
    picked, _ = select(ask, [replace(lead, terms=terms), replace(days, terms=terms)], lambda t: 1.0)
    assert [c.text for c in picked] == [lead.text]
    ask = query("How long can acetaminophen be used for pain before asking a doctor?", [lead])
    picked, _ = select(ask, [replace(lead, terms=terms), replace(days, terms=terms)], lambda t: 1.0)
    assert days.text in [c.text for c in picked]


def test_an_abbreviation_the_document_defines_counts_as_its_long_form() -> None:
    item = candidate("Pediatric Patients 10 Years and Older with HeFH: start at 10 mg once daily.",
                     title="ATORVASTATIN CALCIUM TABLETS", section="2.4 Pediatric Dosage")
    q = query("What dose for heterozygous familial hypercholesterolemia in a boy of 12?", [item])
    long_form = frozenset({"heterozygou", "familial", "hypercholesterolemia"})
    plain = score_candidates(q, [item], SameVector(), lambda t: 1.0)[0]
    spelled = score_candidates(q, [item], SameVector(), lambda t: 1.0,
                               spelled_out=lambda doc, words: long_form if "hefh" in words else frozenset())[0]
    assert long_form <= spelled.terms and not long_form & plain.terms and spelled.score > plain.score


def test_a_weak_unit_with_a_dose_never_turns_a_good_answer_into_a_refusal() -> None:
    good = replace(candidate("Atorvastatin is indicated in pediatric patients 10 years and older with HeFH.",
                             title="ATORVASTATIN CALCIUM TABLETS", section="1 INDICATIONS"), score=0.65)
    weak = replace(candidate("In the study, patients received atorvastatin 10 mg daily for 26 weeks.",
                             title="ATORVASTATIN CALCIUM TABLETS", section="14 CLINICAL STUDIES"), score=0.36)
    q = query("What dose of atorvastatin is used for HeFH in children?", [good])
    picked, abstained = select(q, [good, weak], lambda t: 1.0)
    assert not abstained and picked[0].text == good.text  # the dose unit is too far below to lead


def test_fusions_first_passage_is_never_pushed_out_of_sight() -> None:
    def passage(text: str, rank: int, score: float) -> Candidate:
        c = candidate(text, section=f"s{rank}")
        return replace(c, hit=replace(c.hit, rank=rank, score=1.0 / rank), score=score)

    cands = [passage("Fusion ranked this first.", 1, 0.1)] + [passage(f"Unit {n} scores well.", n, 0.9 - n / 100)
                                                             for n in range(2, 7)]
    q = query("Which unit?", cands)
    order = [h.chunk.section for h in rerank([c.hit for c in cands], cands, q, DEFAULT.with_values(keep_fused=3))]
    assert order.index("s1") == 2
    order = [h.chunk.section for h in rerank([c.hit for c in cands], cands, q, DEFAULT.with_values(keep_fused=0))]
    assert order.index("s1") == 5


def test_lay_and_professional_words_count_as_each_other() -> None:
    from rag.extractive import aliases_of

    assert {"kidney", "renal"} <= aliases_of("kidney") and {"liver", "hepatic"} <= aliases_of("liver")
    assert "acetaminophen" in aliases_of("paracetamol") and aliases_of("zorbital") == {"zorbital"}
    renal = candidate("Reduce the dose in severe renal impairment.", title="ZORB TABLETS", section="8.6")
    q = query("What about kidney problems with zorb?", [renal])
    [scored] = score_candidates(q, [renal], SameVector(), lambda t: 1.0)
    assert "kidney" in scored.terms


def test_a_prefixed_word_is_supported_by_its_rest() -> None:
    """'reassess' is 'assess' again: a passage that says 'assess' answers it; where nothing says
    'assess' either, the word still names something the documents lack."""
    from rag.extractive import unsupported_terms

    survey = candidate("Implement an impact survey to assess the programme after 3 years.", title="SCHISTOSOMIASIS")
    other = candidate("Treat every school-age child once a year.", title="SCHISTOSOMIASIS")
    q = query("How long before we reassess the programme?", [survey])
    rare = {"reasse": 0, "assess": 0}.get
    assert unsupported_terms(q, [survey.hit], lambda p: rare(p, 50), 1000) == []
    assert unsupported_terms(q, [other.hit], lambda p: rare(p, 50), 1000) == ["reassess"]


def test_an_inflected_everyday_verb_names_nothing() -> None:
    # the tokenizer splits 'reconciling' into pieces though 'reconcile' is one: the asker's verb, not a subject
    whole = {"reconcile", "stop", "list", "strength", "which", "does", "our"}
    q = query("Which warfarin strengths does the list give? We are reconciling and stopping stock.", [])
    assert technical_terms(q, lambda w: w in whole) >= {"warfarin"}
    assert not technical_terms(q, lambda w: w in whole) & {"reconciling", "stopping"}
    assert {"reconciling", "stopping"} <= technical_terms(q, lambda w: w in whole - {"reconcile", "stop"})


def test_a_date_is_no_number_stated() -> None:
    from rag.extractive import states_number

    assert not states_number("Consult the guidance entitled Statistical Approaches (February 2001).")
    assert not states_number("The draft was issued on May 19, 2017.")
    assert states_number("The maximum dose is 2000 mg.") and states_number("In 2017 the label changed.")


def test_a_combination_product_is_not_its_parts() -> None:
    """Augmentin is amoxicillin with clavulanate: a passage on amoxicillin alone does not cover it."""
    from rag.extractive import aliases_of, unsupported_terms

    assert "amoxicillin" not in aliases_of("augmentin") and "amoxicillin-clavulanate" in aliases_of("augmentin")
    # nor is a salt or a maker in a longer name ('ceftriaxone sodium', 'ceftriaxon hexal') the drug
    assert not {"sodium", "hexal"} & aliases_of("ceftriaxone") and "rocephin" in aliases_of("ceftriaxone")
    assert "acetaminophen" in aliases_of("tylenol")
    label = candidate("Pediatric patients: 25 mg/kg/day in divided doses every 12 hours.", title="AMOXICILLIN")
    q = query("What is the dose of Augmentin for otitis media?", [label])
    df = {"amoxic": 500, "amoxicillin-clavulanate": 0, "amoxicillin/clavulanate": 0, "augmen": 0, "co-amo": 0,
          "otitis": 20}.get
    assert unsupported_terms(q, [label.hit], lambda p: df(p, 50), 1000) == ["augmentin"]


def test_a_term_counts_in_its_inflections() -> None:
    """'characterize' is in 'IMNM is characterized by...'; a word sharing fewer letters is not."""
    feature = candidate("IMNM is characterized by proximal muscle weakness.", title="ATORVASTATIN")
    other = candidate("IMNM is a rare charcoal finding.", title="ATORVASTATIN")
    q = query("What features characterize IMNM?", [feature, other])
    a, b = score_candidates(q, [feature, other], SameVector(), lambda t: 1.0)
    assert "characterize" in a.terms and "characterize" not in b.terms


def test_a_question_not_asking_a_number_is_finished_by_the_next_statement_not_an_amount() -> None:
    """'What should they do?' about a missed dose: the sentence after the lead (do not double it) is
    quoted, not a dosing sentence that only adds an amount; a question asking how much takes the amount."""
    lead = candidate("If a dose is missed, take it as soon as possible on the same day.", title="WARFARIN",
                     section="2.6 Missed Dose")
    after = replace(lead, text="Do not double the dose the next day.", position=1)
    amount = candidate("The usual dose is 2 to 5 mg once daily.", title="WARFARIN", section="2.3 Dosing")
    scored = [replace(lead, score=0.6, terms=frozenset({"dose", "warfarin"})),
              replace(after, score=0.5, terms=frozenset({"dose"})),
              replace(amount, score=0.5, terms=frozenset({"dose", "warfarin"}))]
    q = query("A patient forgot a warfarin dose. What should they do?", [lead])
    assert not q.asks_number
    quotes, _ = select(q, scored, lambda t: 1.0)
    assert [c.text for c in quotes[1:]] == [after.text]
    q = query("How much warfarin is the dose, and what if one is missed?", [lead])
    quotes, _ = select(q, scored, lambda t: 1.0)
    assert amount.text in [c.text for c in quotes]


def test_the_askers_own_verb_is_not_what_they_ask_about() -> None:
    """'What should I prescribe for pneumonia?': a quoted dose need not name 'prescribe'."""
    q = query("What should I prescribe first-line for zorbitis, and at what dose?", [])
    assert "prescribe" not in technical_terms(q, lambda w: False) and "zorbiti" in technical_terms(q, lambda w: False)
    assert "prescribe" in technical_terms(query("Which prescribe rules apply to zorbitis?", []), lambda w: False)


def test_a_drug_facts_heading_printed_inline_is_the_units_section() -> None:
    """A Drug Facts label prints 'Do not use' at the start of the statement it heads, not as a section."""
    label = "IBUPROFEN TABLETS"
    heading = candidate("Do not use right before or after heart surgery", title=label, section="")
    plain = candidate("Ibuprofen may be used right before or after heart surgery", title=label, section="")
    q = "Is it fine to take ibuprofen around heart surgery?"
    assert "contraindication" in query(q, [heading]).intents
    a, b = scores(q, [heading, plain])
    assert a - b == pytest.approx(DEFAULT.section_bonus)
    # the same words that do not open the statement head nothing
    inside = candidate("Patients who do not use it right before heart surgery", title=label, section="")
    assert scores(q, [inside, plain])[0] == pytest.approx(scores(q, [plain, plain])[0])


def gap_of(question: str, cands: list[Candidate], **values: float) -> float:
    """How much the second candidate outscores the first, with some constants changed."""
    first, second = (c.score for c in score_candidates(query(question, cands), cands, SameVector(), lambda t: 1.0,
                                                       cfg=DEFAULT.with_values(**values)))
    return second - first


def test_a_row_keyed_by_the_questions_value_ranks_first() -> None:
    head = "Kato-Katz | POC-CCA | Suggested threshold"
    rows = [replace(candidate(r, title="SCHISTOSOMIASIS GUIDELINE", section="Annex"), head=head, kind="row")
            for r in ("10% 20-40% 30%", "25% 35-70% 50%")]
    question = "Which threshold corresponds to a 25% Kato-Katz prevalence?"
    assert gap_of(question, rows) - gap_of(question, rows, band_bonus=0) == pytest.approx(2 * DEFAULT.band_bonus)
    # a sentence stating the value is no row keyed by it (the term '25' aside, both score alike)
    sentences = [replace(r, kind="sentence") for r in rows]
    assert gap_of(question, sentences) == pytest.approx(gap_of(question, sentences, band_bonus=0))


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("Discard any unused portion after 14 days.", "time", True),
    ("Treat biannually for 3 consecutive years.", "time", True),
    ("Tablet: 100 mg to 500 mg", "tablet", False),
    ("Do not take more than 6 tablets in 24 hours.", "tablet", True),
    ("Do not take more than directed.", "time", False),
])
def test_what_a_number_counts(text: str, kind: str, expected: bool) -> None:
    from rag.extractive import counts

    assert counts(text, kind) is expected


def test_a_how_many_question_is_answered_by_a_count_of_that_kind_or_refused() -> None:
    label = "IBUPROFEN TABLETS"
    strength = replace(candidate("Each tablet contains ibuprofen 200 mg.", title=label, section="Directions"),
                       score=0.7, terms=frozenset({"ibuprofen", "tablet"}))
    q = query("How many ibuprofen 200 mg tablets can an adult take in a day?", [strength])
    assert q.counts == "tablet"
    assert select(q, [strength], lambda t: 1.0)[1]  # a strength is no count of tablets: refused
    limit = replace(strength, text="Do not take more than 6 tablets in 24 hours.", position=1, score=0.6)
    picked, abstained = select(q, [strength, limit], lambda t: 1.0)
    assert not abstained and limit in picked


def test_how_long_brings_in_the_duration_another_part_asks_for() -> None:
    label = "AMOXICILLIN FOR ORAL SUSPENSION"
    water = replace(candidate("Bottle Size: 100 mL · Water Required: 74 mL", title=label, section="2.5 Mixing"),
                    score=0.76, kind="row", terms=frozenset({"water", "bottle", "amoxicillin"}))
    other = replace(water, text="150 mL | 111 mL", position=1, score=0.70)
    discard = replace(water, text="Discard any unused portion after 14 days.", position=2, score=0.61,
                      kind="sentence", terms=frozenset({"amoxicillin"}))
    q = query("How much water is needed for a 100 mL bottle of amoxicillin, and how long can it be used?", [water])
    picked, abstained = select(q, [water, other, discard], lambda t: 1.0, cfg=DEFAULT.with_values(max_quotes=2))
    assert not abstained and [c.text for c in picked] == [water.text, discard.text]


def test_a_comparison_of_two_products_quotes_each_though_the_second_adds_no_new_term() -> None:
    def unit(title: str, text: str, score: float) -> Candidate:
        c = candidate(text, title=title, section="6 ADVERSE REACTIONS")
        return replace(c, hit=replace(c.hit, doc=replace(c.hit.doc, family=title)), score=score,
                       terms=frozenset({"metformin", "diarrhea", "discontinuation"}))

    er = unit("METFORMIN EXTENDED-RELEASE TABLETS", "Diarrhea led to discontinuation in 0.7% of patients.", 0.60)
    er_more = replace(er, text="Diarrhea was reported by 9.6% of patients.", position=5, score=0.58)
    ir = unit("METFORMIN TABLETS", "Diarrhea led to discontinuation of metformin in 6% of patients.", 0.56)
    compare = query("Do diarrhea discontinuations differ between immediate-release and extended-release metformin?",
                    [er, ir])
    assert len(compare.preferred) == 2
    picked, _ = select(compare, [er, er_more, ir], lambda t: 1.0, cfg=DEFAULT.with_values(max_quotes=2))
    assert [c.text for c in picked] == [er.text, ir.text]
    # a question about one product is not given the other's for the asking
    one = query("Did diarrhea lead to discontinuations of metformin?", [er, ir])
    assert len(one.preferred) == 1
    picked, _ = select(one, [er, er_more, ir], lambda t: 1.0, cfg=DEFAULT.with_values(max_quotes=2))
    assert [c.text for c in picked] == [er.text]


def test_a_support_adds_what_is_asked_not_the_words_of_the_scenario() -> None:
    def unit(text: str, score: float, position: int, terms: set[str]) -> Candidate:
        return replace(candidate(text, title="WARFARIN SODIUM TABLETS", section="16 STORAGE"), score=score,
                       position=position, terms=frozenset(terms))

    lead = unit("Store at 20° to 25°C.", 0.6, 0, {"warfarin", "storage"})
    scenario = unit("Pharmacy personnel who are pregnant should avoid crushed tablets.", 0.5, 5,
                    {"warfarin", "pharmacy"})
    asked = unit("Protect from light.", 0.45, 9, {"warfarin", "light"})
    q = query("Our pharmacy moved to the new warfarin label. Did the storage or light instructions change?", [lead])
    picked, _ = select(q, [lead, scenario, asked], lambda t: 1.0)
    assert [c.text for c in picked] == [lead.text, asked.text]
    # a drug the scenario names is asked about
    examples = unit("Examples: topiramate, zonisamide, acetazolamide.", 0.6, 0, {"acetazolamide"})
    drug = unit("Warfarin may need closer monitoring with these.", 0.5, 5, {"warfarin"})
    q = query("A hiker who takes warfarin was prescribed acetazolamide. Is there an interaction?", [examples])
    picked, _ = select(q, [examples, drug], lambda t: 1.0)
    assert [c.text for c in picked] == [examples.text, drug.text]


def test_a_support_that_refers_back_is_not_quoted_without_what_it_refers_to() -> None:
    def unit(text: str, score: float, position: int, terms: set[str]) -> Candidate:
        return replace(candidate(text, title="METFORMIN EXTENDED-RELEASE TABLETS", section="12.3 Pharmacokinetics"),
                       score=score, position=position, terms=frozenset(terms))

    lead = unit("Food decreases the absorption of metformin.", 0.6, 0, {"metformin", "food", "absorption"})
    meals = unit("Low-fat and high-fat meals increased the exposure by about 38% and 73%.", 0.5, 5,
                 {"metformin", "food"})
    both = unit("Both meals prolonged the time to peak but did not affect the peak.", 0.52, 6,
                {"metformin", "affect"})
    q = query("Does food affect the absorption of metformin?", [lead])
    picked, _ = select(q, [lead, meals, both], lambda t: 1.0, cfg=DEFAULT.with_values(max_quotes=2))
    assert [c.text for c in picked] == [lead.text]  # not 'Both meals ...' without the meals it means
    # right after its antecedent it may be quoted
    grounded = replace(lead, text=both.text, position=1, score=both.score, terms=both.terms)  # same passage
    picked, _ = select(q, [lead, meals, grounded], lambda t: 1.0, cfg=DEFAULT.with_values(max_quotes=2))
    assert [c.text for c in picked] == [lead.text, grounded.text]


def test_the_statement_right_before_the_lead_is_quoted_for_its_condition() -> None:
    label = "METFORMIN TABLETS"
    stop = replace(candidate("Discontinue metformin before an iodinated contrast imaging procedure in patients with "
                             "an eGFR between 30 and 60.", title=label, section="2.4 Contrast"), score=0.58,
                   terms=frozenset({"metformin", "egfr"}))
    restart = replace(stop, text="Re-evaluate eGFR 48 hours after the procedure; restart metformin if renal "
                                 "function is stable.", position=1, score=0.61,
                      terms=frozenset({"metformin", "egfr", "restart"}))
    q = query("What should be done with metformin before a contrast scan, and when can it be restarted?", [stop])
    picked, _ = select(q, [stop, restart], lambda t: 1.0)
    assert [c.text for c in picked] == [restart.text, stop.text]
    far = replace(stop, position=7)  # the same words elsewhere in the passage add nothing
    picked, _ = select(q, [far, restart], lambda t: 1.0)
    assert [c.text for c in picked] == [restart.text]
