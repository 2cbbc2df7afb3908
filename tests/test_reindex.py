"""`guideline-qa reindex`: documents cut by an older release are re-cut in place, published atomically,
and every generation (old or new) keeps reading its own chunks and pages."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder
from tables_check import assert_tables_as_rebuilt

from cli.main import main
from ingest import pipeline
from ingest import reindex as reindex_module
from ingest.chunk import CHUNKER_VERSION
from ingest.pipeline import ingest
from ingest.reindex import reindex
from ingest.withdraw import withdraw
from rag.qa import QA
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import SCHEMA_VERSION, Store
from rag.text import is_verbatim
from rag.units import context, units

OLD = ["acme_warfarin_2023.pdf", "acme_gout_2024.pdf", "acme_asthma_2024.pdf"]  # marked as cut by chunker 1


@pytest.fixture
def home(settings, tmp_path: Path) -> Path:
    """Four documents (a superseded one and a withdrawn one among them), three cut by an 'older' chunker."""
    src = tmp_path / "src"
    files = [guide(src / "acme_warfarin_2023.pdf", "warfarin", extra="Old edition."),
             guide(src / "acme_warfarin_2025.pdf", "warfarin", extra="New edition."),
             guide(src / "acme_gout_2024.pdf", "gout"), guide(src / "acme_asthma_2024.pdf", "asthma", pages=3)]
    assert not ingest(files, settings, HashEmbedder()).failed
    withdraw(settings, "acme_asthma_2024.pdf", "wrong dose on p.2", by="ana")
    mark_old(settings.home, OLD)
    return settings.home


def mark_old(home: Path, names: list[str], version: int = 1) -> None:
    """Record `names` as cut by chunker `version`, as a home written by that release holds them."""
    store = Store(database_path(home))
    try:
        with store.transaction() as c:
            for d in store.documents():
                if d.file_name in names:
                    c.execute("UPDATE meta SET value = ? WHERE key = ?", (str(version), f"chunker/{d.doc_id}"))
    finally:
        store.close()


@pytest.fixture
def better_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release whose extraction reads 'promptly' as 'at once': the pages and some chunks change."""
    real = pipeline.extract_pdf

    def extract(src, *args, **kwargs):
        ext = real(src, *args, **kwargs)
        return replace(ext, pages=[replace(p, text=p.text.replace("promptly", "at once")) for p in ext.pages])

    monkeypatch.setattr(pipeline, "extract_pdf", extract)


def state(home: Path) -> dict:
    """What a reindex must not change: ids, names, families, versions, statuses, withdrawals."""
    store = Store(database_path(home), readonly=True)
    try:
        return {"docs": [(d.doc_id, d.file_name, d.title, d.family, d.version, d.status, d.superseded_by)
                         for d in store.documents()], "withdrawals": store.withdrawals()}
    finally:
        store.close()


def by_name(store: Store) -> dict:
    return {d.file_name: d for d in store.documents()}


def test_reindex_recuts_only_older_documents_into_one_generation_embedding_only_new_texts(
        home: Path, settings, better_extraction) -> None:
    before, gens = state(home), Store(database_path(home), readonly=True).generations()
    store = Store(database_path(home), readonly=True)
    docs = by_name(store)
    old_texts = {c.embed_text(d.title) for d in docs.values() for c in store.chunks_of(d.doc_id)}
    old_texts |= {context(d.title, c.section, u) for d in docs.values() for c in store.chunks_of(d.doc_id)
                  for u in units(c)}  # the quotable units' vectors, made at ingest too
    kept_ids = [c.chunk_id for c in store.chunks_of(docs["acme_warfarin_2025.pdf"].doc_id)]
    store.close()
    emb = HashEmbedder()
    report = reindex(settings, emb, extract_workers=0)
    assert sorted(e["file"] for e in report.recut) == sorted(OLD) and report.failed == []
    assert_tables_as_rebuilt(home, emb.id)  # re-cut rows: the tables are made again from every row
    assert report.up_to_date == 1 and all(e["from_chunker"] == 1 for e in report.recut)
    store = Store(database_path(home), readonly=True)
    try:
        assert store.generations() == [*gens, report.generation]  # one generation, published
        assert published_generation(home) == report.generation
        new_chunks = [(docs[n].title, c) for n in OLD for c in store.chunks_of(docs[n].doc_id)]
        new_texts = [c.embed_text(title) for title, c in new_chunks]
        changed = sorted(t for t in new_texts if t not in old_texts)
        assert changed and len(changed) < len(new_texts)  # some texts changed, some did not
        new_units = {context(title, c.section, u) for title, c in new_chunks for u in units(c)}
        changed_units = sorted(new_units - old_texts - set(new_texts))
        assert changed_units and len(changed_units) < len(new_units)
        # exactly the changed ones embedded
        assert sorted(t for call in emb.calls for t in call) == sorted(changed + changed_units)
        assert report.embedded == len(changed)
        for n in OLD:
            d = docs[n]
            assert store.cut(d.doc_id) == 1 and store.chunker_version(d.doc_id) == CHUNKER_VERSION
            assert "at once" in " ".join(p.text for p in store.pages(d.doc_id))
            assert "promptly" in " ".join(p.text for p in store.pages(d.doc_id, cut=0))  # the old cut stays
            assert all(c.cut == 1 for c in store.chunks_of(d.doc_id))
        assert [c.chunk_id for c in store.chunks_of(docs["acme_warfarin_2025.pdf"].doc_id)] == kept_ids
    finally:
        store.close()
    assert state(home) == before
    snap = load_snapshot(home, emb.id)
    assert {c.doc_id: c.cut for c in snap.chunks} == {d.doc_id: int(d.file_name in OLD) for d in docs.values()}
    assert set(kept_ids) <= {c.chunk_id for c in snap.chunks}
    assert {d.file_name: d.status for d in snap.docs.values()} == {n: s for _, n, _, _, _, s, _ in before["docs"]}
    again = reindex(settings, HashEmbedder(), extract_workers=0)
    assert (again.recut, again.failed, again.generation, again.up_to_date) == ([], [], None, 4)


