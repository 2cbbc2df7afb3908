"""The real documents in ../shared/corpus, ingested once per session with the real embedder (slow tier)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import CORPUS, DEV_SET, needs_corpus, needs_dev_set

from eval.metrics import fold
from rag.config import Settings
from rag.engine import Engine
from rag.retrieve import Filters
from rag.snapshot import database_path, load_snapshot
from rag.store import Store
from rag.text import is_verbatim, paired_row
from rag.types import Chunk, Document
from rag.verify import table_parts

pytestmark = [pytest.mark.slow, needs_corpus]


def dev_items() -> list[dict]:
    if not DEV_SET.exists():
        return []
    items = [json.loads(line) for line in DEV_SET.read_text().splitlines() if line.strip()]
    return [it for it in items if it["answerable"]]


@pytest.fixture(scope="module")
def corpus(corpus_home: Path) -> tuple[dict[str, Document], dict[str, list[Chunk]], dict[str, list]]:
    """Documents by file name, their chunks in reading order, and their stored pages."""
    store = Store(database_path(corpus_home))
    try:
        docs = {d.file_name: d for d in store.documents()}
        chunks = {name: store.chunks_of(d.doc_id) for name, d in docs.items()}
        pages = {name: store.pages(d.doc_id) for name, d in docs.items()}
    finally:
        store.close()
    return docs, chunks, pages


def test_every_file_ingests(corpus, corpus_home: Path, real_embedder) -> None:
    from pypdf import PdfReader

    docs, chunks, pages = corpus
    assert set(docs) == {p.name for p in CORPUS.glob("*.pdf")}
    for name, d in docs.items():
        assert d.pages == len(PdfReader(CORPUS / name).pages) == len(pages[name]), name
        assert d.chunks == len(chunks[name]) > 0, name
        assert [c.ordinal for c in chunks[name]] == list(range(d.chunks)), name
        assert all(1 <= c.page <= c.page_end <= d.pages for c in chunks[name]), name
        assert sum(len(p.text) for p in pages[name]) > 100 * d.pages * 0.5, name
    snap = load_snapshot(corpus_home, real_embedder.id)
    assert snap.size == sum(d.chunks for d in docs.values())


def test_chunks_fit_the_model_window(corpus, real_embedder) -> None:
    """Title/section prefix + body + [CLS] and [SEP] fit the model's 256 word pieces: nothing is truncated."""
    docs, chunks, _ = corpus
    limit = Settings.from_env(home=Path("/nonexistent")).max_seq_tokens
    for name, d in docs.items():
        sizes = real_embedder.count_tokens([c.embed_text(d.title) for c in chunks[name]])
        worst = max(range(len(sizes)), key=sizes.__getitem__)
        assert sizes[worst] + 2 <= limit, (name, sizes[worst], chunks[name][worst].text[:200])


@needs_dev_set
@pytest.mark.parametrize("item", dev_items(), ids=lambda it: it["id"])
def test_must_include_terms_on_gold_pages(item: dict, corpus) -> None:
    """Each decisive term is in a chunk (its text or the section heading it carries) on one of the gold pages."""
    docs, chunks, _ = corpus
    missing = []
    for term in item["must_include"]:
        found = False
        for src in item["sources"]:
            gold = set(src["pages"])
            assert src["doc"] in docs, f"{src['doc']} was not ingested"
            found = found or any(
                fold(term) in fold(f"{c.section}\n{c.text}")
                for c in chunks[src["doc"]] if gold & set(range(c.page, c.page_end + 1))
            )
        if not found:
            missing.append(term)
    assert not missing, f"{item['id']}: {missing} not in any chunk on pages {item['sources']}"


def test_schistosomiasis_page_labels_differ_from_page_numbers(corpus) -> None:
    from pypdf import PdfReader

    _, chunks, pages = corpus
    name = "who_guideline_schistosomiasis_2022.pdf"
    printed = list(PdfReader(CORPUS / name).page_labels)
    assert [p.label for p in pages[name]] == printed
    differ = [p for p in pages[name] if p.label != str(p.number)]
    assert len(differ) > len(pages[name]) // 2
    assert any(re.fullmatch(r"[ivxlc]+", p.label) for p in pages[name])  # roman front matter
    assert all(c.page_label == printed[c.page - 1] for c in chunks[name])
    assert any(c.page_label != str(c.page) for c in chunks[name])


