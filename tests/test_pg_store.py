"""The PostgreSQL store's own rules: `db upgrade`, refusing a schema it does not know, one-line errors
without the password, one ingest at a time by advisory lock, and replicas' pickup of a new generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def seeded_generation(url: str, n: int = 3000, dim: int = 32) -> tuple[dict, np.ndarray]:
    """n seeded unit vectors as the chunks of three documents, and the generation naming them."""
    from pgvector import HalfVector

    from rag.pg.store import PgStore

    rng = np.random.default_rng(15)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = PgStore(url)
    store.ensure_index(dim)
    with store.transaction(), store._cursor() as cur:
        cur.executemany("INSERT INTO chunks(chunk_id, doc_id, cut, ordinal, page, page_end, page_label, section, "
                        "kind, text, content_hash, doc_cut, dim, embedding, tsv) VALUES "
                        "(%s, %s, 0, %s, 1, 1, '1', '', 'text', '', '', %s, %s, %s, ''::tsvector)",
                        [(f"c{i}", f"d{i % 3}", i, f"d{i % 3}/0", dim, HalfVector(v)) for i, v in enumerate(vecs)])
    gen = {"gen_id": "g", "dim": dim, "chunk_ids": [f"c{i}" for i in range(n)], "doc_order": ["d0", "d1", "d2"],
           "row_doc": [i % 3 for i in range(n)],
           "manifest": {f"d{j}": {"status": "current", "cut": 0} for j in range(3)}}
    return gen, vecs


def plan(url: str, index, vec: np.ndarray, cuts: tuple[str, ...] = ("d0/0", "d2/0")) -> str:
    """PostgreSQL's plan for the index's search over these documents."""
    from pgvector import HalfVector

    from rag.pg.connect import pool

    with pool(url).connection() as conn:
        rows = conn.execute("EXPLAIN " + index.sql(), (HalfVector(vec), list(cuts), HalfVector(vec), 10)).fetchall()
    return "\n".join(r[0] for r in rows)


def test_dense_search_equals_brute_force_with_and_without_a_filter(pg_url) -> None:  # noqa: F811
    from rag.pg.reader import PgIndex, PgRows

    gen, vecs = seeded_generation(pg_url)
    index = PgIndex(PgRows(pg_url, gen))
    assert "chunks_hnsw" not in plan(pg_url, index, vecs[0])  # up to EXACT_LIMIT rows: exact, as FAISS flat
    half = vecs.astype(np.float16).astype(np.float32)  # what halfvec stores
    allowed = np.array([i % 3 != 1 for i in range(len(vecs))])  # documents d0 and d2 only
    for q in np.random.default_rng(2).standard_normal((20, vecs.shape[1])).astype(np.float32):
        q /= np.linalg.norm(q)
        scores = half @ q.astype(np.float16).astype(np.float32) / np.linalg.norm(half, axis=1)
        for mask in (None, allowed):
            s = scores if mask is None else np.where(mask, scores, -np.inf)
            want = list(np.argsort(-s, kind="stable")[:10])
            got = index.ranking(q, mask, 10)
            assert [r for r, _ in got] == want
            assert np.allclose([c for _, c in got], s[want], atol=2e-3)


def test_above_the_exact_limit_hnsw_fills_the_top_k_through_a_filter(pg_url, monkeypatch) -> None:  # noqa: F811
    from rag.pg import reader

    gen, vecs = seeded_generation(pg_url)
    monkeypatch.setattr(reader, "EXACT_LIMIT", 100)  # 3,000 rows: the HNSW index answers
    index = reader.PgIndex(reader.PgRows(pg_url, gen))
    assert "Index Scan using chunks_hnsw_32" in plan(pg_url, index, vecs[0])
    allowed = np.array([i % 3 != 1 for i in range(len(vecs))])  # documents d0 and d2
    found, recall = 0, []
    for q in np.random.default_rng(3).standard_normal((10, vecs.shape[1])).astype(np.float32):
        q /= np.linalg.norm(q)
        got = [r for r, _ in index.ranking(q, allowed, 20)]
        want = set(np.argsort(-np.where(allowed, vecs @ q, -np.inf))[:20])
        assert all(r % 3 != 1 for r in got)
        found += len(got)
        recall.append(len(want & set(got)) / 20)
    assert found == 10 * 20  # iterative scan: rows the filter drops never starve the top k
    assert np.mean(recall) >= 0.8


TEXTS = ["warfarin tablets 5 mg", "dose dose dose of the drug per day for every adult patient seen",
         "the dose of warfarin is 5 mg daily for adults with atrial fibrillation", "aspirin dose 75 mg",
         "bed nets prevent malaria", "gout flares respond to colchicine"]


def text_generation(url: str) -> tuple[object, list[dict]]:
    """TEXTS as the rows of one document (full-text vectors only), and the PgLexical over them."""
    from rag.lexical import TermStats
    from rag.pg.reader import PgLexical, PgRows
    from rag.pg.store import PgStore

    store = PgStore(url)
    with store.transaction():
        for i, t in enumerate(TEXTS):
            store._run("INSERT INTO chunks(chunk_id, doc_id, cut, ordinal, page, page_end, page_label, section, kind, "
                       "text, content_hash, doc_cut, dim, embedding, tsv) VALUES (%s, 'd0', 0, %s, 1, 1, '1', '', "
                       "'text', %s, '', 'd0/0', 2, '[1,0]', to_tsvector('english', %s))", (f"c{i}", i, t, t))
        store._run("UPDATE chunks SET tsv_length = (SELECT sum(cardinality(positions)) FROM unnest(tsv))")
    rows = store._run("SELECT chunk_id, tsv_length, (SELECT array_agg(lexeme || ':' || cardinality(positions)) "
                      "FROM unnest(tsv)) FROM chunks ORDER BY ordinal").fetchall()
    counts = [{"len": n, "tf": dict(x.rsplit(":", 1) for x in lex)} for _, n, lex in rows]
    terms = TermStats()
    terms.add(TEXTS)
    gen = {"gen_id": "g", "dim": 2, "chunk_ids": [f"c{i}" for i in range(len(TEXTS))], "doc_order": ["d0"],
           "row_doc": [0] * len(TEXTS), "manifest": {"d0": {"status": "current", "cut": 0}},
           "avg_length": sum(c["len"] for c in counts) / len(counts)}
    return PgLexical(PgRows(url, gen), terms, {}), counts


def test_lexical_ranking_is_bm25_over_the_full_text_vectors(pg_url) -> None:  # noqa: F811
    from rag.bm25 import K1, B

    lexical, counts = text_generation(pg_url)
    got = lexical.ranking("warfarin dose for adults", None, 10)
    avg = sum(c["len"] for c in counts) / len(counts)
    stemmed = {"warfarin": "warfarin", "dose": "dose", "adults": "adult"}  # PostgreSQL's English stems
    want = {}
    for row, c in enumerate(counts):
        s = sum(lexical.idf(w.rstrip("s")) * int(c["tf"][lex]) / (int(c["tf"][lex]) + K1 * (1 - B + B * c["len"] / avg))
                for w, lex in stemmed.items() if lex in c["tf"])
        if s > 0:
            want[row] = s
    assert [r for r, _ in got] == sorted(want, key=lambda r: -want[r])
    assert np.allclose([s for _, s in got], [want[r] for r, _ in got])
    assert [r for r, _ in got][0] == 2  # the one row holding every word of the question


def test_the_app_answers_and_quotes_its_pages_from_postgresql(pg_url, settings) -> None:  # noqa: F811
    from conftest import DATA
    from test_ui_app import ANSWERABLE, ask, no_errors, page_text, start

    from rag.qa import QA

    s = Settings.from_env(home=settings.home, database_url=pg_url)
    assert not ingest([DATA], s, HashEmbedder()).failed
    qa = QA(s, embedder=HashEmbedder())
    expected = qa.answer(ANSWERABLE)
    assert not expected.abstained and not (settings.home / "gqa.sqlite").exists()  # nothing on local disk
    at = ask(start(qa), ANSWERABLE)
    no_errors(at)
    text = page_text(at)
    assert all(f"[{c.n}]" in text for c in expected.citations) and f"index {expected.index_version}" in text
    quote = expected.citations[0]
    store = qa.engine.view().pages()
    try:  # the page a citation is checked against is read from the database, by the chunk's own cut
        page = store.page_text(quote.hit.doc.doc_id, quote.hit.chunk.page, quote.hit.chunk.cut)
    finally:
        store.close()
    assert page and quote.hit.chunk.text.split()[0] in page


def test_readers_use_the_read_replica_and_writers_the_primary(pg_server, settings, monkeypatch,  # noqa: F811
                                                              tmp_path: Path) -> None:
    from rag import audit
    from rag.qa import QA
    from rag.storage import open_store, published

    primary, replica = fresh_database(pg_server), fresh_database(pg_server)
    try:
        s = Settings.from_env(home=settings.home, database_url=primary)
        gen = ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], s, HashEmbedder()).generation
        answer = QA(s, embedder=HashEmbedder()).answer("What is the gout treatment?")
        # the "replica" is an empty database: what readers see comes from it, what writers write goes to primary
        r = Settings.from_env(home=settings.home, database_url=primary, database_read_url=replica)
        assert published(s) == gen and published(r) is None
        reader, writer = open_store(r, readonly=True), open_store(r)
        try:
            assert reader.documents() == [] and len(writer.documents()) == 1
        finally:
            reader.close()
            writer.close()
        assert audit.record(r, answer, "cli", who="ana")
        assert [row["who"] for row in audit.rows(s)] == ["ana"]
        monkeypatch.setenv("GQA_DATABASE_URL", primary)
        monkeypatch.setenv("GQA_DATABASE_READ_URL", "postgresql://gqa:s3cret@127.0.0.1:1/gqa")
        assert main(["docs"]) == 1  # an unreachable replica is named at start
    finally:
        drop_database(pg_server, primary)
        drop_database(pg_server, replica)


def test_connections_the_server_dropped_are_replaced_not_failed(pg_url, settings, tmp_path: Path) -> None:  # noqa: F811
    from rag.engine import Engine

    s = Settings.from_env(home=settings.home, database_url=pg_url)
    ingest([guide(tmp_path / "acme_gout_2024.pdf", "gout")], s, HashEmbedder())
    engine = Engine(s, HashEmbedder())
    assert engine.retrieve("gout flare", k=3)
    admin = connect(pg_url, configure=False)
    try:  # as a server restart or an idle timeout would: every other session of this database ends
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid()")
    finally:
        admin.close()
    assert engine.retrieve("gout flare", k=3)


def test_above_the_exact_limit_rows_are_found_by_their_selective_words(pg_url, monkeypatch) -> None:  # noqa: F811
    from rag.pg import reader

    lexical, _ = text_generation(pg_url)
    exact = lexical.ranking("warfarin dose", None, 10)
    assert lexical.selective(["dose", "warfarin"], lexical.weights("dose warfarin")[1]) == ["dose", "warfarin"]
    monkeypatch.setattr(reader, "EXACT_LIMIT", 0)
    monkeypatch.setattr(reader, "COMMON_SHARE", 0.4)  # 'dose' is in 3 of the 6 rows, 'warfarin' in 2
    assert lexical.selective(["dose", "warfarin"], lexical.weights("dose warfarin")[1]) == ["warfarin"]
    # the two rows holding 'warfarin', scored on both words, as the exact ranking scores them
    assert lexical.ranking("warfarin dose", None, 2) == exact[:2]
    assert {r for r, _ in exact[:2]} == {0, 2}
    # fewer rows hold a selective word than asked for: found by every word, as the exact ranking
    assert lexical.ranking("warfarin dose", None, 10) == exact
