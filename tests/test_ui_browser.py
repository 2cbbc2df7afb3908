"""The app in a real browser: Playwright drives Debian's Chromium against `guideline-qa serve` over the demo corpus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ITEMS = [json.loads(x) for x in (ROOT / "data" / "demo_eval.jsonl").read_text().splitlines() if x.strip()]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Debian chromium not found at {CHROMIUM}; `make browser` installs it "
                              "(apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Poll Streamlit's health endpoint until it answers 'ok'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not start within {timeout} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (guideline-qa and its Streamlit child), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`guideline-qa serve` on a free port over a copy of the demo home (feedback writes go to the copy)."""
    base = tmp_path_factory.mktemp("browser-server")
    home = base / "home"
    shutil.copytree(demo_home, home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GQA_")}
    env.update({"GQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"})
    log = base / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url, home
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--headless"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server: tuple[str, Path]) -> Iterator:
    """A fresh tab on the app; fails the test if the page asks any host other than the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    tab = context.new_page()
    hosts: set[str] = set()
    urls: list[str] = []
    tab.on("request", lambda r: (hosts.add(urlparse(r.url).hostname or ""), urls.append(r.url)))
    tab.set_default_timeout(120_000)  # the first visit loads the model on a shared 2-core machine
    tab.goto(server[0])
    try:
        yield tab
        assert hosts <= {"127.0.0.1", ""}, f"the page reached other hosts: {[u for u in urls if '127.0.0.1' not in u]}"
    finally:
        context.close()


@pytest.fixture(scope="module")
def answered_question(demo_home: Path, real_embedder) -> str:
    """The first answerable demo question the current QA answers (answer quality is not this test's subject)."""
    from rag.config import Settings
    from rag.qa import QA

    qa = QA(Settings.from_env(home=demo_home), embedder=real_embedder)
    for item in ITEMS:
        if item["answerable"] and not qa.answer(item["question"]).abstained:
            return item["question"]
    pytest.fail("the QA abstains on every answerable question of data/demo_eval.jsonl")


def ask(tab, question: str) -> None:
    box = tab.locator('input[aria-label="Question"]')
    box.fill(question)
    box.press("Enter")


def test_ask_cite_open_source_and_give_feedback(page, server: tuple[str, Path], answered_question: str,
                                               tmp_path: Path) -> None:
    question = answered_question
    ask(page, question)
    page.locator(".gqa-answer").wait_for()
    page.locator(".gqa-head").first.wait_for()
    assert "[1]" in page.locator(".gqa-answer").inner_text()
    meta = page.locator(".gqa-meta").first.inner_text()
    assert "PDF page" in meta and "Version 2026" in meta
    assert page.locator(".gqa-badge").first.inner_text().strip().lower() == "current"
    page.get_by_text("Source page (PDF page").first.click()
    marked = page.locator('[data-testid="stExpanderDetails"] .gqa-passage mark').first
    marked.wait_for(state="visible")
    assert marked.inner_text().strip()
    printed = page.locator('[data-testid="stExpanderDetails"] img').first  # the page as printed, beside the text
    printed.wait_for(state="visible")
    assert page.evaluate("(img) => img.naturalWidth", printed.element_handle()) > 500
    page.get_by_text("Wrong citation", exact=True).click()
    page.locator('input[aria-label^="Comment"]').fill("checked in the browser test")
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_text("your feedback was saved").wait_for()
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollTo(0, 0)")
    shot = tmp_path / "clinician-answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    con = sqlite3.connect(server[1] / "gqa.sqlite")
    try:
        rows = con.execute("SELECT rating, comment, question, citations, index_version FROM feedback").fetchall()
    finally:
        con.close()
    assert len(rows) == 1
    rating, comment, stored_question, citations, index_version = rows[0]
    assert (rating, comment, stored_question) == ("wrong_citation", "checked in the browser test", question)
    assert json.loads(citations) and index_version


def test_unanswerable_question_shows_the_abstention(page, tmp_path: Path) -> None:
    question = next(i for i in ITEMS if not i["answerable"])["question"]
    ask(page, question)
    page.get_by_text("The indexed documents do not answer this").wait_for()
    page.locator(".gqa-notanswer").first.wait_for()
    assert page.get_by_text("Closest related passages: not an answer").is_visible()
    assert page.locator(".gqa-answer").count() == 0
    page.screenshot(path=str(tmp_path / "clinician-abstention.png"), full_page=True)
