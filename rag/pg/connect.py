"""Connections to the PostgreSQL store: one writer connection per writer, one pool of readers per process,
versioned migrations (`guideline-qa db upgrade`), and one-line errors that name the URL without its password."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rag.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Readers' pool size per process: a question holds a connection for its few short queries; Streamlit and
# the API answer a handful at once per process, and PostgreSQL's default allows 100 connections in all.
POOL_MAX = 8
# HNSW candidate list per search (pgvector's default is 40): the embedded store's efSearch (rag.index).
EF_SEARCH = 128
# HNSW graph: the embedded store's (rag.index.new_index: 32 links per node, efConstruction 80).
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80
# One ingest at a time on one database: the key of its session-level advisory lock (any constant).
INGEST_LOCK_KEY = 7_150_315


def redact(url: str) -> str:
    """The URL without its password, for messages and logs.

    Example: 'postgresql://gqa:secret@db:5432/gqa' -> 'postgresql://gqa:***@db:5432/gqa'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"password=\S+", "password=***", url)
    if parts.password is None:
        return re.sub(r"password=[^&\s]+", "password=***", url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise StoreError("GQA_DATABASE_URL is set but psycopg is not installed; pip install "
                         "'guideline-qa[postgres]' (or unset GQA_DATABASE_URL for the embedded store)") from None
    return psycopg


def check_url(url: str) -> None:
    """Refuse what is not a PostgreSQL URL, naming it."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError(f"GQA_DATABASE_URL={redact(url)!r} is not a PostgreSQL URL; give "
                         "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or unset it for the embedded store")


def failure(url: str, exc: BaseException) -> StoreError:
    """The one-line error for a server that cannot be reached or refuses us."""
    first = " ".join(str(exc).strip().splitlines()[:1]) or type(exc).__name__
    first = first.replace(url, redact(url))
    return StoreError(f"cannot use the database {redact(url)} ({first}); check that the server runs and "
                      "that the URL, user and password in GQA_DATABASE_URL are right")


def _configure(conn) -> None:
    """Every connection: vector types known to psycopg, and HNSW searches that keep scanning while a
    filter drops candidates (pgvector 0.8's iterative scan), so filters never starve the top k."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
    conn.execute("SET hnsw.iterative_scan = relaxed_order")


def connect(url: str, configure: bool = True):
    """A new autocommit connection (a writer's own); StoreError names the URL when it fails.

    `configure`: check that the schema is this release's (check_schema) and register the vector types.
    """
    check_url(url)
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise failure(url, exc) from None
    if configure:
        try:
            check_schema(conn, url)
            _configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise failure(url, exc) from None
        except BaseException:
            conn.close()
            raise
    return conn


_POOLS: dict[str, object] = {}  # url -> the process's reader pool (connections outlive one Store)
_POOLS_LOCK = threading.Lock()


def pool(url: str):
    """The process's pool of reader connections to `url` (opened on first use)."""
    with _POOLS_LOCK:
        found = _POOLS.get(url)
        if found is None:
            check_url(url)
            _psycopg()
            from psycopg_pool import ConnectionPool

            connect(url).close()  # a one-line error for an unreachable server or an old schema, first
            # check: a connection is tested as it is lent (one round trip), so one the server dropped (a
            # restart, a failover, an idle timeout) is replaced instead of failing a question
            found = ConnectionPool(url, min_size=1, max_size=POOL_MAX, open=False, configure=_configure,
                                   kwargs={"autocommit": True, "connect_timeout": 10}, timeout=30,
                                   name="gqa-readers", check=ConnectionPool.check_connection)
            try:
                found.open(wait=True, timeout=15)
            except Exception as exc:  # noqa: BLE001 - e.g. PoolTimeout: the server went away meanwhile
                found.close()
                raise failure(url, exc) from None
            _POOLS[url] = found
        return found


def close_pools() -> None:
    """Close every reader pool of this process (tests; a process exiting needs not)."""
    with _POOLS_LOCK:
        for p in _POOLS.values():
            p.close()  # type: ignore[attr-defined]
        _POOLS.clear()


# --- migrations ------------------------------------------------------------------------------------
def known_migrations() -> list[tuple[int, str, Path]]:
    """(version, name, file) of every migration this release carries, in order."""
    out = []
    for f in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        out.append((int(f.name[:4]), f.stem[5:], f))
    return out


def schema_version(conn) -> int:
    """The newest migration applied to the database (0: none, a new database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def check_schema(conn, url: str) -> None:
    """Refuse a database not upgraded to this release's schema, or upgraded by a newer release."""
    have, want = schema_version(conn), known_migrations()[-1][0]
    if have < want:
        what = "has no guideline-qa schema" if have == 0 else f"has schema {have}, this release needs {want}"
        raise StoreError(f"the database {redact(url)} {what}; run `guideline-qa db upgrade` first")
    if have > want:
        raise StoreError(f"the database {redact(url)} has schema {have}, written by a newer guideline-qa (this "
                         f"one knows up to {want}); upgrade guideline-qa")


def upgrade(url: str) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction, under the ingest lock's
    sibling (concurrent upgrades wait for each other); returns the names applied."""
    conn = connect(url, configure=False)
    applied: list[str] = []
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (INGEST_LOCK_KEY + 1,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                     "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        have = schema_version(conn)
        known = known_migrations()
        if have > known[-1][0]:
            check_schema(conn, url)
        for version, name, path in known:
            if version <= have:
                continue
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations(version, name) VALUES (%s, %s)", (version, name))
            applied.append(f"{version:04d}_{name}")
            log.info("applied migration %04d_%s to %s", version, name, redact(url))
    except _psycopg().Error as exc:
        raise failure(url, exc) from None
    finally:
        conn.close()
    return applied


@contextmanager
def advisory_lock(url: str, key: int = INGEST_LOCK_KEY) -> Iterator[None]:
    """One ingest (or withdraw, reinstate, reindex) at a time on this database, across hosts.

    A session-level lock on a connection of its own: a SIGKILLed ingest's connection drops and the
    server releases the lock, so a crash never leaves a stale lock behind (the ingest.lock file's rule).
    """
    conn = connect(url, configure=False)
    try:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        if not got:
            from rag.errors import GQAError

            raise GQAError(f"another ingest is running on {redact(url)}; wait for it to finish")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        conn.close()
