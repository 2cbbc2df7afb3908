"""One contract for both stores: the embedded one (SQLite + generation folders) and PostgreSQL (rag/pg/).

Each test runs against both (the `store` fixture); test_both_stores_hold_the_same_library ingests the
demo corpus into each and compares them: documents, pages, chunks, cached vectors and top hits.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from docgen import guide
from fakes import HashEmbedder
from pg import drop_database, fresh_database, pg_server  # noqa: F401

from eval import history
from ingest import reindex as reindex_mod
from ingest.pipeline import ingest
from ingest.reindex import reindex
from ingest.withdraw import reinstate, withdraw
from rag import audit
from rag.engine import Engine
from rag.qa import QA
from rag.retrieve import Filters, dense_ranking
from rag.storage import open_store, published
from ui import feedback


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, settings, monkeypatch: pytest.MonkeyPatch):
    """Settings over the embedded store or over a fresh PostgreSQL database (GQA_DATABASE_URL set)."""
    if request.param == "sqlite":
        monkeypatch.delenv("GQA_DATABASE_URL", raising=False)
        yield settings
        return
    server = request.getfixturevalue("pg_server")
    url = fresh_database(server)
    monkeypatch.setenv("GQA_DATABASE_URL", url)
    try:
        yield replace(settings, database_url=url)
    finally:
        drop_database(server, url)


def library(settings) -> dict:
    """Everything a store holds of the library, in its own order."""
    s = open_store(settings, readonly=True)
    try:
        docs = s.documents()
        out = {"docs": [replace(d, ingested_at="") for d in docs],
               "pages": {d.doc_id: s.pages(d.doc_id) for d in docs},
               "chunks": {d.doc_id: s.chunks_of(d.doc_id) for d in docs},
               "withdrawals": [{**w, "at": "", "generation": ""} for w in s.withdrawals()]}
        hashes = s.content_hashes()
        out["hashes"] = hashes
        out["by_id"] = s.chunks(list(hashes))
        out["vectors"] = s.cached_vectors(sorted(set(hashes.values())), HashEmbedder().id, HashEmbedder().dim)
        return out
    finally:
        s.close()


def demo_questions() -> list[dict]:
    return [json.loads(line) for line in (DATA / "demo_eval.jsonl").read_text().splitlines() if line.strip()]


def rankings(settings, flt: Filters) -> dict:
    """Per demo question: the dense and lexical rankings and whether the fused top 5 holds a gold page."""
    engine = Engine(settings, HashEmbedder())
    view = engine.view()
    allowed = flt.mask(view.snap)
    out = {}
    for item in demo_questions():
        q = item["question"]
        dense = dense_ranking(view.snap, HashEmbedder().embed([q]), allowed, 10)
        lexical = view.lexical.ranking(q, allowed, 10)
        fused = engine.retrieve(q, k=5, filters=flt, view=view)
        out[item["id"]] = {"dense": [(view.snap.chunks[r].chunk_id, s) for r, s in dense],
                           "lexical": [view.snap.chunks[r].chunk_id for r, _ in lexical],
                           "gold": any(h.doc.file_name == src["doc"] and h.chunk.page in src["pages"]
                                       for h in fused for src in item["sources"])}
    return out


def test_both_stores_hold_the_same_library(settings, pg_server, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                           tmp_path: Path) -> None:
    url = fresh_database(pg_server)
    try:
        embedded, shared = settings, replace(settings, home=tmp_path / "pg-home", database_url=url)
        for s in (embedded, shared):
            report = ingest([DATA], s, HashEmbedder())
            assert not report.failed and report.chunks > 10
        a, b = library(embedded), library(shared)
        assert a["docs"] == b["docs"] and len(a["docs"]) == 2
        assert a["pages"] == b["pages"] and a["chunks"] == b["chunks"] and a["by_id"] == b["by_id"]
        assert any(k.fields for ks in a["chunks"].values() for k in ks), "the table and recommendation fields"
        assert a["hashes"] == b["hashes"] and a["vectors"].keys() == b["vectors"].keys()
        assert all(np.array_equal(a["vectors"][h], b["vectors"][h]) for h in a["vectors"])  # float32, exact
        for flt in (Filters(), Filters(doc_types=("formulary",), include_superseded=True)):
            a, b = rankings(embedded, flt), rankings(shared, flt)
            for qid in a:  # dense: the same rows in the same order; halfvec scores within 1e-3 of float32
                assert [c for c, _ in a[qid]["dense"]] == [c for c, _ in b[qid]["dense"]], qid
                assert np.allclose([s for _, s in a[qid]["dense"]], [s for _, s in b[qid]["dense"]], atol=1e-3)
            # lexical: ts_rank is not BM25, but the rows holding the question's words are mostly the same
            overlap = [len(set(a[q]["lexical"][:5]) & set(b[q]["lexical"][:5])) / 5 for q in a]
            assert np.mean(overlap) >= 0.5 and min(overlap) >= 0.4, overlap
            # fused: the gold page in the top 5 as often, give or take one question
            assert sum(r["gold"] for r in b.values()) >= sum(r["gold"] for r in a.values()) - 1
    finally:
        drop_database(pg_server, url)


def test_a_publish_switches_readers_and_a_view_stays_pinned(store, tmp_path: Path) -> None:
    engine = Engine(store, HashEmbedder())
    ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], store, HashEmbedder())
    first = engine.view()
    assert first.gen_id == published(store) and {d.family for d in first.snap.docs.values()} == {"acme-gout"}
    ingest([guide(tmp_path / "acme_asthma_2024.pdf", "asthma")], store, HashEmbedder())
    second = engine.view()  # picked up without a restart
    assert second.gen_id == published(store) != first.gen_id
    assert {h.doc.family for h in engine.retrieve("asthma inhaler", k=5, view=first)} == {"acme-gout"}
    assert "acme-asthma" in {h.doc.family for h in engine.retrieve("asthma inhaler", k=5, view=second)}
    rows = [c.chunk_id for c in first.snap.chunks]
    assert [c.chunk_id for c in second.snap.chunks][:len(rows)] == rows  # new rows are appended
    s = open_store(store, readonly=True)
    try:
        assert s.generations() == [first.gen_id, second.gen_id]
    finally:
        s.close()


def test_supersede_withdraw_reinstate(store, tmp_path: Path) -> None:
    old = guide(tmp_path / "acme_malaria_2022.pdf", "malaria", title="Malaria guideline", extra="Use bed nets.")
    new = guide(tmp_path / "acme_malaria_2025.pdf", "malaria", title="Malaria guideline", extra="Give zorblax.")
    ingest([old], store, HashEmbedder())
    assert ingest([new], store, HashEmbedder()).new_version
    engine = Engine(store, HashEmbedder())

    def served(**flt) -> set[str]:
        return {h.doc.file_name for h in engine.retrieve("malaria parasite fever", k=50, filters=Filters(**flt))}

    assert served() == {new.name} and served(include_superseded=True) == {old.name, new.name}
    out = withdraw(store, new.name, "wrong zorblax dose", by="ana")
    assert (out["status"], out["now_current"]) == ("withdrawn", [old.name])
    assert served() == {old.name} and served(include_superseded=True) == {old.name}
    assert reinstate(store, new.name, by="bo")["now_superseded"] == [old.name]
    assert served() == {new.name}
    s = open_store(store, readonly=True)
    try:
        events = [(e["action"], e["by"]) for e in s.withdrawals()]
        assert events == [("withdraw", "ana"), ("reinstate", "bo")]
        assert {d.file_name: d.status for d in s.documents()} == {old.name: "superseded", new.name: "current"}
    finally:
        s.close()


def test_reindex_publishes_a_new_cut(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], store, HashEmbedder())
    engine = Engine(store, HashEmbedder())
    before = engine.view()
    monkeypatch.setattr(reindex_mod, "CHUNKER_VERSION", reindex_mod.CHUNKER_VERSION + 1)  # every cut is older
    report = reindex(store, HashEmbedder())
    assert [r["cut"] for r in report.recut] == [1] and report.generation == published(store)
    after = engine.view()
    assert {c.cut for c in after.snap.chunks} == {1} and {c.cut for c in before.snap.chunks} == {0}
    s = open_store(store, readonly=True)
    try:  # the old cut stays readable for the view that holds it
        doc = next(iter(before.snap.docs))
        assert s.page_text(doc, 1, cut=0) == s.page_text(doc, 1, cut=1) and s.cut(doc) == 1
    finally:
        s.close()


def test_feedback_audit_and_eval_rows(store, tmp_path: Path) -> None:
    ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], store, HashEmbedder())
    answer = QA(store, embedder=HashEmbedder()).answer("What is the gout treatment?")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    first = feedback.record(store, answer, "helpful", "patient detail", now=now - timedelta(days=91))
    second = feedback.record(store, answer, "wrong_citation", "p.2", now=now)
    assert second > first
    got = feedback.recent(store)
    assert [r["rating"] for r in got] == ["wrong_citation", "helpful"]
    assert got[1]["comment"] is None and got[1]["purged_at"] is not None  # past retention: free text gone
    assert audit.record(store, answer, "api", who="ward-7", now=now - timedelta(days=100))
    assert audit.record(store, answer, "cli", who="ana", now=now)
    rows = audit.rows(store, now=now)
    assert [(r["channel"], r["who"]) for r in rows] == [("cli", "ana")]  # the old one was deleted
    assert rows[0]["index_version"] == answer.index_version and isinstance(rows[0]["citations"], list)
    summary = {"run_id": "r1", "started_at": "2026-06-01T10:00:00", "finished_at": "2026-06-01T10:05:00",
               "dataset": {"path": "dev.jsonl", "key": "k", "items": 3}, "index_version": answer.index_version,
               "generator": "extractive", "judge": {"name": "offline"}, "passed": True,
               "metrics": {"hit_rate": 0.5}, "report_dir": str(tmp_path)}
    history.record_run(store.home, summary)
    history.record_run(store.home, {**summary, "run_id": "r2", "started_at": "2026-06-02T10:00:00",
                                    "metrics": {"hit_rate": 0.75}})
    runs = history.comparable_runs(store.home, "k", "offline", "extractive")
    assert [(r["run_id"], r["metrics"]["hit_rate"]) for r in runs] == [("r1", 0.5), ("r2", 0.75)]
    assert history.comparable_runs(store.home, "k", "llm", "extractive") == []
