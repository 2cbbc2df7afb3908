"""rag.bm25: the product's own BM25 tables score exactly as bm25s does, and grow by appending rows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rag.bm25 import BM25, TOKEN_PATTERN, Postings, tokenize

WORDS = ("warfarin metformin dose doses tablet tablets renal hepatic INR bleeding 5 mg 325 daily twice "
         "children adults eGFR contraindicated lactic acidosis the of and with monitor weekly").split()


def _texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 60))) for _ in range(n)]


def _bm25s_scores(texts: list[str], query: str) -> np.ndarray:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, token_pattern=TOKEN_PATTERN,
                               show_progress=False), show_progress=False)
    q = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, token_pattern=TOKEN_PATTERN,
                       return_ids=False, show_progress=False)[0]
    return np.asarray(index.get_scores(q), dtype=np.float32)


QUERIES = ["warfarin dose for adults", "metformin eGFR lactic acidosis", "5 mg twice daily tablets",
           "INR INR bleeding", "nothing matches xyzzy"]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_are_bm25s_scores(query: str) -> None:
    texts = _texts(300, seed=1)
    ours = BM25.build(Postings.empty().extend(tokenize(texts))).scores(tokenize([query])[0])
    np.testing.assert_allclose(ours, _bm25s_scores(texts, query), rtol=1e-6, atol=1e-7)


def test_appending_rows_gives_the_tables_of_building_them_all_at_once(tmp_path) -> None:
    old, new = _texts(200, seed=2), _texts(40, seed=3) + ["a brand new word: dabigatran"]
    grown = Postings.empty().extend(tokenize(old))
    grown.save(tmp_path)
    grown = Postings.load(tmp_path).extend(tokenize(new))  # from the saved (memory-mapped) postings
    once = Postings.empty().extend(tokenize(old + new))
    assert grown.vocab[: len(once.vocab)] == once.vocab[: len(grown.vocab)] and set(grown.vocab) == set(once.vocab)
    a, b = BM25.build(grown), BM25.build(once)
    for q in QUERIES + ["dabigatran"]:
        np.testing.assert_allclose(a.scores(tokenize([q])[0]), b.scores(tokenize([q])[0]), rtol=1e-6)
    assert a.scores(["dabigatran"])[-1] > 0 and (a.scores(["dabigatran"])[:-1] == 0).all()


def test_saved_tables_load_memory_mapped_with_the_same_scores(tmp_path) -> None:
    texts = _texts(100, seed=4)
    p = Postings.empty().extend(tokenize(texts))
    built = BM25.build(p)
    built.save(tmp_path)
    loaded = BM25.load(tmp_path, p.vocab, p.rows)
    assert isinstance(loaded.weights, np.memmap)
    q = tokenize(["warfarin renal dose"])[0]
    np.testing.assert_array_equal(loaded.scores(q), built.scores(q))


def test_take_reorders_and_drops_rows() -> None:
    texts = _texts(50, seed=5)
    p = Postings.empty().extend(tokenize(texts))
    rows = np.array([7, 3, 49, 0])
    direct = Postings.empty().extend(tokenize([texts[r] for r in rows]))
    taken = p.take(rows)
    q = tokenize(["metformin dose warfarin"])[0]
    np.testing.assert_allclose(BM25.build(taken).scores(q), BM25.build(direct).scores(q), rtol=1e-6)
