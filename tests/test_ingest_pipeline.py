"""The ingest pipeline on generated PDFs with the HashEmbedder: no-op re-ingest, versions, cache, overrides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from docgen import guide

from ingest.chunk import CHUNKER_VERSION
from ingest.pipeline import collect_pdfs, ingest
from rag.engine import Engine
from rag.retrieve import Filters
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import Store
from rag.units import context, units


def documents(settings) -> dict:
    store = Store(database_path(settings.home))
    try:
        return {d.file_name: d for d in store.documents()}
    finally:
        store.close()


def store_of(settings) -> Store:
    return Store(database_path(settings.home))


def embedded_texts(embedder) -> list[str]:
    return [t for call in embedder.calls for t in call]


def test_ingest_publishes_documents_and_index(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "in" / "acme_warfarin_2024.pdf", "warfarin")
    b = guide(tmp_path / "in" / "acme_gout_2023.pdf", "gout", pages=3)
    report = ingest([tmp_path / "in"], settings, hash_embedder)
    assert report.failed == [] and report.unchanged == [] and report.new_version == []
    assert sorted(Path(e["file"]).name for e in report.added) == sorted([a.name, b.name])
    assert report.generation and published_generation(settings.home) == report.generation
    docs = documents(settings)
    assert docs[a.name].pages == 2 and docs[b.name].pages == 3
    assert docs[a.name].family == "acme-warfarin" and docs[a.name].version == "2024"
    assert {d.status for d in docs.values()} == {"current"}
    snap = load_snapshot(settings.home, hash_embedder.id)
    assert snap.size == report.chunks == sum(d.chunks for d in docs.values())
    assert report.embedded == report.chunks  # nothing was cached yet
    hits = Engine(settings, hash_embedder).retrieve("warfarin anticoagulant INR bleeding", k=3)
    assert hits[0].doc.file_name == a.name


def test_reingest_identical_bytes_is_a_noop(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_warfarin_2024.pdf", "warfarin")
    first = ingest([a], settings, hash_embedder)
    calls = len(hash_embedder.calls)
    store = store_of(settings)
    gens = store.generations()
    store.close()
    again = ingest([a], settings, hash_embedder)
    assert again.unchanged == [{"file": str(a), "family": "acme-warfarin", "version": "2024",
                                "chunker": CHUNKER_VERSION, "doc_id": documents(settings)[a.name].doc_id}]
    assert again.added == [] and again.new_version == [] and again.failed == []
    assert again.generation is None
    assert len(hash_embedder.calls) == calls  # the embedder was not called again
    assert published_generation(settings.home) == first.generation
    store = store_of(settings)
    assert store.generations() == gens
    store.close()
    assert len(documents(settings)) == 1


def test_same_bytes_copied_elsewhere_under_same_name_is_unchanged(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "one" / "acme_warfarin_2024.pdf", "warfarin")
    ingest([a], settings, hash_embedder)
    copy = tmp_path / "two" / a.name
    copy.parent.mkdir()
    shutil.copy(a, copy)
    report = ingest([copy], settings, hash_embedder)
    assert [Path(e["file"]).name for e in report.unchanged] == [a.name] and report.generation is None


def test_new_version_supersedes_old(tmp_path: Path, settings, hash_embedder) -> None:
    old = guide(tmp_path / "acme_warfarin_2023.pdf", "warfarin", title="Warfarin guideline",
                extra="The 2023 edition advised weekly INR checks.")
    new = guide(tmp_path / "acme_warfarin_2025.pdf", "warfarin", title="Warfarin guideline",
                extra="The 2025 edition advises fortnightly INR checks.")
    ingest([old], settings, hash_embedder)
    first_gen = published_generation(settings.home)
    report = ingest([new], settings, hash_embedder)
    assert report.added == []
    assert [(Path(e["file"]).name, e["status"], e["supersedes"]) for e in report.new_version] == [
        (new.name, "current", [old.name])]
    docs = documents(settings)
    assert (docs[old.name].status, docs[old.name].superseded_by) == ("superseded", new.name)
    assert (docs[new.name].status, docs[new.name].superseded_by) == ("current", None)
    assert docs[old.name].family == docs[new.name].family == "acme-warfarin"
    # nothing deleted: the old document's chunks are still stored and indexed
    store = store_of(settings)
    old_chunks = store.chunks_of(docs[old.name].doc_id)
    store.close()
    assert old_chunks and len(old_chunks) == docs[old.name].chunks
    snap = load_snapshot(settings.home, hash_embedder.id)
    assert snap.gen_id != first_gen
    assert snap.size == docs[old.name].chunks + docs[new.name].chunks
    assert snap.docs[docs[old.name].doc_id].status == "superseded"
    engine = Engine(settings, hash_embedder)
    query = "warfarin edition INR checks"
    current = engine.retrieve(query, k=20)
    assert current and {h.doc.file_name for h in current} == {new.name}
    everything = engine.retrieve(query, k=20, filters=Filters(include_superseded=True))
    assert {h.doc.file_name for h in everything} == {old.name, new.name}
    assert {h.doc.status for h in everything if h.doc.file_name == old.name} == {"superseded"}


def test_older_version_ingested_after_newer_is_superseded_at_once(tmp_path: Path, settings, hash_embedder) -> None:
    new = guide(tmp_path / "acme_gout_2025.pdf", "gout", extra="New advice.")
    old = guide(tmp_path / "acme_gout_2019.pdf", "gout", extra="Old advice.")
    ingest([new], settings, hash_embedder)
    report = ingest([old], settings, hash_embedder)
    assert [(Path(e["file"]).name, e["status"], e["superseded_by"]) for e in report.added] == [
        (old.name, "superseded", new.name)]
    assert report.new_version == []
    docs = documents(settings)
    assert docs[new.name].status == "current" and docs[old.name].status == "superseded"


def test_two_versions_in_one_batch(tmp_path: Path, settings, hash_embedder) -> None:
    old = guide(tmp_path / "in" / "acme_asthma_2020.pdf", "asthma", extra="Edition twenty.")
    new = guide(tmp_path / "in" / "acme_asthma_2024.pdf", "asthma", extra="Edition twenty four.")
    report = ingest([tmp_path / "in"], settings, hash_embedder)
    docs = documents(settings)
    assert docs[new.name].status == "current" and docs[old.name].status == "superseded"
    assert docs[old.name].superseded_by == new.name
    assert [Path(e["file"]).name for e in report.new_version] == [new.name]
    snap = load_snapshot(settings.home, hash_embedder.id)
    assert {snap.chunks[i].doc_id for i in range(snap.size) if snap.current_rows[i]} == {docs[new.name].doc_id}


def test_different_families_are_both_current(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_metformin_highlights_2026.pdf", "metformin")
    b = guide(tmp_path / "acme_metformin_extended_release_2025.pdf", "metformin", extra="Extended release.")
    ingest([a, b], settings, hash_embedder)
    docs = documents(settings)
    assert docs[a.name].family != docs[b.name].family
    assert docs[a.name].status == docs[b.name].status == "current"


def test_unchanged_chunk_in_another_file_is_not_embedded_twice(tmp_path: Path, settings, hash_embedder) -> None:
    old = guide(tmp_path / "acme_malaria_2022.pdf", "malaria", title="Malaria guideline", pages=3,
                extra="Use bed nets.")
    new = guide(tmp_path / "acme_malaria_2023.pdf", "malaria", title="Malaria guideline", pages=3,
                extra="Use treated bed nets every night.")
    ingest([old], settings, hash_embedder)
    first_texts = embedded_texts(hash_embedder)
    assert len(first_texts) == len(set(first_texts))
    calls = len(hash_embedder.calls)
    report = ingest([new], settings, hash_embedder)
    sent = [t for call in hash_embedder.calls[calls:] for t in call]
    docs = documents(settings)
    store = store_of(settings)
    title = docs[new.name].title
    new_chunks = store.chunks_of(docs[new.name].doc_id)
    store.close()
    new_texts = [c.embed_text(title) for c in new_chunks]
    unit_texts = {context(title, c.section, u) for c in new_chunks for u in units(c)} - set(new_texts)
    expected = [t for t in new_texts if t not in set(first_texts)]
    expected_units = [t for t in unit_texts if t not in set(first_texts)]
    assert 0 < len(expected) < len(new_texts)  # the editions share most chunks, not all
    assert 0 < len(expected_units) < len(unit_texts)
    assert sorted(sent) == sorted(expected + expected_units)
    assert report.embedded == len(expected) and report.chunks == len(new_texts)
    assert report.units_embedded == len(expected_units)
    # the cached vectors are the ones the embedder gives, so search over the new document still works
    hits = Engine(settings, hash_embedder).retrieve("treated bed nets every night malaria", k=1)
    assert hits[0].doc.file_name == new.name and "treated bed nets" in hits[0].chunk.text


def test_family_and_version_overrides(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "local protocol.pdf", "asthma")
    report = ingest([a], settings, hash_embedder, family="trust-asthma", version="v7")
    assert [(e["family"], e["version"]) for e in report.added] == [("trust-asthma", "v7")]
    d = documents(settings)[a.name]
    assert (d.family, d.version) == ("trust-asthma", "v7")
    b = guide(tmp_path / "other name.pdf", "asthma", extra="Revised.")
    report = ingest([b], settings, hash_embedder, family="trust-asthma", version="v8")
    assert [e["supersedes"] for e in report.new_version] == [[a.name]]
    docs = documents(settings)
    assert docs[a.name].status == "superseded" and docs[b.name].status == "current"


def test_report_json_shape(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_gout_2023.pdf", "gout")
    out = ingest([a, tmp_path / "missing.pdf"], settings, hash_embedder).to_json()
    assert {"added", "new_version", "unchanged", "failed"} <= set(out)
    assert out["failed"] == [{"file": str(tmp_path / "missing.pdf"), "error": "path does not exist"}]
    assert out["chunks"] > 0 and out["pages"] == 2 and out["generation"]


def test_collect_pdfs_expands_folders_recursively(tmp_path: Path) -> None:
    a = guide(tmp_path / "top" / "a_gout_2020.pdf", "gout")
    b = guide(tmp_path / "top" / "sub" / "b_asthma_2020.PDF", "asthma")
    (tmp_path / "top" / "notes.txt").write_text("not a pdf")
    files, failed = collect_pdfs([tmp_path / "top"])
    assert sorted(files) == sorted([a, b]) and failed == []


def test_progress_callback_reports_pages_and_chunks(tmp_path: Path, settings, hash_embedder) -> None:
    guide(tmp_path / "in" / "a_gout_2020.pdf", "gout", pages=3)
    guide(tmp_path / "in" / "b_asthma_2020.pdf", "asthma", pages=2)
    seen: list[tuple[str, int]] = []
    report = ingest([tmp_path / "in"], settings, hash_embedder, on_progress=lambda s, d, t: seen.append((s, d)))
    assert [d for s, d in seen if s == "pages"] == [3, 5]
    assert [d for s, d in seen if s == "chunks"][-1] == report.chunks


def test_one_ingest_at_a_time_per_home(tmp_path: Path, settings, hash_embedder) -> None:
    """A second ingest into a home that is being ingested is refused (threads of one process included)."""
    from ingest.pipeline import ingest_lock
    from rag.config import Settings
    from rag.errors import GQAError

    a = guide(tmp_path / "acme_gout_2024.pdf", "gout")
    with ingest_lock(settings.home):
        with pytest.raises(GQAError, match="another ingest is running"):
            ingest([a], settings, hash_embedder)
        other = ingest([a], Settings.from_env(home=tmp_path / "other-home"), hash_embedder)
        assert other.failed == [] and other.generation
    report = ingest([a], settings, hash_embedder)
    assert report.failed == [] and [Path(e["file"]).name for e in report.added] == [a.name]
