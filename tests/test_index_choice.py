"""new_index's choice by corpus size: exact up to EXACT_LIMIT, HNSW above, and HNSW saved and read back intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rag.index
from rag.index import EXACT_LIMIT, new_index, read_generation, search, write_generation


def clustered_rows(rng: np.random.Generator, n: int, dim: int, centres: int = 20) -> np.ndarray:
    """Unit vectors around a few random centres."""
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_10(got: np.ndarray, base: np.ndarray, queries: np.ndarray) -> float:
    want = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)]))


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make 2,000 vectors count as 'large' so the HNSW path runs in milliseconds."""
    monkeypatch.setattr(rag.index, "EXACT_LIMIT", 100)


def test_exact_up_to_the_limit_and_hnsw_above() -> None:
    assert type(new_index(16, EXACT_LIMIT)).__name__ == "IndexFlatIP"
    big = new_index(16, EXACT_LIMIT + 1)
    assert type(big).__name__ == "IndexHNSWFlat"
    assert big.hnsw.efSearch == 128 and big.hnsw.efConstruction == 80


def test_hnsw_finds_the_brute_force_neighbours_and_reads_back_the_same(small_limit: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base, queries = clustered_rows(rng, 2000, 16), clustered_rows(rng, 20, 16)
    index = new_index(16, 2000)
    index.add(base)  # as the ingest pipeline does: no training step
    _, rows = search(index, queries, 10)
    assert recall_at_10(rows, base, queries) >= 0.95
    write_generation(tmp_path, "g1", index, [f"c{i}" for i in range(2000)], {"embedder_id": "emb", "dim": 16})
    _, loaded = read_generation(tmp_path, "g1", "emb")
    assert type(loaded).__name__ == "IndexHNSWFlat" and loaded.hnsw.efSearch == 128
    np.testing.assert_array_equal(search(loaded, queries, 10)[1], rows)