def test_a_reader_holding_the_old_view_quotes_verbatim_during_and_after_the_reindex(
        home: Path, settings, better_extraction, monkeypatch: pytest.MonkeyPatch) -> None:
    qa = QA(settings, embedder=HashEmbedder())
    old_view = qa.engine.view()
    reader = QA(settings, engine=qa.engine)
    monkeypatch.setattr(reader.engine, "view", lambda: old_view)  # its question began before the publish
    gout = by_name(Store(database_path(home), readonly=True))["acme_gout_2024.pdf"]
    seen: list = []
    publish = reindex_module.publish_generation

    def publishing(*args, **kwargs):
        seen.append(reader.answer("Treat gout promptly?"))  # during: the new generation is being published
        return publish(*args, **kwargs)

    monkeypatch.setattr(reindex_module, "publish_generation", publishing)
    report = reindex(settings, HashEmbedder(), extract_workers=0)
    assert report.generation and published_generation(home) == report.generation
    seen.append(reader.answer("Treat gout promptly?"))  # after: the old view still answers
    store = Store(database_path(home), readonly=True)
    try:
        for answer in seen:
            assert answer.index_version == old_view.gen_id and not answer.abstained
            quotes = [c for c in answer.citations if "promptly" in c.quote]
            assert quotes, [c.quote for c in answer.citations]
            for c in answer.citations:
                assert c.hit.chunk.cut == 0
                assert is_verbatim(c.quote, store.page_text(gout.doc_id, c.hit.chunk.page, 0))
            # the same page as the new cut reads it no longer holds the quote: only the cut makes it verbatim
            assert "promptly" not in store.page_text(gout.doc_id, quotes[0].hit.chunk.page)
    finally:
        store.close()
    from ui import services

    page = seen[-1].citations[0].hit.chunk.page
    assert "promptly" in services.page_text(str(home), gout.doc_id, page, 0)
    assert "at once" in services.page_text(str(home), gout.doc_id, page, 1)
    fresh = QA(settings, embedder=HashEmbedder()).answer("Treat gout at once?")
    assert fresh.index_version == report.generation and not fresh.abstained
    assert all(c.hit.chunk.cut == 1 for c in fresh.citations if c.hit.doc.doc_id == gout.doc_id)
    assert any("at once" in c.quote for c in fresh.citations)


