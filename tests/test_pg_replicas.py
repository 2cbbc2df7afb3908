"""Several processes on one PostgreSQL database (slow): two `guideline-qa api` replicas answer without an
error while an ingest publishes and then both answer from the new generation; a withdrawal made by
another process is seen by both; a SIGKILLed ingest leaves the published generation intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DATA
from docgen import guide
from fakes import HashEmbedder
from pg import pg_server, pg_url  # noqa: F401

from ingest.pipeline import ingest
from rag.config import Settings
from rag.engine import Engine
from rag.retrieve import Filters, dense_ranking
from rag.storage import open_store, published

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret"
QUESTION = "What should I prescribe first-line for low-severity community-acquired pneumonia?"
FORMULARY_QUESTION = "What is the maximum daily dose in the formulary?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replica(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    """`guideline-qa api` in a process of its own on `url`'s database; returns it and its base URL."""
    port = free_port()
    env = {**os.environ, "GQA_DATABASE_URL": url, "GQA_HOME": str(home), "GQA_API_TOKENS": f"ehr:{TOKEN}:reader",
           "NO_PROXY": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen, base: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the replica exited"
        try:
            r = httpx.get(f"{base}/v1/health", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} never became healthy")


def ask(base: str, question: str = QUESTION) -> httpx.Response:
    return httpx.post(f"{base}/v1/ask", json={"question": question}, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def replicas(pg_url, settings, real_embedder) -> Iterator[list[str]]:  # noqa: F811
    """Two API replicas on a database holding the demo guideline (the formulary not yet ingested)."""
    s = Settings.from_env(home=settings.home, database_url=pg_url)
    assert not ingest([DATA / "demo_guideline.pdf"], s, real_embedder).failed
    procs = [start_replica(pg_url, settings.home / f"replica{i}") for i in range(2)]
    try:
        for proc, base in procs:
            wait_healthy(proc, base)
        yield [base for _, base in procs]
    finally:
        for proc, _ in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def test_two_replicas_answer_through_a_publish_and_see_a_withdrawal(replicas, pg_url, settings,  # noqa: F811
                                                                    real_embedder) -> None:
    s = Settings.from_env(home=settings.home, database_url=pg_url)
    before = published(s)
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def asker(base: str) -> None:
        while not stop.is_set():
            try:
                r = ask(base)
                results.append((r.status_code, r.json().get("index_version") if r.status_code == 200 else r.text))
            except httpx.HTTPError as exc:
                results.append((0, str(exc)))

    threads = [threading.Thread(target=asker, args=(b,)) for b in replicas for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        report = ingest([DATA / "demo_formulary.pdf"], s, real_embedder)  # publishes while they answer
        assert report.generation and not report.failed
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    errors = [r for r in results if r[0] != 200]
    assert errors == [] and len(results) >= 4
    assert {v for _, v in results} <= {before, report.generation}
    for base in replicas:  # both answer from the new generation, without a restart
        assert ask(base).json()["index_version"] == report.generation
        assert httpx.get(f"{base}/v1/health").json()["index_version"] == report.generation
    # a withdrawal made by another process (the CLI) is seen by both replicas at their next question
    env = {**os.environ, "GQA_DATABASE_URL": pg_url, "GQA_HOME": str(settings.home)}
    done = subprocess.run([sys.executable, "-m", "cli.main", "withdraw", "demo_formulary.pdf", "--reason",
                           "checking doses"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    withdrawn = published(s)
    assert withdrawn != report.generation
    for base in replicas:
        got = ask(base, FORMULARY_QUESTION).json()
        assert got["index_version"] == withdrawn
        assert "demo_formulary.pdf" not in {c["doc"] for c in got["citations"]} | {
            h["doc"] for h in httpx.post(f"{base}/v1/retrieve", json={"question": FORMULARY_QUESTION, "k": 20},
                                         headers={"Authorization": f"Bearer {TOKEN}"}).json()["hits"]}


# The child ingests argv[3:] into the database GQA_DATABASE_URL names, and stops inside the publishing
# transaction (the new chunks written, the generation row not yet), writing argv[2] there.
CHILD = r"""
import sys, time
from pathlib import Path

from fakes import HashEmbedder
from ingest import pipeline
from rag.config import Settings
from rag.pg.store import PgStore

home, marker, files = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
real = PgStore._insert_generation

def paused(self, *a, **k):
    marker.write_text("in the publishing transaction")
    time.sleep(600)

PgStore._insert_generation = paused
pipeline.ingest(files, Settings.from_env(home=home), HashEmbedder())
"""


def top(settings: Settings, queries: list[str]) -> tuple[str, list]:
    engine = Engine(settings, HashEmbedder())
    view = engine.view()
    allowed = Filters().mask(view.snap)
    return view.gen_id, [[view.snap.chunks[r].chunk_id for r, _ in
                          dense_ranking(view.snap, HashEmbedder().embed([q]), allowed, 5)] for q in queries]


def test_a_killed_ingest_leaves_the_published_generation_intact(pg_url, settings, tmp_path: Path) -> None:  # noqa: F811
    s = Settings.from_env(home=settings.home, database_url=pg_url)
    first = [guide(tmp_path / "acme_gout_2024.pdf", "gout"), guide(tmp_path / "acme_warfarin_2023.pdf", "warfarin")]
    assert not ingest(first, s, HashEmbedder()).failed
    queries = ["gout urate flare", "warfarin INR bleeding", "asthma inhaler wheeze"]
    before = top(s, queries)
    second = [guide(tmp_path / "acme_asthma_2024.pdf", "asthma", pages=3)]
    marker = tmp_path / "marker"
    env = {**os.environ, "GQA_DATABASE_URL": pg_url, "PYTHONPATH": str(ROOT / "tests")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(settings.home), str(marker), *map(str, second)],
                             cwd=ROOT, env=env, start_new_session=True)
    try:
        end = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < end, "the ingest never reached its publish"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert top(s, queries) == before  # the same generation, the same answers
    store = open_store(s, readonly=True)
    try:
        assert {d.file_name for d in store.documents()} == {p.name for p in first}  # rolled back whole
    finally:
        store.close()
    # the dead ingest's advisory lock went with its connection: the next ingest publishes
    end = time.monotonic() + 30
    while True:
        try:
            report = ingest(second, s, HashEmbedder())
            break
        except Exception as exc:  # noqa: BLE001 - the server may take a moment to see the dead connection
            assert "another ingest" in str(exc) and time.monotonic() < end
            time.sleep(0.5)
    assert report.generation and top(s, queries)[0] == report.generation != before[0]
