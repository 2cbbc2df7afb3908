"""bench/scale.py: the synthetic library it publishes is one the product reads as its own, built through
the incremental publish path, and its --measure prints every figure the issue names."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

import scale  # noqa: E402
import scale_library as lib  # noqa: E402
import scale_measure  # noqa: E402
import synthetic  # noqa: E402

from ingest.versions import resolve  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.lexical import Lexical, row_text  # noqa: E402
from rag.snapshot import database_path, load_snapshot  # noqa: E402
from rag.store import Store  # noqa: E402
from rag.types import Chunk  # noqa: E402
from rag.units import units  # noqa: E402

FAKE_ID = "hash-bow:dim384"  # no model needed to publish: the bench only writes the id


def test_punctuated_text_is_quoted_sentence_by_sentence() -> None:
    assert lib.punctuate("baba babi babo", 2) == "Baba babi. Babo."
    words = " ".join(f"w{i}" for i in range(60))
    chunk = Chunk("c", "d", 0, 1, 1, "1", "", lib.punctuate(words))
    assert len(units(chunk)) == math.ceil(60 / lib.SENTENCE_WORDS)


def test_statuses_are_the_ones_the_product_would_decide() -> None:
    corpus = synthetic.make_corpus(1200, seed=3)
    plans = lib.plan_documents(corpus, seed=3)
    docs = [p.doc for p in plans]
    assert sum(len(p.rows) for p in plans) == 1200
    assert [lib.family_sizes(g) for g in range(5)] == [3, 1, 1, 1, 2]
    # what ingest.versions.resolve makes of them is what they say: a real ingest changes no status
    assert resolve(docs) == {d.doc_id: (d.status, d.superseded_by) for d in docs}
    by_family: dict[str, list] = {}
    for d in docs:
        by_family.setdefault(d.family, []).append(d)
    assert all(sum(d.status == "current" for d in ds) == 1 for ds in by_family.values())
    assert 0 < sum(d.status == "superseded" for d in docs) < len(docs) / 2


def test_batches_cut_whole_documents_evenly() -> None:
    plans = lib.plan_documents(synthetic.make_corpus(400, seed=1))
    parts = list(lib.batches(plans, 4))
    assert len(parts) == 4 and [p for part in parts for p in part] == plans
    assert [sum(len(p.rows) for p in part) for part in parts] == [100, 100, 100, 100]


def test_exact_top_k_and_overlap() -> None:
    rng = np.random.default_rng(0)
    xb, q = rng.standard_normal((250, 8)).astype(np.float32), rng.standard_normal((5, 8)).astype(np.float32)
    expected = np.argsort(-(q @ xb.T), axis=1)[:, :10]
    assert (scale_measure.exact_topk(q, xb, 10, block=64) == expected).all()
    assert scale_measure.overlap_at([[1, 2]], np.array([[2, 3]]), 2) == 0.5


def test_build_publishes_in_batches_a_library_a_reader_loads(tmp_path: Path) -> None:
    home = tmp_path / "lib"
    out = scale.build(600, home, seed=0, n_batches=3, embedder_id=FAKE_ID, queries=20)
    assert [b["rows"] for b in out["batches"]] == [200, 400, 600]
    store = Store(database_path(home), readonly=True)
    try:
        gens = store.generations()
        docs = store.documents()
        assert store.get_meta("current_generation") == gens[-1] == out["batches"][-1]["generation"]
    finally:
        store.close()
    assert len(gens) == 3
    ids = [json.loads((home / "index" / g / "chunk_ids.json").read_text()) for g in gens]
    assert ids[1][:200] == ids[0] and ids[2][:400] == ids[1]  # each publish appended to the one before
    snap = load_snapshot(home, FAKE_ID)
    assert snap.size == 600
    current = {d.doc_id for d in docs if d.status == "current"}
    assert int(snap.current_rows.sum()) == sum(d.chunks for d in docs if d.doc_id in current) < 600
    # the tables the last (appending) publish extended score as tables built over every row at once
    loaded = Lexical.load(snap.generation, snap.size)
    assert loaded is not None
    chunks = list(snap.chunks)
    whole = Lexical.build([(c.doc_id, row_text(snap.docs[c.doc_id].title, c.section, c.text)) for c in chunks])
    question = json.loads((home / "scale" / "queries.json").read_text())["texts"][0]
    np.testing.assert_allclose(loaded.scores(question), whole.scores(question), rtol=1e-5)
    assert loaded.scores(question).max() > 0
    # every question's family is a family of the library with a current document
    families = json.loads((home / "scale" / "queries.json").read_text())["families"]
    assert set(families) <= {d.family for d in docs if d.status == "current"}


def test_each_extra_document_is_new_and_changes_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "lib"
    scale.build(300, home, embedder_id=FAKE_ID, n_batches=1, queries=5)
    settings = Settings.from_env(home=home)
    before = {d.doc_id: d.status for d in Store(database_path(home), readonly=True).documents()}
    gen1, _, what = scale_measure.publish_extra(home, settings, FAKE_ID)
    gen2, _, _ = scale_measure.publish_extra(home, settings, FAKE_ID)
    after = Store(database_path(home), readonly=True).documents()
    extra = [d for d in after if d.doc_id not in before]
    assert what == {"chunks": 150, "pages": 30} and gen1 != gen2
    assert len(extra) == 2 and len({d.family for d in extra}) == 2 and all(d.status == "current" for d in extra)
    assert {d.doc_id: d.status for d in after if d.doc_id in before} == before
    assert load_snapshot(home, FAKE_ID).size == 600


@pytest.mark.slow
def test_build_then_measure_prints_every_figure(tmp_path: Path) -> None:
    home = tmp_path / "lib"
    cmd = [sys.executable, str(ROOT / "bench" / "scale.py"), "--chunks", "600", "--home", str(home)]
    subprocess.run([*cmd, "--batches", "2"], check=True, capture_output=True, timeout=120)
    run = subprocess.run([*cmd, "--measure", "--json", "--queries", "20"], check=True, capture_output=True,
                         text=True, timeout=180)
    out = json.loads(run.stdout)
    for key in ("cold_start_s", "pickup_s", "publish_one_s", "reader_rss_mb", "retrieve_p50_ms", "retrieve_p95_ms",
                "retrieve_filtered_p95_ms"):
        assert isinstance(out[key], float) and out[key] > 0, key
    assert 0.0 <= out["recall_at_10"] <= 1.0 and 0.0 <= out["recall_at_10_index"] <= 1.0
    assert out["n_chunks"] == 600 and out["machine"]["cores"] >= 1
    assert out["reader_answers"] > scale_measure.STEADY_ANSWERS  # the reader answered, before and after
    assert out["generation_after"] != out["generation"]  # the publishes landed; the reader answered from one
    assert out["cold_start_parts_s"]["qa_init"] > 0
