"""Crash safety: an ingest killed with SIGKILL at any point leaves the published index loadable and unchanged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder

from ingest.pipeline import ingest
from rag.config import Settings
from rag.index import generations_dir
from rag.retrieve import Filters, dense_ranking
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["warfarin INR bleeding", "gout urate flare", "asthma inhaler wheeze", "follow up outcome record"]

# The child ingests argv[4:] into argv[1]. With stage argv[2] it writes the stage name to the marker file
# argv[3] when it gets there, then sleeps until killed. GQA_TEST_EMBED_DELAY slows each embedding call.
CHILD = r"""
import sys
from pathlib import Path

from stage_pauses import install
from ingest import pipeline
from rag.config import Settings

home, stage, marker, files = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
pause, Embedder = install(stage, marker)
Path(str(marker) + ".started").write_text("started")
pipeline.ingest(files, Settings.from_env(home=home), Embedder())
marker.write_text("done")
"""


def answers(home: Path) -> tuple[str, list[list[tuple[str, float]]]]:
    """The published generation and its top-5 dense results for QUERIES (the reader's view)."""
    emb = HashEmbedder()
    snap = load_snapshot(home, emb.id)
    allowed = Filters().mask(snap)
    out = []
    for q in QUERIES:
        ranked = dense_ranking(snap, emb.embed([q]), allowed, 5)
        out.append([(snap.chunks[r].chunk_id, round(s, 5)) for r, s in ranked])
    return snap.gen_id, out


def statuses(home: Path) -> dict[str, str]:
    store = Store(database_path(home))
    try:
        return {d.file_name: d.status for d in store.documents()}
    finally:
        store.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with a first batch published, a second batch to ingest, and the expected end state."""
    base = tmp_path_factory.mktemp("crash")
    first = [guide(base / "first" / "acme_warfarin_2023.pdf", "warfarin", extra="Old edition.", pages=3),
             guide(base / "first" / "acme_gout_2024.pdf", "gout")]
    second = [guide(base / "second" / "acme_warfarin_2025.pdf", "warfarin", extra="New edition.", pages=3),
              guide(base / "second" / "acme_asthma_2024.pdf", "asthma", pages=4),
              guide(base / "second" / "acme_malaria_2024.pdf", "malaria", pages=2)]
    home = base / "published"
    assert not ingest(first, Settings.from_env(home=home), HashEmbedder()).failed
    reference = base / "reference"
    shutil.copytree(home, reference)
    report = ingest(second, Settings.from_env(home=reference), HashEmbedder())
    assert not report.failed and report.generation
    return {"home": home, "first": first, "second": second, "before": answers(home), "after": answers(reference),
            "statuses": statuses(reference)}


def fresh_home(scenario: dict, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(scenario["home"], home)
    return home


def start_child(home: Path, stage: str, marker: Path, files: list[Path], delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "GQA_TEST_EMBED_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(home), stage, str(marker), *map(str, files)],
                            cwd=ROOT, env=env, start_new_session=True)


def wait_for(path: Path, child: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert child.poll() is None, f"the ingest child exited ({child.returncode}) before reaching {path.name}"
        assert time.monotonic() < deadline, f"the ingest child never reached {path.name}"
        time.sleep(0.05)


def kill(child: subprocess.Popen) -> None:
    """SIGKILL the ingest process itself, as the OOM killer or a power cut would (its workers live on)."""
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def reap(child: subprocess.Popen) -> None:
    """Kill what is left of the child's own process group (orphaned extraction workers)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check_recovery(home: Path, scenario: dict) -> None:
    """The published index is the old one or the complete new one; a following ingest finishes the job."""
    gen, got = answers(home)
    if gen == scenario["before"][0]:
        assert got == scenario["before"][1]
    else:
        assert (gen, got) == scenario["after"]
    report = ingest(scenario["second"], Settings.from_env(home=home), HashEmbedder())
    assert report.failed == []
    assert published_generation(home) == scenario["after"][0]
    assert answers(home) == scenario["after"]
    assert statuses(home) == scenario["statuses"]
    leftovers = [p.name for p in generations_dir(home).iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == [], "temporary folders of the dead writer were not collected"


@pytest.mark.parametrize("stage", ["chunk", "embed", "write_index", "commit", "gc"])
def test_kill_at_each_stage(stage: str, scenario: dict, tmp_path: Path) -> None:
    home = fresh_home(scenario, tmp_path)
    marker = tmp_path / "marker"
    child = start_child(home, stage, marker, scenario["second"])
    try:
        wait_for(marker, child)
        assert marker.read_text() == stage
        # while the writer is stopped mid-ingest, readers are not blocked; they see the old index until
        # the commit, then the complete new one
        expected = scenario["after"] if stage == "gc" else scenario["before"]
        assert answers(home) == expected
        kill(child)
        assert answers(home) == expected
        check_recovery(home, scenario)
    finally:
        reap(child)


def test_kill_after_varied_delays(scenario: dict, tmp_path: Path) -> None:
    """No hooks: kill an ingest (slowed to about 1 s) after delays spread over its whole run."""
    outcomes = []
    for i, delay in enumerate([0.0, 0.15, 0.3, 0.5, 0.8, 1.2, 1.8]):
        home = fresh_home(scenario, tmp_path / str(i))
        marker = tmp_path / f"marker-{i}"
        child = start_child(home, "none", marker, scenario["second"], delay=0.3)
        try:
            wait_for(Path(str(marker) + ".started"), child)
            time.sleep(delay)
            if child.poll() is None:
                kill(child)
            outcomes.append("old" if published_generation(home) == scenario["before"][0] else "new")
            check_recovery(home, scenario)
        finally:
            reap(child)
    assert len(outcomes) == 7


@pytest.mark.parametrize("stage", ["write_index", "commit"])
def test_an_ingest_with_nothing_new_collects_what_a_killed_one_left(stage: str, scenario: dict, tmp_path: Path
                                                                    ) -> None:
    """Killed while writing (a .tmp- folder) or before its commit (a generation never published)."""
    home = fresh_home(scenario, tmp_path)
    before = sorted(p.name for p in generations_dir(home).iterdir())
    marker = tmp_path / "marker"
    child = start_child(home, stage, marker, scenario["second"])
    try:
        wait_for(marker, child)
        kill(child)
    finally:
        reap(child)
    left = sorted(p.name for p in generations_dir(home).iterdir())
    assert len(left) == len(before) + 1 and (stage == "write_index") == any(n.startswith(".tmp-") for n in left)
    report = ingest(scenario["first"], Settings.from_env(home=home), HashEmbedder())
    assert report.generation is None and len(report.unchanged) == len(scenario["first"])
    assert sorted(p.name for p in generations_dir(home).iterdir()) == before
    assert answers(home) == scenario["before"]


def workers_of(pid: int) -> list[int]:
    """Running child processes of `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_extraction_workers_of_a_killed_ingest_exit(scenario: dict, tmp_path: Path) -> None:
    """A SIGKILL reaches the ingest only; its extraction workers notice and end instead of waiting for ever."""
    home = fresh_home(scenario, tmp_path)
    marker = tmp_path / "marker"
    child = start_child(home, "chunk", marker, scenario["second"])
    try:
        wait_for(marker, child)
        workers = workers_of(child.pid)
        assert workers, "three new files are extracted in a worker process"
        kill(child)
        deadline = time.monotonic() + 10
        while any(running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(w) for w in workers), "an extraction worker outlived its ingest"
    finally:
        reap(child)


def test_lock_is_released_when_the_ingest_dies(scenario: dict, tmp_path: Path) -> None:
    """While the writer lives a second ingest is refused; once it is killed the next one runs."""
    from rag.errors import GQAError

    home = fresh_home(scenario, tmp_path)
    marker = tmp_path / "marker"
    child = start_child(home, "embed", marker, scenario["second"])
    try:
        wait_for(marker, child)
        with pytest.raises(GQAError, match="another ingest is running"):
            ingest(scenario["second"], Settings.from_env(home=home), HashEmbedder())
        kill(child)
        check_recovery(home, scenario)
    finally:
        reap(child)
