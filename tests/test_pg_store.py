"""The PostgreSQL store's own rules: `db upgrade`, refusing a schema it does not know, one-line errors
without the password, one ingest at a time by advisory lock, and replicas' pickup of a new generation."""

from __future__ import annotations

from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder
from pg import drop_database, fresh_database, pg_server, pg_url  # noqa: F401

from cli.main import main
from ingest.pipeline import ingest
from rag.config import Settings
from rag.errors import GQAError, StoreError
from rag.pg.connect import advisory_lock, connect, known_migrations, redact


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://gqa:s3cret@db.example:5432/gqa", "postgresql://gqa:***@db.example:5432/gqa"),
    ("postgresql://gqa@db/gqa", "postgresql://gqa@db/gqa"),
    ("postgresql://db/gqa?user=gqa&password=s3cret", "postgresql://db/gqa?user=gqa&password=***"),
])
def test_redact_known_answers(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_db_upgrade_applies_what_is_missing_once(pg_server, capsys, monkeypatch) -> None:  # noqa: F811
    url = fresh_database(pg_server, upgrade=False)
    monkeypatch.setenv("GQA_DATABASE_URL", "")  # --database-url sets it for the process: undone after the test
    try:
        # the app's commands refuse a database not upgraded yet, naming the fix
        assert main(["--database-url", url, "docs"]) == 1
        err = capsys.readouterr().err.strip()
        assert "no guideline-qa schema" in err and "guideline-qa db upgrade" in err and len(err.splitlines()) == 1
        assert main(["--database-url", url, "db", "upgrade"]) == 0
        out = capsys.readouterr().out
        assert f"applied {known_migrations()[0][0]:04d}_store" in out and "(upgraded)" in out
        assert main(["--database-url", url, "db", "upgrade"]) == 0
        assert "applied" not in (out := capsys.readouterr().out) and "already current" in out
        assert main(["--database-url", url, "docs", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
        # a schema written by a newer release is refused too
        conn = connect(url, configure=False)
        conn.execute("INSERT INTO schema_migrations(version, name) VALUES (9999, 'future')")
        conn.close()
        assert main(["--database-url", url, "docs"]) == 1
        err = capsys.readouterr().err
        assert "schema 9999" in err and "upgrade guideline-qa" in err
    finally:
        drop_database(pg_server, url)


def test_unreachable_server_and_bad_url_are_one_line_without_the_password(capsys, monkeypatch) -> None:
    monkeypatch.setenv("GQA_DATABASE_URL", "postgresql://gqa:s3cret@127.0.0.1:1/gqa")
    assert main(["docs"]) == 1
    err = capsys.readouterr().err.strip()
    assert "postgresql://gqa:***@127.0.0.1:1/gqa" in err and "s3cret" not in err and len(err.splitlines()) == 1
    monkeypatch.setenv("GQA_DATABASE_URL", "mysql://gqa:s3cret@db/gqa")
    assert main(["docs"]) == 1
    err = capsys.readouterr().err
    assert "is not a PostgreSQL URL" in err and "s3cret" not in err


def test_a_refused_login_is_named_without_the_password(pg_url) -> None:  # noqa: F811
    # pgserver trusts local sockets, so a refused login is shown by a role that does not exist
    bad = pg_url.replace("postgres:@", "nobody_here:wrong@")
    with pytest.raises(StoreError) as exc:
        connect(bad)
    assert "wrong" not in str(exc.value) and "nobody_here:***@" in str(exc.value)


def test_one_ingest_at_a_time_by_advisory_lock(pg_url, settings, tmp_path: Path) -> None:  # noqa: F811
    s = Settings.from_env(home=settings.home, database_url=pg_url)
    with advisory_lock(pg_url):
        with pytest.raises(GQAError, match="another ingest is running"):
            ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], s, HashEmbedder())
    assert ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], s, HashEmbedder()).generation


def test_backup_names_pg_dump_for_the_postgresql_store(pg_url, capsys, tmp_path: Path) -> None:  # noqa: F811
    assert main(["backup", str(tmp_path / "copy")]) == 1
    err = capsys.readouterr().err
    assert "pg_dump" in err and not (tmp_path / "copy").exists()
