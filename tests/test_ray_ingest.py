"""Bulk ingestion on Ray (ingest/ray_ingest.py): the same library as a local ingest, bad files reported alike."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from docgen import deep_page_tree, guide, truncated
from pg import pg_server, pg_url  # noqa: F401 - fixtures

from ingest import ray_ingest
from ingest.pipeline import ingest
from rag.config import Settings
from rag.errors import ConfigError
from rag.index import read_generation
from rag.store import Store
from rag.types import sha256_hex

DATA = Path(__file__).resolve().parents[1] / "data"


def test_ray_flag_without_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys, _isolated_home):
    from cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as where the extra is not installed
    assert main(["ingest", str(DATA / "demo_guideline.pdf"), "--ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'guideline-qa[cluster]'" in err
    assert not (_isolated_home / "gqa.sqlite").exists()  # stopped before the store (or a model) was opened


@pytest.mark.parametrize(("address", "expected"), [
    ("", None), ("auto", "auto"), ("ray://head:10001", "ray://head:10001"), ("10.0.0.5:6379", "10.0.0.5:6379"),
])
def test_ray_addresses(address, expected):
    assert ray_ingest.check_address(address) == expected


def test_a_path_given_as_address_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="put --ray after the paths"):
        ray_ingest.check_address("guidelines/")


def test_actors_get_no_secrets(settings):
    s = ray_ingest._worker_settings(replace(settings, api_tokens="ops:t0ken:admin"))
    assert s.api_tokens == "" and s.embed_model == settings.embed_model and s.device == settings.device


def test_worker_extraction_reports_failures_as_a_local_ingest(tmp_path, settings, hash_embedder):
    """extract_batch (what a Ray worker runs, called here without Ray) gives each bad file the line a
    local ingest gives it, and refuses a file whose bytes are not those hashed."""
    good = guide(tmp_path / "in" / "good.pdf", "gout")
    bad = truncated(guide(tmp_path / "src.pdf", "asthma"), tmp_path / "in" / "cut.pdf")
    deep = deep_page_tree(tmp_path / "in" / "deep.pdf")
    local = ingest([bad, deep], settings, hash_embedder).failed
    files = [good, bad, deep, good]
    shas = [sha256_hex(f.read_bytes()) for f in files[:3]] + ["0" * 64]  # the last: replaced since hashed
    rows = ray_ingest.extract_batch({"i": np.arange(4), "path": np.array([str(f) for f in files]),
                                     "sha": np.array(shas)})
    assert rows["i"] == [0, 1, 2, 3]
    assert rows["extracted"][0] and not rows["error"][0]
    assert rows["error"][1:3] == [e["error"] for e in local] and rows["debug"][2]  # the crash's traceback
    assert rows["error"][3] == "good.pdf: changed while it was being ingested; ingest it again"


# --- on a local Ray (slow: starts Ray and loads the real model in its actors) ---

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the cluster extra is not installed")
    pytest.importorskip("ray.data", reason="the cluster extra is not installed")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 2**20,
                 logging_level="WARNING", runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}})
    yield ray
    ray.shutdown()


def _library(home: Path, embedder_id: str, dim: int) -> tuple[list[dict], dict, np.ndarray, dict]:
    """(documents, chunk id -> text, the published generation's vectors in row order, hash -> cached vector)."""
    store = Store(home / "gqa.sqlite", readonly=True)
    try:
        docs = [{k: v for k, v in vars(d).items() if k != "ingested_at"} for d in store.documents()]
        chunks = {k.chunk_id: k.text for d in store.documents() for k in store.chunks_of(d.doc_id)}
        files, index = read_generation(home, str(store.get_meta("current_generation")), embedder_id)
        vectors = index.reconstruct_n(0, index.ntotal)
        hashes = sorted(store.content_hashes().values())
        cache = store.cached_vectors(hashes, embedder_id, dim)
        assert [c for c in files.chunk_ids if c not in chunks] == []
    finally:
        store.close()
    return docs, chunks, vectors, cache


@pytest.mark.slow
def test_ray_ingest_gives_the_local_library(local_ray, tmp_path, onnx_cache):
    """Documents, chunk ids and texts, and vectors (fp32: lower precisions round differently per batch
    shape) equal to a local ingest's of the demo corpus."""
    from rag.embedder import SentenceTransformerEmbedder

    base = Settings.from_env(home=tmp_path / "local")
    s_local, s_ray = replace(base, embed_precision="fp32"), replace(base, home=tmp_path / "ray", embed_precision="fp32")
    emb = SentenceTransformerEmbedder(base.embed_model, "cpu", 0, cache_dir=onnx_cache, precision="fp32")
    local = ingest([DATA], s_local, emb)
    remote = ray_ingest.ingest_on_ray([DATA], s_ray, emb)
    assert not remote.failed and remote.generation
    here = ray_ingest.worker_name()  # this process: no stage may have run in it
    assert remote.ray["extract_workers"] and here not in remote.ray["extract_workers"]
    assert remote.ray["embed_workers"] and here not in remote.ray["embed_workers"]
    assert len(remote.ray["embed_workers"]) <= remote.ray["embed_actors"] <= 2  # one embedder per actor
    assert (remote.pages, remote.chunks, remote.embedded, remote.units_embedded) == \
        (local.pages, local.chunks, local.embedded, local.units_embedded)
    a, b = _library(s_local.home, emb.id, emb.dim), _library(s_ray.home, emb.id, emb.dim)
    assert a[0] == b[0] and len(a[0]) == 2
    assert a[1] == b[1]
    np.testing.assert_allclose(a[2], b[2], atol=1e-5)
    assert a[3].keys() == b[3].keys()  # every chunk's vector
    np.testing.assert_allclose(np.stack([a[3][h] for h in a[3]]), np.stack([b[3][h] for h in a[3]]), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["embedded", "postgresql"])
def test_a_bad_pdf_on_ray_is_reported_and_the_rest_published(store, request, local_ray, tmp_path, capsys,
                                                             hash_embedder):
    """Through the command, into either store (the driver publishes through the configured one)."""
    from cli.main import main
    from rag.storage import open_store, published

    if store == "postgresql":
        request.getfixturevalue("pg_url")  # GQA_DATABASE_URL names a fresh database while the test runs
    folder = tmp_path / "in"
    folder.mkdir()
    for f in DATA.glob("*.pdf"):
        shutil.copy(f, folder / f.name)
    bad = truncated(DATA / "demo_guideline.pdf", folder / "broken.pdf")
    local = replace(Settings.from_env(home=tmp_path / "local"), database_url="")
    expected = ingest([bad], local, hash_embedder).failed
    assert main(["ingest", str(folder), "--ray", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == [{**expected[0], "file": str(bad)}]
    assert out["ray"]["embed_workers"] and ray_ingest.worker_name() not in out["ray"]["embed_workers"]
    assert sorted(Path(e["file"]).name for e in out["added"]) == ["demo_formulary.pdf", "demo_guideline.pdf"]
    settings = Settings.from_env()
    assert bool(settings.database_url) == (store == "postgresql")
    assert published(settings) == out["generation"]
    db = open_store(settings, readonly=True)
    try:
        assert len(db.documents()) == 2
    finally:
        db.close()
