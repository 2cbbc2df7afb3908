"""Copies are not failures, and what is hashed is what is parsed (each file read once, a few at a time)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder

from cli.main import main
from ingest import pipeline
from ingest.chunk import CHUNKER_VERSION
from ingest.pipeline import ingest
from rag.snapshot import database_path
from rag.store import Store
from rag.types import sha256_hex


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's embedder is the HashEmbedder."""
    import rag.embedder

    monkeypatch.setattr(rag.embedder, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())


def held(settings) -> dict[str, tuple[str, str]]:
    """file name -> (sha256, the text of its stored pages)."""
    store = Store(database_path(settings.home), readonly=True)
    try:
        return {d.file_name: (d.sha256, "\n".join(p.text for p in store.pages(d.doc_id))) for d in store.documents()}
    finally:
        store.close()


# --- 5. copies ----------------------------------------------------------------------------------------------
def test_a_copy_of_an_ingested_file_is_unchanged_not_failed(tmp_path: Path, settings, fake_model, capsys) -> None:
    a = guide(tmp_path / "acme_warfarin_2024.pdf", "warfarin")
    assert main(["ingest", str(a), "--json"]) == 0
    (tmp_path / "nightly").mkdir()
    copy = Path(shutil.copy(a, tmp_path / "nightly" / "warfarin (copy).pdf"))
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "nightly"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == [] and out["added"] == [] and out["generation"] is None
    [entry] = out["unchanged"]
    assert entry["file"] == str(copy) and entry["duplicate_of"] == a.name
    assert (entry["family"], entry["version"], entry["chunker"]) == ("acme-warfarin", "2024", CHUNKER_VERSION)
    assert main(["ingest", str(copy)]) == 0  # the human table says what it is
    [row] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("unchanged")]
    assert copy.name in row and f"a copy of {a.name}: identical bytes, not stored again" in row
    assert list(held(settings)) == [a.name]


def test_copies_within_one_batch_are_unchanged_beside_the_first(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "a" / "acme_gout_2024.pdf", "gout")
    b = Path(shutil.copy(a, tmp_path / "gout_copy.pdf"))
    c = Path(shutil.copy(a, tmp_path / "gout_copy_2.pdf"))
    other = guide(tmp_path / "acme_asthma_2024.pdf", "asthma")
    report = ingest([a, b, other, c], settings, hash_embedder)
    assert report.failed == []
    assert sorted(Path(e["file"]).name for e in report.added) == sorted([a.name, other.name])
    assert [(e["file"], e["duplicate_of"], e["family"], e["version"]) for e in report.unchanged] == [
        (str(b), a.name, "acme-gout", "2024"), (str(c), a.name, "acme-gout", "2024")]
    assert sorted(held(settings)) == sorted([a.name, other.name])


def test_a_copy_of_a_file_that_fails_fails_with_it(tmp_path: Path, settings, hash_embedder) -> None:
    bad = tmp_path / "acme_gout_2024.pdf"
    bad.write_bytes(b"%PDF-1.7\n" + b"garbage " * 200)
    copy = Path(shutil.copy(bad, tmp_path / "gout_copy.pdf"))
    report = ingest([bad, copy], settings, hash_embedder)
    assert [e["file"] for e in report.failed] == [str(bad), str(copy)]
    assert report.failed[1]["error"] == (f"{copy.name}: identical bytes to {bad.name}, which could not be "
                                         "ingested (see its entry)")
    assert report.unchanged == []


# --- 6. hash what you parse ------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 2], ids=["one file, this process", "two files, a worker"])
def test_a_file_replaced_after_hashing_is_stored_as_hashed(batch: int, tmp_path: Path, settings, hash_embedder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = guide(tmp_path / "acme_warfarin_2024.pdf", "warfarin")
    original = target.read_bytes()
    replacement = guide(tmp_path / "other" / "acme_gout_2024.pdf", "gout").read_bytes()
    real_hash = pipeline.sha256_hex

    def hash_then_replace(data, length=None):  # the file changes on disk right after it was hashed
        if data == original:
            target.write_bytes(replacement)
        return real_hash(data, length)

    monkeypatch.setattr(pipeline, "sha256_hex", hash_then_replace)
    files = [target] + ([guide(tmp_path / "acme_asthma_2024.pdf", "asthma")] if batch == 2 else [])
    report = ingest(files, settings, hash_embedder, extract_workers=1)
    assert report.failed == [] and target.read_bytes() == replacement
    sha, text = held(settings)[target.name]
    assert sha == sha256_hex(original)
    assert "warfarin" in text and "gout" not in text, "the stored text is that of the bytes hashed"


def test_files_are_read_as_extraction_asks_for_them(tmp_path: Path, settings, hash_embedder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With one worker, the first file is chunked before more than two files were read (not the whole batch)."""
    topics = ["warfarin", "metformin", "amoxicillin", "malaria", "asthma", "gout"]
    files = [guide(tmp_path / f"acme_{t}_2024.pdf", t) for t in topics]
    reads: list[int] = []
    at_prepare: list[int] = []
    real_hash, real_prepare = pipeline.sha256_hex, pipeline._prepare_one

    def counting_hash(data, length=None):
        if isinstance(data, bytes):
            reads.append(1)
        return real_hash(data, length)

    def counting_prepare(*args, **kwargs):
        at_prepare.append(len(reads))
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(pipeline, "sha256_hex", counting_hash)
    monkeypatch.setattr(pipeline, "_prepare_one", counting_prepare)
    report = ingest(files, settings, hash_embedder, extract_workers=1)
    assert report.failed == [] and len(report.added) == len(files)
    # file k is chunked when at most k + 1 files were read: itself, those before, and the worker's next one
    assert at_prepare == [min(k + 1, len(files)) for k in range(1, len(files) + 1)]
