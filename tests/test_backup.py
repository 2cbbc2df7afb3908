"""`guideline-qa backup DEST`: a consistent copy while the app serves and an ingest publishes; restore and ask."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder

from cli.main import main
from ingest.pipeline import ingest
from rag import backup as backup_mod
from rag.backup import backup
from rag.config import Settings
from rag.index import generations_dir
from rag.qa import QA
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import Store

QUESTION = "gout urate allopurinol colchicine flare dose"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with three small guidelines published by the HashEmbedder, and feedback-free."""
    base = tmp_path_factory.mktemp("backup-src")
    files = [guide(base / "src" / f"acme_{t}_2024.pdf", t) for t in ("gout", "asthma", "warfarin")]
    home = base / "home"
    assert not ingest(files, Settings.from_env(home=home), HashEmbedder()).failed
    return home


@pytest.fixture
def home(built: Path, _isolated_home: Path) -> Path:
    shutil.copytree(built, _isolated_home)
    return _isolated_home


def restored(dest: Path, where: Path) -> Settings:
    """The README's restore: copy the backup to a new folder and point GQA_HOME at it."""
    shutil.copytree(dest, where)
    return Settings.from_env(home=where)


def doc_rows(home: Path) -> list[tuple]:
    store = Store(database_path(home), readonly=True)
    try:
        return [(d.doc_id, d.file_name, d.status) for d in store.documents()]
    finally:
        store.close()


def test_restore_a_backup_into_a_new_home_and_ask(home: Path, settings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    expected = QA(settings, embedder=HashEmbedder()).answer(QUESTION)
    assert not expected.abstained
    dest = tmp_path / "backups" / "monday"
    assert main(["backup", str(dest)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"backed up {home} to {dest}: index {published_generation(home)}, 3 documents")
    assert not (dest / "models").exists()
    docs = doc_rows(home)
    shutil.rmtree(home)  # the disk is lost
    new = restored(dest, tmp_path / "new-home")
    assert doc_rows(new.home) == docs
    got = QA(new, embedder=HashEmbedder()).answer(QUESTION)
    assert (got.text, got.index_version) == (expected.text, expected.index_version)
    assert [(c.quote, c.hit.chunk.chunk_id) for c in got.citations] == [
        (c.quote, c.hit.chunk.chunk_id) for c in expected.citations]
    more = guide(tmp_path / "later" / "acme_malaria_2024.pdf", "malaria")
    assert ingest([more], new, HashEmbedder()).generation, "the restored home takes new documents"


def test_backup_json_and_an_empty_destination_folder(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    assert main(["backup", str(dest), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["generation"] == published_generation(home) and out["documents"] == 3 and out["attempts"] == 1
    assert sorted(p.name for p in dest.iterdir()) == ["gqa.sqlite", "index"]
    assert [p.name for p in generations_dir(dest).iterdir()] == [out["generation"]]


@pytest.mark.parametrize("case", ["not-empty", "a-file", "inside-home"])
def test_a_destination_that_is_not_new_is_refused_in_one_line(case: str, home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    dest = {"not-empty": tmp_path / "old", "a-file": tmp_path / "file", "inside-home": home / "backup"}[case]
    if case == "not-empty":
        dest.mkdir()
        (dest / "gqa.sqlite").write_bytes(b"yesterday")
    elif case == "a-file":
        dest.write_text("x")
    before = sorted(p.name for p in home.iterdir())
    assert main(["backup", str(dest)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    expected = "is inside the home" if case == "inside-home" else "is not empty; give a folder that does not exist"
    assert err[0].startswith(f"guideline-qa: error: backup destination {dest} ") and expected in err[0]
    assert case != "not-empty" or (dest / "gqa.sqlite").read_bytes() == b"yesterday"
    assert sorted(p.name for p in home.iterdir()) == before


def test_nothing_to_back_up_or_a_damaged_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              _isolated_home: Path) -> None:
    dest = tmp_path / "dest"
    assert main(["backup", str(dest)]) == 1
    assert "does not exist: nothing is ingested" in capsys.readouterr().err
    _isolated_home.mkdir()
    database_path(_isolated_home).write_bytes(b"")
    assert main(["backup", str(dest)]) == 1
    assert "is damaged: the file is empty (0 bytes)" in capsys.readouterr().err
    assert not dest.exists()


def test_a_generation_collected_between_the_two_copies_is_taken_again(home: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish lands (and its collection removes the copied generation) right after the database copy."""
    old_gen = published_generation(home)
    publishing = Settings.from_env(home=home, keep_generations=1)
    real = backup_mod._copy_database
    calls: list[str | None] = []

    def copy_then_publish(source, target):
        out = real(source, target)
        if not calls:
            assert ingest([guide(tmp_path / "n" / "acme_malaria_2024.pdf", "malaria")], publishing,
                          HashEmbedder()).generation
            assert not (generations_dir(home) / old_gen).exists()
        calls.append(out[0])
        return out

    monkeypatch.setattr(backup_mod, "_copy_database", copy_then_publish)
    report = backup(home, tmp_path / "dest")
    assert calls == [old_gen, published_generation(home)] and report.attempts == 2
    assert report.generation == published_generation(home) and report.documents == 4
    snap = load_snapshot(restored(tmp_path / "dest", tmp_path / "new").home, HashEmbedder().id)
    assert snap.gen_id == report.generation and len({c.doc_id for c in snap.chunks}) == 4


def test_backups_taken_while_an_ingest_publishes_each_restore_and_answer(home: Path, tmp_path: Path) -> None:
    """Another thread publishes a new version after another (keeping only the newest folder) during the backups."""
    publishing = Settings.from_env(home=home, keep_generations=1)
    versions = [guide(tmp_path / "v" / f"acme_gout_{2025 + i}.pdf", "gout", extra=f"Edition {i} of {i + 1}.")
                for i in range(6)]
    stop, published, errors = threading.Event(), [], []

    def publish_versions() -> None:
        try:
            for f in versions:
                if stop.is_set():
                    return
                published.append(ingest([f], publishing, HashEmbedder()).generation)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=publish_versions)
    writer.start()
    backups = []
    try:
        while writer.is_alive() or not backups:
            backups.append(backup(home, tmp_path / f"b{len(backups)}"))
    finally:
        stop.set()
        writer.join()
    assert errors == [] and len(published) == len(versions)
    for i, b in enumerate(backups):
        new = restored(b.dest, tmp_path / f"restored-{i}")
        snap = load_snapshot(new.home, HashEmbedder().id)
        assert snap.gen_id == b.generation
        store = Store(database_path(new.home), readonly=True)
        try:
            assert store.get_meta("current_generation") == b.generation
        finally:
            store.close()
        answer = QA(new, embedder=HashEmbedder()).answer(QUESTION)
        assert not answer.abstained and answer.index_version == b.generation