def test_a_missing_or_changed_source_file_is_named_and_keeps_its_chunks(home: Path, settings, tmp_path: Path) -> None:
    (tmp_path / "src" / "acme_gout_2024.pdf").unlink()
    guide(tmp_path / "src" / "acme_asthma_2024.pdf", "asthma", extra="Edited since.", pages=3)  # other bytes
    store = Store(database_path(home), readonly=True)
    docs = by_name(store)
    chunks = {n: [c.chunk_id for c in store.chunks_of(docs[n].doc_id)] for n in OLD}
    store.close()
    report = reindex(settings, HashEmbedder(), extract_workers=0)
    assert [e["file"] for e in report.recut] == ["acme_warfarin_2023.pdf"] and report.generation
    failed = {e["file"]: e["error"] for e in report.failed}
    assert set(failed) == {"acme_gout_2024.pdf", "acme_asthma_2024.pdf"}
    assert "acme_gout_2024.pdf" in failed["acme_gout_2024.pdf"] and "is missing" in failed["acme_gout_2024.pdf"]
    assert "sha256 differs" in failed["acme_asthma_2024.pdf"]
    assert all("chunks (chunker 1) are kept" in e and "\n" not in e for e in failed.values())
    store = Store(database_path(home), readonly=True)
    try:
        for n in ("acme_gout_2024.pdf", "acme_asthma_2024.pdf"):
            assert [c.chunk_id for c in store.chunks_of(docs[n].doc_id)] == chunks[n]
            assert store.chunker_version(docs[n].doc_id) == 1 and store.cut(docs[n].doc_id) == 0
    finally:
        store.close()
    snap = load_snapshot(home, HashEmbedder().id)
    assert set(chunks["acme_gout_2024.pdf"]) <= {c.chunk_id for c in snap.chunks}


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds SentenceTransformerEmbedder(...): give it the HashEmbedder instead."""
    import rag.embedder

    monkeypatch.setattr(rag.embedder, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())


def test_cli_reindex_families_exit_codes_and_json(home: Path, tmp_path: Path, capsys, fake_model) -> None:
    (tmp_path / "src" / "acme_gout_2024.pdf").unlink()
    assert main(["reindex", "--family", "no-such-family"]) == 1
    err = capsys.readouterr().err
    assert "no family 'no-such-family'" in err and "acme-gout" in err and len(err.strip().splitlines()) == 1
    assert main(["reindex", "--family", "acme-warfarin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["file"] for e in out["recut"]] == ["acme_warfarin_2023.pdf"] and out["up_to_date"] == 1
    assert out["failed"] == [] and out["generation"] and out["chunker"] == CHUNKER_VERSION
    assert main(["reindex", "--family", "acme-warfarin"]) == 0
    assert capsys.readouterr().out.startswith("nothing to re-cut: the 2 documents of family acme-warfarin are cut")
    assert main(["reindex"]) == 2  # gout's file is gone: named, one line, exit 2; asthma is re-cut
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[:2] for ln in lines[:-1]] == [["re-cut", "acme_asthma_2024.pdf"], ["KEPT", "acme_gout_2024.pdf"]]
    assert "is missing" in lines[1] and lines[-1].startswith("1 re-cut, 1 kept as they were")
    assert main(["ingest", str(tmp_path / "src" / "acme_warfarin_2023.pdf")]) == 0
    assert "older release" not in capsys.readouterr().out  # the ingest summary no longer points at it


def test_reindex_takes_the_ingest_lock(home: Path, settings) -> None:
    from ingest.pipeline import ingest_lock
    from rag.errors import GQAError

    with ingest_lock(home), pytest.raises(GQAError, match="another ingest is running"):
        reindex(settings, HashEmbedder(), extract_workers=0)


SCHEMA_1 = """
CREATE TABLE pages1 (doc_id TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL, text TEXT NOT NULL,
                     PRIMARY KEY (doc_id, number));
INSERT INTO pages1 SELECT doc_id, number, label, text FROM pages;
DROP TABLE pages;
ALTER TABLE pages1 RENAME TO pages;
ALTER TABLE chunks DROP COLUMN cut;
ALTER TABLE documents DROP COLUMN cut;
UPDATE meta SET value = '1' WHERE key = 'schema_version';
"""


def test_a_home_of_schema_1_reads_as_before_and_is_migrated_by_its_first_writer(home: Path, settings,
                                                                                better_extraction) -> None:
    reference = state(home)
    before = Store(database_path(home), readonly=True)
    # as a schema-1 file holds them: without the dropped running lines, recorded since
    pages = {d.doc_id: [replace(p, dropped=()) for p in before.pages(d.doc_id)] for d in before.documents()}
    before.close()
    conn = sqlite3.connect(database_path(home))
    conn.executescript(SCHEMA_1)
    conn.close()
    old = Store(database_path(home), readonly=True)  # a reader does not migrate
    try:
        assert old.get_meta("schema_version") == "1"
        assert {d.doc_id: old.pages(d.doc_id) for d in old.documents()} == pages
        assert all(c.cut == 0 for d in old.documents() for c in old.chunks_of(d.doc_id))
    finally:
        old.close()
    assert load_snapshot(home, HashEmbedder().id).size > 0
    report = reindex(settings, HashEmbedder(), extract_workers=0)  # its writer migrates, then re-cuts
    assert len(report.recut) == 3 and not report.failed
    store = Store(database_path(home), readonly=True)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert {d.doc_id: store.pages(d.doc_id, cut=0) for d in store.documents()} == pages
    finally:
        store.close()
    assert state(home) == reference


def test_the_knowledge_page_offers_the_recut_with_a_count(home: Path, settings, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from streamlit.testing.v1 import AppTest

    from ui.services import QA_KEY

    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=60)
    at.session_state[QA_KEY] = QA(settings, embedder=HashEmbedder())
    at = at.run().switch_page("page_knowledge.py").run()
    at.text_input(key="admin_token").input("tok")
    at = at.run()
    assert "3 documents were cut into passages by an older release" in at.warning[0].value
    (button,) = [b for b in at.button if b.key == "reindex"]
    assert button.label == "Re-cut 3 documents"
    at = button.click().run()
    assert not at.exception and not at.error
    summary = at.dataframe[-1].value
    assert sorted(summary["File"]) == sorted(OLD) and set(summary["Result"]) == {"re-cut"}
    assert "Published index" in at.success[0].value
    at = at.run()
    assert not [b for b in at.button if b.key == "reindex"]  # nothing left to re-cut: no offer
