"""The HTTP API as `guideline-qa api` serves it (uvicorn on 127.0.0.1): the real `openai` client, the access
log, and schemathesis against the OpenAPI document (slow)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from answer_corpus import QUESTION, ingest_corpus

pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

TOKENS = "ehr:s3cret:reader,kt:0ther:admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving() -> Iterator[str]:
    """`guideline-qa api`'s server (cli.api_cmd.build) on a free port in a thread; yields its base URL."""
    from cli.api_cmd import build

    port = free_port()
    server = build("127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < end:
        time.sleep(0.02)
    assert server.started, "the API did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(settings, hash_embedder, tmp_path, monkeypatch) -> Iterator[str]:
    from fakes import HashEmbedder

    ingest_corpus(settings, hash_embedder, tmp_path / "pdfs")
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    monkeypatch.setenv("GQA_API_TOKENS", TOKENS)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with serving() as url:
        yield url


def test_openai_client_chat_plain_and_streamed(api):
    client = openai.OpenAI(base_url=f"{api}/v1", api_key="s3cret", max_retries=0)
    assert [m.id for m in client.models.list()] == ["guideline-qa"]
    reply = client.chat.completions.create(model="guideline-qa", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    assert "[1]" in content and "\n\nSources:\n\n[1] " in content
    assert reply.model_extra["citations"] and reply.model_extra["citations"][0]["n"] == 1
    stream = client.chat.completions.create(model="guideline-qa", stream=True,
                                            messages=[{"role": "user", "content": QUESTION}])
    pieces = [c.choices[0].delta.content or "" for c in stream]
    assert "".join(pieces) == content and len(pieces) > 3
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{api}/v1", api_key="wrong", max_retries=0).models.list()


def test_no_question_text_in_any_log(api, monkeypatch):
    import httpx

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    keep = Keep(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "cli", "rag")]
    for lg in loggers:
        lg.addHandler(keep)
    monkeypatch.setattr(logging.getLogger("cli"), "level", logging.DEBUG)
    try:
        auth = {"Authorization": "Bearer s3cret"}
        secret_q = "Warfarin dose for patient Zebedee Quist?"
        httpx.post(f"{api}/v1/ask?q=Zebedee", json={"question": secret_q}, headers=auth, timeout=30)
        httpx.post(f"{api}/v1/ask", json={"question": secret_q, "k": 0}, headers=auth, timeout=30)
        httpx.post(f"{api}/v1/chat/completions", headers=auth, timeout=30,
                   json={"model": "guideline-qa", "messages": [{"role": "user", "content": secret_q}]})
    finally:
        for lg in loggers:
            lg.removeHandler(keep)
    assert any("/v1/ask" in line for line in lines), lines  # the access log ran
    assert not [line for line in lines if "Zebedee" in line]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(api, tmp_path):
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    for token in ("s3cret", "0ther"):
        p = subprocess.run([exe, "run", f"{api}/openapi.json", "--checks", "not_a_server_error",
                            "--max-examples", "20", "-H", f"Authorization: Bearer {token}", "--workers", "1"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache folder there
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]



