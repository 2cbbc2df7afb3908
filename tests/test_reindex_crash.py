"""Crash safety of `reindex`: a SIGKILL at any moment leaves the old generation serving, loadable and quoting
verbatim; the next reindex finishes the job (the harness of tests/test_crash_safety.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder
from test_crash_safety import answers, kill, reap, wait_for

from ingest import pipeline
from ingest.pipeline import ingest
from ingest.reindex import reindex
from rag.config import Settings
from rag.index import generations_dir
from rag.qa import QA
from rag.snapshot import database_path, published_generation
from rag.store import Store
from rag.text import is_verbatim

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OLD = ["acme_warfarin_2024.pdf", "acme_gout_2024.pdf"]

# The child re-cuts the home argv[1] with an extraction that reads 'promptly' as 'at once' (so texts change
# and are embedded). With stage argv[2] it writes the stage name to the marker file argv[3] when it gets
# there, then sleeps until killed. GQA_TEST_EMBED_DELAY slows each embedding call.
CHILD = r"""
import sys
from dataclasses import replace
from pathlib import Path

from stage_pauses import install
from ingest import pipeline, reindex
from rag.config import Settings

home, stage, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
pause, Embedder = install(stage, marker)

extract_pdf = pipeline.extract_pdf
def extract(src, *a, **k):
    pause("extract")
    ext = extract_pdf(src, *a, **k)
    return replace(ext, pages=[replace(p, text=p.text.replace("promptly", "at once")) for p in ext.pages])
pipeline.extract_pdf = extract

Path(str(marker) + ".started").write_text("started")
reindex.reindex(Settings.from_env(home=home), Embedder(), extract_workers=0)
marker.write_text("done")
"""


def mark_old(home: Path) -> None:
    store = Store(database_path(home))
    try:
        with store.transaction() as c:
            for d in store.documents():
                if d.file_name in OLD:
                    c.execute("UPDATE meta SET value = '1' WHERE key = ?", (f"chunker/{d.doc_id}",))
    finally:
        store.close()


def cut_state(home: Path) -> dict:
    store = Store(database_path(home), readonly=True)
    try:
        return {d.file_name: (d.status, store.cut(d.doc_id), store.chunker_version(d.doc_id))
                for d in store.documents()}
    finally:
        store.close()


def recut(home: Path):
    """Reindex in this process with the child's extraction ('promptly' read as 'at once')."""
    real = pipeline.extract_pdf

    def extract(src, *args, **kwargs):
        ext = real(src, *args, **kwargs)
        return replace(ext, pages=[replace(p, text=p.text.replace("promptly", "at once")) for p in ext.pages])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "extract_pdf", extract)
        return reindex(Settings.from_env(home=home), HashEmbedder(), extract_workers=0)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with two documents cut by an 'older' chunker, and the state a complete reindex reaches."""
    base = tmp_path_factory.mktemp("recut-crash")
    files = [guide(base / "src" / "acme_warfarin_2024.pdf", "warfarin", pages=3),
             guide(base / "src" / "acme_gout_2024.pdf", "gout"), guide(base / "src" / "acme_asthma_2024.pdf", "asthma")]
    home = base / "published"
    assert not ingest(files, Settings.from_env(home=home), HashEmbedder()).failed
    mark_old(home)
    reference = base / "reference"
    shutil.copytree(home, reference)
    report = recut(reference)
    assert len(report.recut) == 2 and report.embedded > 0
    return {"home": home, "before": answers(home), "after": answers(reference), "cuts": cut_state(reference),
            "cuts_before": cut_state(home)}


def start_child(home: Path, stage: str, marker: Path, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "GQA_TEST_EMBED_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(home), stage, str(marker)], cwd=ROOT, env=env,
                            start_new_session=True)


def old_generation_quotes(home: Path) -> None:
    """A reader of the old generation quotes the old text verbatim from the page it cites."""
    settings = Settings.from_env(home=home)
    answer = QA(settings, embedder=HashEmbedder()).answer("Treat gout promptly?")
    assert not answer.abstained and any("promptly" in c.quote for c in answer.citations)
    store = Store(database_path(home), readonly=True)
    try:
        for c in answer.citations:
            assert is_verbatim(c.quote, store.page_text(c.hit.doc.doc_id, c.hit.chunk.page, c.hit.chunk.cut))
    finally:
        store.close()


def check_recovery(home: Path, scenario: dict) -> None:
    """The old generation serves (or the complete new one); the next reindex ends in the complete state."""
    gen, got = answers(home)
    if gen == scenario["before"][0]:
        assert got == scenario["before"][1] and cut_state(home) == scenario["cuts_before"]
        old_generation_quotes(home)
    else:
        assert (gen, got) == scenario["after"]
    report = recut(home)
    assert report.failed == []
    assert published_generation(home) == scenario["after"][0] and answers(home) == scenario["after"]
    assert cut_state(home) == scenario["cuts"]
    assert not [p.name for p in generations_dir(home).iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("stage", ["extract", "chunk", "embed", "write_index", "commit", "gc"])
def test_kill_at_each_stage_of_a_reindex(stage: str, scenario: dict, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(scenario["home"], home)
    marker = tmp_path / "marker"
    child = start_child(home, stage, marker)
    try:
        wait_for(marker, child)
        assert marker.read_text() == stage
        expected = scenario["after"] if stage == "gc" else scenario["before"]
        assert answers(home) == expected  # readers are not blocked while the writer is stopped
        if stage != "gc":
            old_generation_quotes(home)
        kill(child)
        assert answers(home) == expected
        check_recovery(home, scenario)
    finally:
        reap(child)


def test_kill_a_reindex_after_varied_delays(scenario: dict, tmp_path: Path) -> None:
    """No hooks: kill a reindex (slowed to about 1 s) after delays spread over its whole run."""
    for i, delay in enumerate([0.0, 0.2, 0.5, 0.9, 1.4]):
        home = tmp_path / str(i) / "home"
        shutil.copytree(scenario["home"], home)
        marker = tmp_path / f"marker-{i}"
        child = start_child(home, "none", marker, delay=0.3)
        try:
            wait_for(Path(str(marker) + ".started"), child)
            time.sleep(delay)
            if child.poll() is None:
                kill(child)
            check_recovery(home, scenario)
        finally:
            reap(child)
