"""`guideline-qa ingest|docs|retrieve`: JSON shapes, exit codes (0 ok, 2 some inputs failed, 1 usage/config)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder

from cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOC_FIELDS = {"file", "title", "family", "version", "status", "pages", "chunks", "sha256", "ingested_at"}
HIT_FIELDS = {"rank", "score", "doc", "title", "version", "page", "page_label", "section", "text", "chunk_id"}


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch):
    """The CLI builds SentenceTransformerEmbedder(path, device, batch): give it the HashEmbedder instead."""
    import rag.embedder

    def factory(*args, **kwargs) -> HashEmbedder:
        return HashEmbedder()

    monkeypatch.setattr(rag.embedder, "SentenceTransformerEmbedder", factory)


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, object]:
    code, out, _ = run(argv, capsys)
    return code, json.loads(out)


def test_ingest_json_summary(tmp_path: Path, capsys, fake_model) -> None:
    a = guide(tmp_path / "in" / "acme_warfarin_2024.pdf", "warfarin")
    b = guide(tmp_path / "in" / "acme_gout_2023.pdf", "gout")
    code, out = run_json(["ingest", str(tmp_path / "in"), "--json"], capsys)
    assert code == 0
    assert {"added", "new_version", "unchanged", "failed"} <= set(out)
    assert out["failed"] == [] and out["new_version"] == [] and out["unchanged"] == []
    assert sorted((Path(e["file"]).name, e["family"], e["version"], e["status"]) for e in out["added"]) == [
        (b.name, "acme-gout", "2023", "current"), (a.name, "acme-warfarin", "2024", "current")]
    code, again = run_json(["ingest", str(a), "--json"], capsys)
    assert code == 0 and again["added"] == [] and [Path(e["file"]).name for e in again["unchanged"]] == [a.name]


def test_a_document_cut_by_an_older_release_is_kept_and_reported(tmp_path: Path, capsys, fake_model) -> None:
    from ingest.chunk import CHUNKER_VERSION
    from rag.config import Settings
    from rag.store import Store

    a = guide(tmp_path / "acme_warfarin_2024.pdf", "warfarin")
    assert run_json(["ingest", str(a), "--json"], capsys)[0] == 0
    store = Store(Settings.from_env().home / "gqa.sqlite")
    (doc,) = store.documents()
    assert store.chunker_version(doc.doc_id) == CHUNKER_VERSION
    with store.transaction() as c:  # as a store written before chunker versions were recorded
        c.execute("DELETE FROM meta WHERE key = ?", (f"chunker/{doc.doc_id}",))
    store.close()
    code, again = run_json(["ingest", str(a), "--json"], capsys)
    assert code == 0 and again["generation"] is None and again["chunker"] == CHUNKER_VERSION
    assert [(Path(e["file"]).name, e["chunker"]) for e in again["unchanged"]] == [(a.name, 0)]
    code, text, _ = run(["ingest", str(a)], capsys)
    assert code == 0 and "cut into passages by an older release" in text and "`guideline-qa reindex`" in text


def test_ingest_new_version_json(tmp_path: Path, capsys, fake_model) -> None:
    old = guide(tmp_path / "acme_warfarin_2022.pdf", "warfarin", extra="Old edition.")
    new = guide(tmp_path / "acme_warfarin_2025.pdf", "warfarin", extra="New edition.")
    assert run_json(["ingest", str(old), "--json"], capsys)[0] == 0
    code, out = run_json(["ingest", str(new), "--json"], capsys)
    assert code == 0 and out["added"] == []
    assert [(Path(e["file"]).name, e["supersedes"]) for e in out["new_version"]] == [(new.name, [old.name])]


def test_ingest_failures_exit_2_with_failed_entries(tmp_path: Path, capsys, fake_model) -> None:
    good = guide(tmp_path / "in" / "acme_gout_2023.pdf", "gout")
    (tmp_path / "in" / "broken.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00junk" * 200)
    (tmp_path / "in" / "empty.pdf").write_bytes(b"")
    missing = tmp_path / "nowhere.pdf"
    code, out = run_json(["ingest", str(tmp_path / "in"), str(missing), "--json"], capsys)
    assert code == 2
    assert all(set(e) == {"file", "error"} for e in out["failed"])
    failed = {Path(e["file"]).name: e["error"] for e in out["failed"]}
    assert set(failed) == {"broken.pdf", "empty.pdf", "nowhere.pdf"}
    assert failed["broken.pdf"].startswith("broken.pdf: corrupt or truncated PDF")
    assert failed["empty.pdf"] == "empty.pdf: empty file (0 bytes)"
    assert failed["nowhere.pdf"] == "path does not exist"
    assert [Path(e["file"]).name for e in out["added"]] == [good.name]
    code, docs = run_json(["docs", "--json"], capsys)
    assert [d["file"] for d in docs] == [good.name]


def test_ingest_human_summary_names_file_and_problem(tmp_path: Path, capsys, fake_model) -> None:
    guide(tmp_path / "acme_gout_2023.pdf", "gout")
    (tmp_path / "scan.pdf").write_text("plain text, not a pdf")
    code, out, _ = run(["ingest", str(tmp_path)], capsys)
    assert code == 2
    failed = [ln for ln in out.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 1 and "scan.pdf" in failed[0] and "not a PDF" in failed[0]
    assert "1 added" in out and "1 failed" in out


def test_only_bad_inputs_exit_2(tmp_path: Path, capsys, fake_model) -> None:
    (tmp_path / "empty-folder").mkdir()
    code, out = run_json(["ingest", str(tmp_path / "empty-folder"), "--json"], capsys)
    assert code == 2
    assert out["failed"] == [{"file": str(tmp_path / "empty-folder"), "error": "folder contains no PDF files (*.pdf)"}]
    assert out["generation"] is None


def test_family_and_version_flags(tmp_path: Path, capsys, fake_model) -> None:
    a = guide(tmp_path / "protocol.pdf", "asthma")
    code, out = run_json(["ingest", str(a), "--family", "trust-asthma", "--version", "3.1", "--json"], capsys)
    assert code == 0 and [(e["family"], e["version"]) for e in out["added"]] == [("trust-asthma", "3.1")]
    _, docs = run_json(["docs", "--json"], capsys)
    assert [(d["family"], d["version"]) for d in docs] == [("trust-asthma", "3.1")]


def test_docs_json_fields(tmp_path: Path, capsys, fake_model) -> None:
    a = guide(tmp_path / "acme_warfarin_2024.pdf", "warfarin", pages=3)
    assert run(["ingest", str(a)], capsys)[0] == 0
    code, docs = run_json(["docs", "--json"], capsys)
    assert code == 0 and len(docs) == 1
    d = docs[0]
    assert DOC_FIELDS <= set(d)
    assert d["file"] == a.name and d["title"] == "Guideline on warfarin"
    assert (d["family"], d["version"], d["status"], d["pages"]) == ("acme-warfarin", "2024", "current", 3)
    assert d["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert d["chunks"] > 0
    assert datetime.fromisoformat(d["ingested_at"]).tzinfo is not None
    code, out, _ = run(["docs"], capsys)
    assert code == 0 and a.name in out and "acme-warfarin" in out


def test_docs_on_empty_home(capsys) -> None:
    code, docs = run_json(["docs", "--json"], capsys)
    assert code == 0 and docs == []


def test_retrieve_json_hits(tmp_path: Path, capsys, fake_model) -> None:
    guide(tmp_path / "in" / "acme_warfarin_2022.pdf", "warfarin", extra="Old warfarin edition.")
    guide(tmp_path / "in" / "acme_warfarin_2025.pdf", "warfarin", extra="New warfarin edition.")
    guide(tmp_path / "in" / "acme_gout_2023.pdf", "gout")
    assert run(["ingest", str(tmp_path / "in")], capsys)[0] == 0
    code, out = run_json(["retrieve", "gout urate allopurinol colchicine", "-k", "3", "--json"], capsys)
    assert code == 0
    hits = out["hits"]
    assert 1 <= len(hits) <= 3
    for h in hits:
        assert HIT_FIELDS <= set(h)
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0]["doc"] == "acme_gout_2023.pdf" and hits[0]["title"] == "Guideline on gout"
    assert hits[0]["page"] >= 1 and hits[0]["page_label"] == str(hits[0]["page"]) and hits[0]["text"]
    code, out = run_json(["retrieve", "warfarin INR edition", "-k", "20", "--json"], capsys)
    assert {h["doc"] for h in out["hits"] if "warfarin" in h["doc"]} == {"acme_warfarin_2025.pdf"}
    code, out = run_json(["retrieve", "warfarin INR edition", "-k", "50", "--include-superseded",
                          "--family", "acme-warfarin", "--json"], capsys)
    assert {h["doc"] for h in out["hits"]} == {"acme_warfarin_2022.pdf", "acme_warfarin_2025.pdf"}
    assert {h["version"] for h in out["hits"]} == {"2022", "2025"}


def test_retrieve_before_any_ingest_is_a_config_error(capsys, fake_model) -> None:
    code, out, err = run(["retrieve", "anything", "--json"], capsys)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nothing is published" in err


@pytest.mark.parametrize("argv", [
    [], ["ingest"], ["frobnicate"], ["retrieve"], ["retrieve", "q", "-k", "0"], ["ingest", "x.pdf", "--bogus"],
    ["retrieve", "q", "--type", "poster"], ["retrieve", "q", "-k", "many"],
])
def test_usage_errors_exit_1_with_one_line(argv: list[str], capsys) -> None:
    code, out, err = run(argv, capsys)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("guideline-qa: error: "), err


@pytest.mark.slow
def test_console_script_with_real_model(tmp_path: Path) -> None:
    """The installed `guideline-qa` script, in a subprocess, with the real embedder over the demo corpus."""
    exe = Path(sys.executable).with_name("guideline-qa")
    env = {**os.environ, "GQA_HOME": str(tmp_path / "home"), "GQA_DEVICE": "cpu"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    first = cli("ingest", "data", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert sorted(Path(e["file"]).name for e in summary["added"]) == ["demo_formulary.pdf", "demo_guideline.pdf"]
    docs = json.loads(cli("docs", "--json").stdout)
    guideline = next(d for d in docs if d["file"] == "demo_guideline.pdf")
    assert (guideline["pages"], guideline["version"], guideline["status"]) == (5, "2026", "current")
    got = cli("retrieve", "How long should antibiotics be given for pneumonia?", "-k", "5", "--json")
    assert got.returncode == 0, got.stderr
    hits = json.loads(got.stdout)["hits"]
    assert len(hits) == 5 and all(HIT_FIELDS <= set(h) for h in hits)
    assert any(h["doc"] == "demo_guideline.pdf" and "5 days" in h["text"] for h in hits)
    # the cover page is printed 'i', and the body restarts at 1
    assert all(h["page_label"] == ("i" if h["page"] == 1 else str(h["page"] - 1))
               for h in hits if h["doc"] == "demo_guideline.pdf")
    usage = cli("retrieve")
    assert usage.returncode == 1 and len(usage.stderr.strip().splitlines()) == 1


def test_a_reader_closing_the_pipe_early_ends_the_command_quietly(settings, tmp_path) -> None:
    """`guideline-qa docs --json | head -1`: the write meets a closed pipe; the command exits 0 without a
    traceback or Python's 'Exception ignored' message (cli.main handles it for every command)."""
    from docgen import guide
    from fakes import HashEmbedder

    from ingest.pipeline import ingest

    assert not ingest([guide(tmp_path / "gout_guide_2024.pdf", "gout")], settings, HashEmbedder()).failed
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the command writes
    try:
        p = subprocess.run([sys.executable, "-m", "cli.main", "docs", "--json"], stdout=write,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "GQA_HOME": str(settings.home)},
                           cwd=Path(__file__).resolve().parents[1], timeout=60)
    finally:
        os.close(write)
    assert p.returncode == 0 and p.stderr == "", p.stderr
