"""A check shared by tests that publish: the published generation's saved tables (rag.tables) are the
ones a reader would build from scratch out of the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.index import generations_dir
from rag.lexical import Lexical, row_text
from rag.snapshot import load_snapshot, published_generation

QUERIES = ("warfarin dose INR", "metformin renal eGFR lactic acidosis", "gout flare allopurinol 10 mg",
           "asthma inhaler", "adults elderly daily")


def assert_tables_as_rebuilt(home: Path, embedder_id: str) -> None:
    gen = published_generation(home)
    snap = load_snapshot(home, embedder_id, gen)
    saved = Lexical.load(generations_dir(home) / gen, snap.size)
    assert saved is not None, "the publish wrote no lexical tables"
    chunks = list(snap.chunks)
    fresh = Lexical.build([(c.doc_id, row_text(snap.docs[c.doc_id].title, c.section, c.text)) for c in chunks])
    for q in QUERIES:
        np.testing.assert_allclose(saved.scores(q), fresh.scores(q), rtol=1e-5, atol=1e-6)
    assert (saved.size, saved.df, saved.prefix_df) == (fresh.size, fresh.df, fresh.prefix_df)
    assert saved.abbreviations == {d: a for d, a in fresh.abbreviations.items()}
    assert [snap.doc_order[i] for i in snap.row_doc] == [c.doc_id for c in chunks]
