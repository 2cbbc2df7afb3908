"""Clean failure: a damaged database, a PDF that breaks the parser, bad questions and leftovers of killed ingests.

Each failure is one line naming the file or value and the fix, exit 1 (or 2 for a failed input), and
never a traceback outside DEBUG logging.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from docgen import deep_page_tree, guide
from fakes import HashEmbedder

from cli.main import main
from ingest.pipeline import ingest
from rag.config import Settings
from rag.errors import StoreError
from rag.index import generations_dir
from rag.snapshot import database_path, published_generation
from rag.store import SCHEMA_VERSION, Store

DEMO_SET = Path(__file__).resolve().parents[1] / "data" / "demo_eval.jsonl"
FIX = "restore it from a backup (README, Backups) or re-ingest the documents into a new GQA_HOME"
QUERY = "gout urate allopurinol colchicine"


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that build SentenceTransformerEmbedder get the HashEmbedder."""
    import rag.embedder

    monkeypatch.setattr(rag.embedder, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with two small guidelines published by the HashEmbedder (copied by each test)."""
    base = tmp_path_factory.mktemp("built")
    files = [guide(base / "src" / "acme_gout_2024.pdf", "gout", pages=3),
             guide(base / "src" / "acme_asthma_2024.pdf", "asthma", pages=3)]
    home = base / "home"
    assert not ingest(files, Settings.from_env(home=home), HashEmbedder()).failed
    return {"home": home, "files": files}


@pytest.fixture
def home(built: dict, _isolated_home: Path) -> Path:
    """This test's GQA_HOME: a copy of the built home."""
    shutil.copytree(built["home"], _isolated_home)
    return _isolated_home


def damage(db: Path, how: str) -> None:
    """Damage the database file as a disk, a bad copy or an accident would."""
    data = db.read_bytes()
    if how == "empty":
        db.write_bytes(b"")
    elif how == "garbage":
        db.write_bytes(b"not a database at all " * 200)
    elif how == "truncated":
        db.write_bytes(data[: len(data) // 2])
    elif how == "first-page":
        db.write_bytes(data[:4096])
    else:
        raise AssertionError(how)


def one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- a damaged database ----------------------------------------------------------------------------------
COMMANDS = {
    "docs": ["docs"],
    "docs-json": ["docs", "--json"],
    "retrieve": ["retrieve", QUERY],
    "ask": ["ask", QUERY, "--json"],
    "ingest": ["ingest", "NEW"],
    "eval": ["eval", str(DEMO_SET), "--no-progress", "--no-record"],
}


@pytest.mark.parametrize("how", ["empty", "garbage", "truncated", "first-page"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_damaged_database_is_one_line_naming_the_file_and_the_fix(
        command: str, how: str, home: Path, fake_model, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = database_path(home)
    damage(db, how)
    before = db.read_bytes()
    new = guide(tmp_path / "new" / "acme_malaria_2024.pdf", "malaria")
    argv = [str(new) if a == "NEW" else a for a in COMMANDS[command]]
    assert main(argv) == 1
    out = capsys.readouterr()
    line = one_error_line(out.err)
    assert line.startswith(f"guideline-qa: error: {db} is damaged") and line.endswith(FIX), line
    assert out.out == ""
    assert db.read_bytes() == before, "nothing is written over a damaged (or truncated-to-empty) database"


def test_damage_inside_the_file_found_mid_command_is_the_same_line(home: Path, capsys: pytest.CaptureFixture
                                                                   ) -> None:
    db = database_path(home)
    con = sqlite3.connect(db)
    root, = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'documents'").fetchone()
    page_size, = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(db, "r+b") as fh:  # the documents table's page, overwritten: opening still looks fine
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
    Store(db, readonly=True).close()
    assert main(["docs"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"guideline-qa: error: {db} is damaged") and line.endswith(FIX)


def test_a_database_of_another_program_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "gqa.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes(x)")
    con.commit()
    con.close()
    before = db.read_bytes()
    for readonly in (True, False):
        with pytest.raises(StoreError, match="is damaged: no guideline-qa tables; restore it from a backup"):
            Store(db, readonly=readonly)
    assert db.read_bytes() == before


def test_a_reader_never_creates_the_database(tmp_path: Path) -> None:
    db = tmp_path / "home" / "gqa.sqlite"
    with pytest.raises(StoreError, match="does not exist: nothing is ingested in .*guideline-qa ingest PATH"):
        Store(db, readonly=True)
    assert not db.exists()
    Store(db).close()  # a writer creates it complete, never as an empty file
    assert db.stat().st_size > 0
    assert [p.name for p in db.parent.iterdir()] == ["gqa.sqlite"]
    reader = Store(db, readonly=True)
    assert reader.get_meta("schema_version") == str(SCHEMA_VERSION) and reader.documents() == []
    reader.close()


def test_published_generation_lets_the_damage_through(home: Path) -> None:
    damage(database_path(home), "empty")
    with pytest.raises(StoreError, match="is damaged: the file is empty"):
        published_generation(home)


# --- a PDF that breaks the parser ------------------------------------------------------------------------
@pytest.mark.parametrize("with_pool", [False, True], ids=["in-process", "worker-process"])
def test_a_pdf_that_breaks_the_parser_is_one_line_and_the_traceback_only_at_debug(
        with_pool: bool, tmp_path: Path, fake_model, capsys: pytest.CaptureFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    deep = deep_page_tree(tmp_path / "in" / "deep_tree.pdf", depth=5000)
    files = [deep] + ([guide(tmp_path / "in" / "acme_gout_2024.pdf", "gout")] if with_pool else [])
    caplog.set_level(logging.DEBUG, logger="ingest.pipeline")
    assert main(["ingest", *map(str, files)]) == 2
    out = capsys.readouterr()
    [row] = [x for x in out.out.splitlines() if "deep_tree.pdf" in x]
    assert row.startswith("FAILED") and "deep_tree.pdf: the PDF reader failed (" in row
    assert "Traceback" not in out.err and "Traceback" not in out.out
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]
    assert loud == [], "a traceback above DEBUG"
    assert [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info
            and "deep_tree.pdf" in r.getMessage()]
    assert any(x.startswith("added") for x in out.out.splitlines()) == with_pool


def test_a_recursion_error_in_the_parser_is_named_in_one_line(tmp_path: Path, settings, monkeypatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from ingest import pipeline

    def recurse(path: Path):
        return recurse(path)

    monkeypatch.setattr(pipeline, "extract_pdf", recurse)
    pdf = guide(tmp_path / "acme_gout_2024.pdf", "gout")
    report = ingest([pdf], settings, HashEmbedder())
    [failed] = report.failed
    assert failed["error"].startswith("acme_gout_2024.pdf: the PDF reader failed (RecursionError: maximum recursion")
    assert "\n" not in failed["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]


# --- retrieve applies ask's question checks ------------------------------------------------------------
@pytest.mark.parametrize("question, message", [
    ("", "the question is empty; type a question"),
    ("   \n ", "the question is empty; type a question"),
    ("gout " * 500, "the question is 2499 characters long; keep it under 2000"),
])
def test_retrieve_refuses_what_ask_refuses(question: str, message: str, home: Path, fake_model,
                                           capsys: pytest.CaptureFixture) -> None:
    for command in ("retrieve", "ask"):
        assert main([command, question]) == 1
        out = capsys.readouterr()
        assert out.out == "" and one_error_line(out.err) == f"guideline-qa: error: {message}"


# --- leftovers of killed ingests -------------------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_every_ingest_collects_what_killed_ingests_left(home: Path, built: dict, settings) -> None:
    """Folders of dead writers and generations never published go; the published one and a live writer's stay."""
    root = generations_dir(home)
    published = published_generation(home)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leftovers = [root / f".tmp-0123456789abcdef-{dead_pid()}", root / "fedcba9876543210"]
        for d in leftovers + [root / f".tmp-0123456789abcdef-{live.pid}"]:
            d.mkdir()
            (d / "index.faiss").write_bytes(b"\0" * 4096)
        report = ingest(built["files"], settings, HashEmbedder())  # nothing new: no publish
        assert report.generation is None and len(report.unchanged) == 2
        names = sorted(p.name for p in root.iterdir())
        assert names == sorted([published, f".tmp-0123456789abcdef-{live.pid}"])
    finally:
        live.kill()
        live.wait()
    assert published_generation(home) == published


def test_collect_leftovers_keeps_the_published_generation_beyond_keep(home: Path, built: dict) -> None:
    settings = Settings.from_env(home=home, keep_generations=0)
    published = published_generation(home)
    (generations_dir(home) / "fedcba9876543210").mkdir()  # written, never published
    ingest(built["files"], settings, HashEmbedder())
    assert [p.name for p in generations_dir(home).iterdir()] == [published]


# --- the clinician app stays in one line -----------------------------------------------------------------
def test_serve_turns_error_details_off() -> None:
    from cli.serve_cmd import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8501)
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"


def test_the_project_config_redacts_uncaught_errors_in_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    at = AppTest.from_string("raise RuntimeError('failed in /srv/secret/module.py')").run()
    [shown] = at.exception
    assert "/srv/secret" not in shown.message and not shown.stack_trace


def test_upload_names_that_cannot_be_kept_are_refused(tmp_path: Path) -> None:
    from rag.errors import ConfigError
    from ui.page_knowledge import save_upload, upload_name

    assert upload_name("../../etc/NG138 2025.pdf") == "NG138 2025.pdf"
    assert upload_name("C:\\Users\\x\\..\\.hidden 2024.pdf") == "hidden 2024.pdf"
    with pytest.raises(ConfigError, match=r"upload name 'bad\\x00name.pdf' contains a NUL byte; rename"):
        save_upload(tmp_path, "bad\x00name.pdf", b"%PDF-1.4")
    for name in ("..pdf", ".pdf", "../", "..\\..pdf", " .pdf", "notes.txt"):
        with pytest.raises(ConfigError, match=r"leaves no usable name \(a name, then .pdf\) once folders and lead"):
            save_upload(tmp_path, name, b"%PDF-1.4")
    with pytest.raises(ConfigError, match="contains a control character"):
        upload_name("line\nbreak.pdf")
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").rglob("*.*"))


def test_opening_the_database_again_keeps_this_process_locks(tmp_path: Path) -> None:
    """Reading the header must not close a descriptor of the file: that would drop the locks of the
    connections this process keeps open, and another process closing its own connection would then
    delete the -wal and -shm they still use (sqlite.org/howtocorrupt.html, section 2.2)."""
    db = tmp_path / "gqa.sqlite"
    keep = Store(db)  # a reader's long-lived connection (rag.snapshot.StoredChunks)
    keep.get_meta("schema_version")
    Store(db, readonly=True).close()  # a question opens and closes another one
    other = (f"import sqlite3; d = sqlite3.connect({str(db)!r}, isolation_level=None); "
             "d.execute('CREATE TABLE IF NOT EXISTS probe(x)'); d.close()")
    subprocess.run([sys.executable, "-c", other], check=True)
    assert (tmp_path / "gqa.sqlite-wal").exists(), "the other process deleted our -wal: our locks were dropped"
    keep.close()
