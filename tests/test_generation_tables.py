"""rag.tables: a publish writes the row and lexical tables readers load; readers never build them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from docgen import guide
from fakes import HashEmbedder
from tables_check import assert_tables_as_rebuilt

import rag.bm25
from ingest.pipeline import ingest
from ingest.withdraw import withdraw
from rag import lexical, tables
from rag.engine import Engine
from rag.index import generations_dir
from rag.lexical import Lexical
from rag.qa import QA
from rag.retrieve import Filters
from rag.snapshot import StoredChunks, load_snapshot, published_generation
from rag.store import Store


@pytest.fixture
def home(tmp_path: Path, settings):
    emb = HashEmbedder()
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in ("warfarin", "gout", "asthma"):  # 40 pages each: more chunks than one question reads
        guide(docs / f"{topic}_guide_2000.pdf", topic, pages=40)
    assert ingest([docs], settings, emb).generation
    return settings, emb, tmp_path


def _tokenized(monkeypatch) -> list[int]:
    """Records how many texts each tokenize call was given."""
    calls: list[int] = []
    real = rag.bm25.tokenize

    def spy(texts):
        calls.append(len(texts))
        return real(texts)

    monkeypatch.setattr(lexical, "tokenize", spy)
    return calls


def test_readers_load_the_tables_the_publish_wrote_and_build_nothing(home, monkeypatch) -> None:
    settings, emb, _ = home
    assert_tables_as_rebuilt(settings.home, emb.id)
    monkeypatch.setattr(Lexical, "of", classmethod(lambda cls, snap: pytest.fail("a reader built BM25")))
    reads: list[int | None] = []
    real = Store.chunks

    def chunks(self, ids=None):
        ids = None if ids is None else list(ids)
        reads.append(None if ids is None else len(ids))
        return real(self, ids)

    monkeypatch.setattr(Store, "chunks", chunks)
    qa = QA(settings, embedder=emb)
    answer = qa.answer("What warfarin dose is given to adults?")
    view = qa.engine.view()
    assert isinstance(view.snap.chunks, StoredChunks) and isinstance(view.lexical.bm25.weights, np.memmap)
    assert any("warfarin" in c.hit.chunk.text.lower() for c in answer.citations)
    assert view.snap.size > 100
    assert None not in reads and sum(reads) <= 40  # only the passages the question scored or showed


def test_publishing_one_more_document_tokenizes_only_its_rows(home, monkeypatch) -> None:
    settings, emb, tmp = home
    calls = _tokenized(monkeypatch)
    path = guide(tmp / "metformin_guide_2001.pdf", "metformin", pages=3)
    report = ingest([path], settings, emb)
    snap = load_snapshot(settings.home, emb.id, report.generation)
    new_rows = int(np.sum(np.asarray(snap.row_doc) == snap.doc_order.index(
        next(d.doc_id for d in snap.docs.values() if d.file_name == path.name))))
    assert calls == [new_rows]
    assert_tables_as_rebuilt(settings.home, emb.id)


def test_a_status_change_reuses_the_rows_and_a_superseded_document_is_filtered_by_its_row_table(
        home, monkeypatch) -> None:
    settings, emb, tmp = home
    newer = guide(tmp / "warfarin_guide_2001.pdf", "warfarin", extra="Edition two reviews the INR on day 4.")
    ingest([newer], settings, emb)
    calls = _tokenized(monkeypatch)
    docs = {d.file_name: d for d in Store(settings.home / "gqa.sqlite", readonly=True).documents()}
    withdraw(settings, docs["gout_guide_2000.pdf"].doc_id, reason="test")
    assert calls in ([], [0])  # no row was read again
    assert_tables_as_rebuilt(settings.home, emb.id)
    snap = load_snapshot(settings.home, emb.id)
    rows = [snap.docs[snap.doc_order[i]] for i in snap.row_doc]
    for f in (Filters(), Filters(include_superseded=True), Filters(families=(docs["warfarin_guide_2000.pdf"].family,))):
        expected = [f.admits(d) for d in rows]
        assert f.mask(snap).tolist() == expected
    statuses = {d.file_name: d.status for d in rows}
    assert statuses["warfarin_guide_2000.pdf"] == "superseded" and statuses["gout_guide_2000.pdf"] == "withdrawn"
    assert not any(Filters(include_superseded=True).mask(snap)[i] for i, d in enumerate(rows)
                   if d.status == "withdrawn")
    engine = Engine(settings, emb)
    hits = engine.retrieve("warfarin INR day", k=10)
    assert hits and all(h.doc.status == "current" for h in hits)
    both = engine.retrieve("warfarin INR day", k=10, filters=Filters(include_superseded=True))
    assert {h.doc.status for h in both} == {"current", "superseded"}


def test_a_generation_without_tables_is_still_read(home) -> None:
    """A home published before the tables existed: readers build them in memory, with the same hits."""
    settings, emb, _ = home
    engine = Engine(settings, emb)
    before = [(h.chunk.chunk_id, round(h.score, 6)) for h in engine.retrieve("gout flare dose", k=8)]
    folder = generations_dir(settings.home) / published_generation(settings.home)
    for f in (folder / lexical.FOLDER).iterdir():
        f.unlink()
    (folder / lexical.FOLDER).rmdir()
    (folder / tables.ROWS).unlink()
    old = Engine(settings, emb)
    assert not isinstance(old.view().snap.chunks, StoredChunks)
    assert [(h.chunk.chunk_id, round(h.score, 6)) for h in old.retrieve("gout flare dose", k=8)] == before


def test_a_question_reads_rows_it_was_given_even_when_they_are_the_oldest_kept(home) -> None:
    settings, emb, _ = home
    snap = load_snapshot(settings.home, emb.id)
    chunks = snap.chunks
    chunks.KEEP = 4  # a small memory so that one read both reuses and evicts
    first = chunks.many([0, 1, 2, 3])
    again = chunks.many([0, 5, 6, 7, 8])  # row 0 is kept but the oldest: it must come back, not be evicted
    assert again[0] == first[0] and [c.chunk_id for c in again[1:]] == [chunks.ids[r] for r in (5, 6, 7, 8)]
    assert len(chunks._kept) <= 4