@pytest.mark.parametrize(("old", "new"), [
    ("fda_amoxicillin_tablets_2015.pdf", "fda_amoxicillin_highlights_2025.pdf"),
    ("fda_warfarin_highlights_2022.pdf", "fda_warfarin_label_2025.pdf"),
])
def test_version_pairs_supersede(old: str, new: str, corpus, corpus_home: Path, real_embedder) -> None:
    docs, _, _ = corpus
    assert docs[old].family == docs[new].family
    assert (docs[new].status, docs[new].superseded_by) == ("current", None)
    assert (docs[old].status, docs[old].superseded_by) == ("superseded", new)
    family = [d for d in docs.values() if d.family == docs[new].family]
    assert [d.file_name for d in family if d.status == "current"] == [new]
    engine = Engine(Settings.from_env(home=corpus_home), real_embedder)
    drug = docs[new].family.split("-")[-1]
    question = f"What is the recommended dose of {drug}?"
    only = Filters(families=(docs[new].family,))
    current = engine.retrieve(question, k=30, filters=only)
    assert current and {h.doc.file_name for h in current} == {new}
    both = engine.retrieve(question, k=200, filters=Filters(families=(docs[new].family,), include_superseded=True))
    assert {h.doc.file_name for h in both} == {old, new}
    unfiltered = engine.retrieve(question, k=50)
    assert old not in {h.doc.file_name for h in unfiltered}


def test_metformin_files_are_separate_current_families(corpus) -> None:
    docs, _, _ = corpus
    a, b = docs["fda_metformin_highlights_2026.pdf"], docs["fda_metformin_extended_release_2025.pdf"]
    assert a.family != b.family
    assert a.status == b.status == "current"


def test_every_other_document_is_current(corpus) -> None:
    docs, _, _ = corpus
    superseded = sorted(name for name, d in docs.items() if d.status != "current")
    assert superseded == ["fda_amoxicillin_tablets_2015.pdf", "fda_warfarin_highlights_2022.pdf"]


DHA_PPQ = [["5 to < 8", "20 + 160"], ["8 to < 11", "30 + 240"], ["11 to < 17", "40 + 320"], ["17 to < 25", "60 + 480"],
           ["25 to < 36", "80 + 640"], ["36 to < 60", "120 + 960"], ["60 < 80", "160 + 1280"], [">80", "200 + 1600"]]


def test_malaria_weight_band_dosing_tables_come_out_row_by_row_with_their_header(corpus) -> None:
    """Each weight-band dosing table (PDF pages 168-172): rows of a band paired with its dose, the header
    read as one label per column, on every chunk of the table."""
    _, chunks, pages = corpus
    name = "who_guidelines_malaria_2023.pdf"
    found: dict[tuple[int, tuple[str, ...]], list[list[str]]] = {}
    for c in chunks[name]:
        t = c.table
        if c.kind == "table" and t and t["header"] and t["header"][0] == "Body weight (kg)":
            head, rows = table_parts(c.text)
            assert head[-1] == " | ".join(t["header"]), head
            assert rows == [paired_row(t["header"], r) for r in t["cells"]]
            page = next(p.text for p in pages[name] if p.number == c.page)
            assert all(is_verbatim(r, page) for r in rows)
            found.setdefault((c.page, tuple(t["header"])), []).extend(t["cells"])
    assert sorted(p for p, _ in found) == [168, 168, 169, 169, 170, 172]
    for (_, header), rows in found.items():
        assert all(len(r) == len(header) and re.match(r"^[≥>\d]", r[0]) and re.search(r"\d", r[-1]) for r in rows)
    dha = next(rows for (p, h), rows in found.items() if p == 170)
    assert dha == DHA_PPQ
