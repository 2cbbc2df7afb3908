"""FAISS search equals brute-force numpy inner products on seeded random unit vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from docgen import guide

from ingest.pipeline import ingest
from rag.index import new_index, read_generation, search, write_generation
from rag.retrieve import Filters, dense_ranking, to_hits
from rag.snapshot import Snapshot, load_snapshot
from rag.store import Store
from rag.types import Chunk, Document


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ base.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def assert_same_ranking(got: list[tuple[int, float]], scores: np.ndarray, allowed: np.ndarray, k: int) -> None:
    """`got` is the brute-force top k of the allowed rows: same scores in order, and the same rows
    wherever a score is not tied (identical chunk texts give identical vectors)."""
    order = [int(r) for r in np.argsort(-scores, kind="stable") if allowed[r]][:k]
    assert len(got) == len(order)
    assert len({r for r, _ in got}) == len(got)
    np.testing.assert_allclose([s for _, s in got], scores[order], atol=1e-5)
    for (r, s), want in zip(got, order, strict=True):
        assert allowed[r] and abs(scores[r] - s) <= 1e-5
        if np.sum(np.abs(scores[allowed] - scores[want]) <= 1e-5) == 1:
            assert r == want


@pytest.mark.parametrize(("n", "dim", "k"), [(1, 8, 1), (50, 16, 5), (1000, 64, 10), (3000, 384, 25)])
def test_flat_index_equals_brute_force(n: int, dim: int, k: int) -> None:
    rng = np.random.default_rng(n * 7 + dim)
    base, queries = unit_rows(rng, n, dim), unit_rows(rng, 20, dim)
    index = new_index(dim, n)
    index.add(base)
    scores, rows = search(index, queries, k)
    want_scores, want_rows = brute_force(base, queries, min(k, n))
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-5)


def test_k_larger_than_index_returns_every_row() -> None:
    rng = np.random.default_rng(1)
    base = unit_rows(rng, 7, 12)
    index = new_index(12)
    index.add(base)
    scores, rows = search(index, base[3], 50)  # a single 1-d query is accepted too
    assert rows.shape == (1, 7) and sorted(rows[0].tolist()) == list(range(7))
    assert rows[0][0] == 3 and scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_written_generation_searches_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base, queries = unit_rows(rng, 400, 32), unit_rows(rng, 10, 32)
    index = new_index(32, 400)
    index.add(base)
    ids = [f"c{i}" for i in range(400)]
    write_generation(tmp_path, "g1", index, ids, {"embedder_id": "emb", "dim": 32})
    files, loaded = read_generation(tmp_path, "g1", "emb")
    assert files.chunk_ids == ids
    _, rows = search(loaded, queries, 10)
    np.testing.assert_array_equal(rows, brute_force(base, queries, 10)[1])


def synthetic_snapshot(rng: np.random.Generator, n: int, dim: int) -> tuple[Snapshot, np.ndarray]:
    """n chunks over 5 documents: doc 4 is a rare family (2% of rows), doc 1 is superseded."""
    docs = {}
    for i, (family, status, doc_type) in enumerate([
        ("alpha", "current", "guideline"), ("alpha", "superseded", "guideline"), ("beta", "current", "label"),
        ("gamma", "current", "formulary"), ("rare", "current", "label"),
    ]):
        docs[f"d{i}"] = Document(f"d{i}", f"sha{i}", f"f{i}.pdf", f"T{i}", family, "2020", doc_type, status)
    owner = rng.choice(4, size=n)
    owner[rng.choice(n, size=n // 50, replace=False)] = 4
    chunks = [Chunk(f"c{i}", f"d{owner[i]}", i, 1, 1, "1", "", f"text {i}") for i in range(n)]
    base = unit_rows(rng, n, dim)
    index = new_index(dim, n)
    index.add(base)
    current = np.array([docs[c.doc_id].status == "current" for c in chunks], dtype=bool)
    return Snapshot("g", index, chunks, docs, current), base


@pytest.mark.parametrize("filters", [
    Filters(), Filters(include_superseded=True), Filters(families=("alpha",)),
    Filters(families=("alpha",), include_superseded=True), Filters(families=("rare",)),
    Filters(doc_types=("label",)), Filters(families=("beta", "gamma"), doc_types=("formulary",)),
    Filters(families=("nobody",)),
], ids=lambda f: f"fam={','.join(f.families) or '*'}-type={','.join(f.doc_types) or '*'}-sup={f.include_superseded}")
def test_dense_ranking_with_filters_equals_brute_force(filters: Filters) -> None:
    rng = np.random.default_rng(4)
    snap, base = synthetic_snapshot(rng, 3000, 48)
    allowed = filters.mask(snap)
    want_mask = np.array([
        (filters.include_superseded or snap.docs[c.doc_id].status == "current")
        and (not filters.families or snap.docs[c.doc_id].family in filters.families)
        and (not filters.doc_types or snap.docs[c.doc_id].doc_type in filters.doc_types)
        for c in snap.chunks
    ])
    np.testing.assert_array_equal(allowed, want_mask)
    for q in unit_rows(rng, 5, 48):
        got = dense_ranking(snap, q[None, :], allowed, 10)
        assert_same_ranking(got, base @ q, want_mask, 10)
        hits = to_hits(snap, got)
        assert [h.rank for h in hits] == list(range(1, len(got) + 1))
        assert all(want_mask[int(h.chunk.chunk_id[1:])] for h in hits)


def test_published_snapshot_equals_brute_force_over_cached_vectors(tmp_path: Path, settings, hash_embedder) -> None:
    """Through the pipeline: the loaded snapshot ranks like numpy over the vectors of each chunk's text."""
    for topic, year in [("warfarin", 2023), ("warfarin", 2025), ("gout", 2024), ("malaria", 2024)]:
        guide(tmp_path / "in" / f"acme_{topic}_{year}.pdf", topic, pages=3, extra=f"Edition {year} notes.")
    ingest([tmp_path / "in"], settings, hash_embedder)
    snap = load_snapshot(settings.home, hash_embedder.id)
    store = Store(settings.home / "gqa.sqlite")
    titles = {d.doc_id: d.title for d in store.documents()}
    store.close()
    base = hash_embedder.embed([c.embed_text(titles[c.doc_id]) for c in snap.chunks])
    for text, flt in [("warfarin INR bleeding", Filters()), ("warfarin INR edition", Filters(include_superseded=True)),
                      ("fever parasite", Filters(families=("acme-malaria",))), ("follow up outcome", Filters())]:
        q = hash_embedder.embed([text])
        allowed = flt.mask(snap)
        assert allowed.any()
        assert_same_ranking(dense_ranking(snap, q, allowed, 5), base @ q[0], allowed, 5)
