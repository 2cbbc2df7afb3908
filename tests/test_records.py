"""Recommendation records (ingest/records.py): one unit each, with strength, certainty and year as fields."""

from __future__ import annotations

import json
import re

import pytest
from conftest import needs_corpus

from ingest.chunk import chunk_pages
from ingest.records import box_head, fields, statement_start, strength_below
from rag.types import Page


def count(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


BOX = ["Strong recommendation for , High certainty evidence", "Pyrethroid-only nets (2019)",
       "Pyrethroid-only long-lasting insecticidal nets should be deployed for the prevention of malaria.",
       "They protect children and adults alike."]


def test_fields_of_a_magicapp_box() -> None:
    assert json.loads(fields(BOX)) == {"recommendation": {"strength": "strong for", "certainty": "high",
                                                          "year": "2019"}}
    unrated = ["Strong recommendation for", "Revised dose for young children (2015)", "Give 2.5 mg/kg.",
               "*Not evaluated using the GRADE framework"]
    assert json.loads(fields(unrated))["recommendation"]["certainty"] == "not GRADE-evaluated"


@pytest.mark.parametrize(("line", "opens"), [
    ("Conditional recommendation against , Low certainty evidence Updated", True),
    ("Strong recommendation for", True),
    ("thus supporting a strong recommendation.", False),
    ("Strong recommendation", False),  # the schistosomiasis form, printed under its statement
])
def test_box_head(line: str, opens: bool) -> None:
    assert box_head(line) is opens


def test_strength_below_and_statement_start() -> None:
    assert strength_below("Strong recommendation", "Certainty of evidence: moderate")
    assert not strength_below("Strong recommendation", "Implementation considerations")
    assert statement_start(["See annex 2.", "Recommendation 3 WHO recommends testing", "of snails."]) == 1
    assert statement_start(["No numbered statement here."]) is None


def test_a_box_is_one_record_chunk_apart_from_the_prose_around_it() -> None:
    page = Page(1, "1", "\n".join(["4.1 Vector control", "Nets are the main intervention in Africa.", "",
                                   *BOX, "", "Practical info", "Distribute nets every three years."]))
    chunks = chunk_pages("d", "Malaria", [page], count, 256, 200, 1)
    recs = [c for c in chunks if c.kind == "recommendation"]
    assert len(recs) == 1 and recs[0].text == " ".join(BOX)
    assert recs[0].recommendation == {"strength": "strong for", "certainty": "high", "year": "2019"}
    others = " ".join(c.text for c in chunks if c.kind != "recommendation")
    assert "Nets are the main intervention" in others and "Distribute nets" in others
    assert "recommendation" not in others.lower()


def test_a_statement_with_its_strength_printed_below_is_one_record() -> None:
    text = "\n".join(["Summary of recommendations", "Recommendation 4 WHO recommends that health facilities",
                      "provide access to treatment with praziquantel.", "Strong recommendation",
                      "Certainty of evidence: moderate", "Implementation considerations",
                      "Pregnancy status should be assessed."])
    chunks = chunk_pages("d", "Schistosomiasis", [Page(1, "1", text)], count, 256, 200, 1)
    rec = next(c for c in chunks if c.kind == "recommendation")
    assert rec.text.startswith("Recommendation 4 WHO recommends") and rec.text.endswith("evidence: moderate")
    assert rec.recommendation == {"strength": "strong", "certainty": "moderate"}
    assert any("Pregnancy status" in c.text and c.kind == "text" for c in chunks)


@pytest.mark.slow
@needs_corpus
def test_corpus_recommendation_heads_stand_only_at_the_start_of_records(corpus_home) -> None:
    """No chunk holds 'Strong recommendation for' or 'Conditional recommendation ...' but at the start of
    a recommendation record, and the malaria guideline's records carry their strength."""
    from rag.snapshot import database_path
    from rag.store import Store

    store = Store(database_path(corpus_home), readonly=True)
    try:
        docs = {d.file_name: d for d in store.documents()}
        chunks = store.chunks_of(docs["who_guidelines_malaria_2023.pdf"].doc_id)
        everything = [c for d in docs.values() for c in store.chunks_of(d.doc_id)]
    finally:
        store.close()
    head = re.compile(r"(Strong|Conditional) recommendation (for|against)")
    stray = [(c.page, c.text[:80]) for c in everything for m in head.finditer(c.text)
             if not (c.kind == "recommendation" and m.start() == 0)]
    assert not stray, stray[:5]
    records = [c for c in chunks if c.kind == "recommendation"]
    assert len(records) >= 100
    assert all(c.recommendation and c.recommendation.get("strength") for c in records)


def test_a_table_chunk_carries_its_caption_header_and_cells(tmp_path, settings, hash_embedder) -> None:
    """Through ingest and retrieve --json: a table row's hit names its table's caption, header and cells."""
    from docgen import guide

    from ingest.pipeline import ingest
    from rag.engine import Engine

    assert not ingest([guide(tmp_path / "gout_guide_2024.pdf", "gout")], settings, hash_embedder).failed
    hits = Engine(settings, hash_embedder).retrieve("gout doses adults elderly", k=10)
    rows = [h.to_json() for h in hits if h.chunk.kind == "table"]
    assert rows, "the table is retrieved"
    table = rows[0]["table"]
    assert rows[0]["kind"] == "table_row"
    assert table["caption"] == "Table 1. Gout doses" and table["header"] == ["Group", "Dose"]
    assert ["Adults", "gout 10 mg daily"] in table["cells"] and ["Elderly", "gout 5 mg daily"] in table["cells"]
