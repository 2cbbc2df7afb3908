"""Hybrid retrieval, filters, versions, the extractive answerer and abstention, on generated PDFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from render_demo import DocSpec, Heading, Paragraph, Table, render_pdf

from ingest.pipeline import ingest
from rag.engine import Engine
from rag.lexical import rrf
from rag.qa import ABSTAIN_TEXT, QA
from rag.retrieve import Filters
from rag.snapshot import database_path
from rag.store import Store
from rag.text import content_words, is_verbatim, numbers_with_units, split_sentences


def _doc(path: Path, title: str, body: list) -> Path:
    return render_pdf(path, DocSpec(title=title, blocks=body))


@pytest.fixture
def library(tmp_path: Path, settings, hash_embedder) -> QA:
    """Two families (one with two versions) and a formulary, ingested with the hash embedder."""
    src = tmp_path / "src"
    src.mkdir()
    _doc(src / "zorbital_guideline_2020.pdf", "Zorbital Guideline 2020", [
        Heading("1", "Dosing"),
        Paragraph("The usual adult dose of zorbital is 20 mg once daily with food. Review renal function yearly."),
    ])
    _doc(src / "zorbital_guideline_2024.pdf", "Zorbital Guideline 2024", [
        Heading("1", "Dosing"),
        Paragraph("The usual adult dose of zorbital is 40 mg once daily with food. Review renal function yearly."),
        Heading("2", "Monitoring"),
        Paragraph("Check the potassium level after two weeks of zorbital treatment."),
    ])
    _doc(src / "quintor_formulary_2023.pdf", "Quintor Formulary 2023", [
        Heading("", "DOSAGE AND ADMINISTRATION"),
        Table("Table 1. Quintor dosing", ["Population", "Dose"],
              [["Adults", "quintor 250 mg twice daily"], ["Elderly", "quintor 125 mg twice daily"]]),
        Paragraph("Quintor tablets should be swallowed whole with water."),
    ])
    report = ingest([src], settings, hash_embedder)
    assert not report.failed
    return QA(settings, engine=Engine(settings, hash_embedder))


def test_rrf_rewards_agreement_between_rankings():
    fused = rrf([[(1, 0.9), (2, 0.5), (4, 0.1)], [(2, 7.0), (3, 1.0), (1, 0.5)]], k=4, rrf_k=60)
    rows = [r for r, _ in fused]
    assert rows[:2] == [2, 1] or rows[:2] == [1, 2]
    assert set(rows) == {1, 2, 3, 4}
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_split_sentences_keeps_abbreviations_and_decimals():
    assert split_sentences("Take 2.5 mg (e.g. at night). Then stop. I.e. never double.") == [
        "Take 2.5 mg (e.g. at night).", "Then stop.", "I.e. never double."]


def test_a_footnote_mark_is_not_part_of_a_word():
    assert content_words("ceftriaxone* Powder for injection; CYP2C9 *1/*3") == [
        "ceftriaxone", "powder", "injection", "cyp2c9", "1/*3"]


def test_numbers_with_units_normalises_ranges():
    assert numbers_with_units("Give 2 to 5 mg once daily for 3 days") == ["2-5mg", "3day"]
    # a unit spelled out is the unit ('more than 1.2 liters daily' of grapefruit juice is an amount)
    assert numbers_with_units("more than 1.2 liters daily, 5 millilitres, 2 L") == ["1.2l", "5ml", "2l"]


def test_current_version_only_unless_superseded_requested(library: QA):
    hits = library.retrieve("usual adult dose of zorbital", k=5)
    files = {h.doc.file_name for h in hits}
    assert "zorbital_guideline_2024.pdf" in files
    assert "zorbital_guideline_2020.pdf" not in files
    hits = library.retrieve("usual adult dose of zorbital", k=10, filters=Filters(include_superseded=True))
    assert {h.doc.status for h in hits if h.doc.file_name == "zorbital_guideline_2020.pdf"} == {"superseded"}


def test_a_question_naming_an_earlier_version_reads_it_beside_the_current_one(library: QA):
    answer = library.answer("Did the usual adult dose of zorbital change from the 2020 guideline to 2024?")
    cited = {c.hit.doc.file_name for c in answer.citations}
    assert cited == {"zorbital_guideline_2020.pdf", "zorbital_guideline_2024.pdf"}
    assert {"20 mg", "40 mg"} <= {w for w in ("20 mg", "40 mg") if w in answer.text}
    # a year no superseded version carries reads the current version only
    hits = library.retrieve("What was the usual adult dose of zorbital in 2019?", k=10)
    assert {h.doc.file_name for h in hits if "zorbital" in h.doc.file_name} == {"zorbital_guideline_2024.pdf"}


def test_family_and_type_filters(library: QA):
    hits = library.retrieve("dose twice daily", k=10, filters=Filters(doc_types=("formulary",)))
    assert hits and {h.doc.doc_type for h in hits} == {"formulary"}
    hits = library.retrieve("dose twice daily", k=10, filters=Filters(families=("zorbital-guideline",)))
    assert hits and {h.doc.family for h in hits} == {"zorbital-guideline"}


def test_lexical_side_finds_an_exact_drug_name(library: QA):
    snap = library.engine.snapshot()
    allowed = Filters().mask(snap)
    ranked = library.engine.view().lexical.ranking("quintor", allowed, 3)
    assert ranked and all("quintor" in snap.chunks[r].text.lower() for r, _ in ranked)


def test_extractive_answer_quotes_and_cites_the_current_version(library: QA):
    ans = library.answer("What is the usual adult dose of zorbital?")
    assert not ans.abstained
    assert "40 mg" in ans.text and "20 mg" not in ans.text
    assert ans.citations
    store = Store(database_path(library.settings.home), readonly=True)
    for c in ans.citations:
        assert f"[{c.n}]" in ans.text
        assert c.quote in ans.text  # every statement of the answer is a quote
        assert is_verbatim(c.quote, store.page_text(c.hit.chunk.doc_id, c.hit.chunk.page))
        assert c.hit.doc.status == "current"
    store.close()


def test_quote_not_verbatim_on_its_page_is_dropped(library: QA, monkeypatch: pytest.MonkeyPatch):
    import rag.answering

    question = "What is the usual adult dose of zorbital?"
    kept = library.answer(question)
    lost = kept.citations[0].quote
    # as if the chunker had changed the text of one sentence: that quote alone is dropped, the rest renumbered
    monkeypatch.setattr(rag.answering, "quoted_on_page",
                        lambda quote, page, header=None: quote != lost and is_verbatim(quote, page))
    ans = library.answer(question)
    assert lost not in ans.text and ans.abstained == (len(kept.citations) == 1)
    assert [c.n for c in ans.citations] == list(range(1, len(kept.citations)))
    monkeypatch.setattr(rag.answering, "quoted_on_page", lambda quote, page, header=None: False)
    assert library.answer(question).abstained  # nothing verifiable left: no answer


def test_units_are_scored_with_vectors_made_at_ingest(library: QA, hash_embedder):
    before = len(hash_embedder.calls)
    ans = library.answer("When is the potassium level checked during zorbital treatment?")
    assert not ans.abstained and "two weeks" in ans.text
    sent = [t for call in hash_embedder.calls[before:] for t in call]
    assert sent == ["When is the potassium level checked during zorbital treatment?"]  # the question only


def test_table_rows_are_answered_from_the_table(library: QA):
    ans = library.answer("quintor dose for the elderly")
    assert not ans.abstained
    assert "125 mg" in ans.text


def test_abstains_when_nothing_matches(library: QA):
    ans = library.answer("Which vaccine schedule applies to infants travelling to the tropics?")
    assert ans.abstained
    assert ans.text == ABSTAIN_TEXT and ans.citations == ()
    assert ans.hits  # the closest passages are still returned, to be shown as related


def test_answer_json_schema(library: QA):
    data = json.loads(json.dumps(library.answer("usual adult dose of zorbital").to_json()))
    assert {"question", "answer", "abstained", "citations", "hits", "generator", "timings_ms"} <= set(data)
    assert data["generator"] == "extractive"
    cite = data["citations"][0]
    assert {"n", "doc", "title", "version", "page", "page_label", "section", "quote", "chunk_id"} <= set(cite)
    hit = data["hits"][0]
    assert {"rank", "score", "doc", "title", "version", "page", "page_label", "section", "text",
            "chunk_id"} <= set(hit)
    assert {"retrieve", "answer", "total"} <= set(data["timings_ms"])
    assert data["lead"] == 1 and data["answer"].startswith(cite["quote"])  # the lead is shown first
    assert {"kind", "recommendation"} <= set(cite) and cite["kind"] in ("text", "table_row", "recommendation",
                                                                         "boxed_warning")
    refused = library.answer("What is the capital of France?").to_json()
    assert refused["abstained"] and refused["lead"] is None


def test_new_generation_is_picked_up_without_restart(library: QA, tmp_path: Path, hash_embedder):
    before = library.index_version
    extra = tmp_path / "extra"
    extra.mkdir()
    _doc(extra / "plorin_leaflet.pdf", "Plorin Leaflet", [Paragraph("Plorin is taken 15 mg at bedtime.")])
    ingest([extra], library.settings, hash_embedder)
    assert library.index_version != before
    assert any(h.doc.file_name == "plorin_leaflet.pdf" for h in library.retrieve("plorin bedtime", k=3))


def test_the_answerer_reads_the_unit_scores_of_the_re_ranking(library: QA, monkeypatch: pytest.MonkeyPatch):
    import rag.answering

    calls: list[int] = []
    score = rag.answering.score_candidates
    monkeypatch.setattr(rag.answering, "score_candidates", lambda q, cands, *a, **k: calls.append(len(cands))
                        or score(q, cands, *a, **k))
    ans = library.answer("What is the usual adult dose of zorbital?")
    assert not ans.abstained and len(calls) == 1  # scored once, for the re-ranking
