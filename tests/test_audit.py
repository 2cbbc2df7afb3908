"""The audit trail (rag/audit.py): one row per answer from `ask` and the app, question text only when allowed,
retention, `guideline-qa audit` as CSV and JSON; fast tier (generated PDFs, hash embedder)."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from answer_corpus import QUESTION, ingest_corpus
from raw_tables import table_rows

from cli.main import main
from rag import audit
from rag.qa import QA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated corpus ingested once with the hash embedder (copied into each test's home)."""
    from fakes import HashEmbedder

    from rag.config import Settings

    home = tmp_path_factory.mktemp("audit-home")
    ingest_corpus(Settings.from_env(home=home), HashEmbedder(), tmp_path_factory.mktemp("pdfs"))
    return home


@pytest.fixture
def home(corpus_source: Path, settings, hash_embedder, monkeypatch) -> Path:
    """This test's copy of the corpus; the CLI's embedder replaced by the hash embedder."""
    from fakes import HashEmbedder

    shutil.copytree(corpus_source, settings.home)
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    return settings.home


def audit_rows(home: Path) -> list[dict]:
    return table_rows(home, "audit")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_writes_one_row_with_its_citations(home, capsys):
    code, out, err = run(capsys, "ask", QUESTION, "--json")
    assert code == 0, err
    given = json.loads(out)
    [row] = audit_rows(home)
    assert row["channel"] == "cli" and row["who"] == audit.os_user()
    assert row["question"] == QUESTION and row["abstained"] == 0 and row["generator"] == "extractive"
    assert row["index_version"] == given["index_version"] and row["index_version"]
    cites = json.loads(row["citations"])
    assert [(c["n"], c["doc"], c["version"], c["page"], c["chunk_id"]) for c in cites] == \
        [(c["n"], c["doc"], c["version"], c["page"], c["chunk_id"]) for c in given["citations"]]
    assert cites and all(c["doc_id"] for c in cites)
    assert datetime.fromisoformat(row["at"]) <= datetime.now(UTC)


def test_an_abstention_is_recorded_too(home, capsys):
    code, _, _ = run(capsys, "ask", QUESTION, "--family", "no-such-family")
    [row] = audit_rows(home)
    assert code == 0 and row["abstained"] == 1 and json.loads(row["citations"]) == []


def test_no_question_text_when_store_questions_is_off(home, capsys, monkeypatch):
    monkeypatch.setenv("GQA_STORE_QUESTIONS", "false")
    assert run(capsys, "ask", QUESTION)[0] == 0
    [row] = audit_rows(home)
    assert row["question"] is None and json.loads(row["citations"])
    code, out, _ = run(capsys, "audit", "--format", "json")
    assert code == 0 and QUESTION not in out and json.loads(out)[0]["question"] is None


def test_a_failed_audit_write_never_fails_the_answer(home, capsys, monkeypatch, caplog):
    def locked(settings):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("rag.audit._open", locked)
    with caplog.at_level(logging.WARNING, logger="rag.audit"):
        code, out, err = run(capsys, "ask", QUESTION)
    assert code == 0 and "[1]" in out and "Sources:" in out
    [line] = [r.getMessage() for r in caplog.records if r.name == "rag.audit"]
    assert "database is locked" in line and QUESTION not in line


def test_the_apps_answer_writes_a_row(home, settings, hash_embedder):
    from streamlit.testing.v1 import AppTest

    from ui.services import QA_KEY

    qa = QA(settings, embedder=hash_embedder)
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.session_state[QA_KEY] = qa
    at.run()
    at.text_input(key="question").input(QUESTION)
    at = [b for b in at.button if b.label == "Ask"][0].click().run()
    assert not at.exception and not at.error
    [row] = audit_rows(home)
    assert row["channel"] == "app" and row["who"] is None and row["question"] == QUESTION
    assert row["index_version"] == qa.index_version and json.loads(row["citations"])


def answer_of(settings, hash_embedder):
    return QA(settings, embedder=hash_embedder).answer(QUESTION)


def test_retention_deletes_rows_older_than_the_feedback_retention(home, settings, hash_embedder):
    answer = answer_of(settings, hash_embedder)
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    s = replace(settings, feedback_retention_days=30)
    assert audit.record(s, answer, "api", "ehr", now=now - timedelta(days=31))
    assert audit.record(s, answer, "api", "ehr", now=now - timedelta(days=29))
    assert len(audit_rows(home)) == 2
    assert audit.record(s, answer, "cli", "kt", now=now)  # a write purges first
    assert [r["at"] for r in audit_rows(home)] == ["2025-05-03T12:00:00+00:00", "2025-06-01T12:00:00+00:00"]
    # the export applies the rule too, on the day it runs
    assert [r["who"] for r in audit.rows(s, now=now + timedelta(days=2))] == ["kt"]


def test_export_csv_and_json_since_a_date(home, settings, hash_embedder, capsys):
    answer = answer_of(settings, hash_embedder)
    today = datetime.now(UTC).replace(microsecond=0)
    audit.record(settings, answer, "api", "ehr", now=today - timedelta(days=3))
    audit.record(settings, answer, "app", None, now=today)
    code, out, err = run(capsys, "audit")
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == list(audit.COLUMNS) and [r[2] for r in table[1:]] == ["api", "app"]
    first = dict(zip(table[0], table[1], strict=True))
    assert first["who"] == "ehr" and first["abstained"] == "0" and first["question"] == QUESTION
    assert [c["chunk_id"] for c in json.loads(first["citations"])] == [c.hit.chunk.chunk_id for c in answer.citations]
    since = (today - timedelta(days=1)).date().isoformat()
    code, out, _ = run(capsys, "audit", "--since", since, "--format", "json")
    [only] = json.loads(out)
    assert code == 0 and only["channel"] == "app" and only["who"] is None and only["abstained"] is False
    assert [c["n"] for c in only["citations"]] == [c.n for c in answer.citations]


@pytest.mark.parametrize("bad", ["31/01/2025", "yesterday", "2025-13-01"])
def test_a_bad_since_date_is_one_line_exit_1(home, capsys, bad):
    code, out, err = run(capsys, "audit", "--since", bad)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert repr(bad) in err and "YYYY-MM-DD" in err and "Traceback" not in err


def test_no_home_exports_a_header_only(capsys):
    code, out, _ = run(capsys, "audit")
    assert code == 0 and out.splitlines() == [",".join(audit.COLUMNS)]


def test_a_file_from_before_the_audit_table_gets_it_on_the_first_answer(home, settings, hash_embedder, capsys):
    con = sqlite3.connect(home / "gqa.sqlite")
    con.execute("DROP TABLE audit")
    con.close()
    from rag.store import Store

    Store(home / "gqa.sqlite", readonly=True).close()  # still readable as it was
    assert audit.record(settings, answer_of(settings, hash_embedder), "cli", "kt")
    assert [r["who"] for r in audit.rows(settings)] == ["kt"]


def test_an_unknown_channel_is_a_programming_error(home, settings, hash_embedder):
    with pytest.raises(ValueError, match="'web' is not one of app, api, cli, mcp"):
        audit.record(settings, answer_of(settings, hash_embedder), "web")
