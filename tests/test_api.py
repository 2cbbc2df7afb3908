"""The HTTP API through FastAPI's TestClient: every route, auth and error; fast tier (hash embedder, generated PDFs)."""

from __future__ import annotations

import json
import threading

import pytest
from answer_corpus import QUESTION, ingest_corpus, write_corpus

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from cli.api_app import create_app, parse_tokens  # noqa: E402
from cli.main import main  # noqa: E402

READER = {"Authorization": "Bearer s3cret"}
ADMIN = {"Authorization": "Bearer 0ther:x"}
TOKENS = "ehr:s3cret:reader, kt:0ther:x:admin"


@pytest.fixture
def home(settings, hash_embedder, tmp_path, monkeypatch):
    """The generated corpus ingested; the CLI's embedder replaced by the hash embedder."""
    from fakes import HashEmbedder

    ingest_corpus(settings, hash_embedder, tmp_path / "pdfs")
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    return settings.home


def client_for(settings, embedder) -> TestClient:
    from rag.qa import QA

    return TestClient(create_app(QA(settings, embedder), parse_tokens(TOKENS)), raise_server_exceptions=False)


@pytest.fixture
def client(home, settings, hash_embedder):
    return client_for(settings, hash_embedder)


def cli_json(capsys, *argv: str):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tokens_parse_with_colons_in_the_secret():
    ehr, kt = parse_tokens(TOKENS)
    assert (ehr.name, ehr.secret, ehr.role) == ("ehr", "s3cret", "reader")
    assert (kt.name, kt.secret, kt.role) == ("kt", "0ther:x", "admin")
    assert "s3cret" not in repr(ehr)


@pytest.mark.parametrize(("raw", "needle"), [
    ("", "GQA_API_TOKENS is not set"),
    ("ehr:s3cret", "entry 1 (name 'ehr') is not name:token:role"),
    ("ehr:s3cret:reader,kt:hunter2:root", "entry 2 (name 'kt') has role 'root'; choose one of reader, admin"),
    ("a:s3cret:reader,b:s3cret:admin", "the same token as another entry"),
    ("a:x:reader,a:y:admin", "the name is used twice"),
])
def test_bad_tokens_are_one_line_errors_at_start(home, capsys, monkeypatch, raw, needle):
    monkeypatch.setenv("GQA_API_TOKENS", raw)
    assert main(["api", "--port", "8765"]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "hunter2" not in err


def test_ask_retrieve_documents_are_the_cli_json(client, capsys):
    body = {"question": QUESTION, "type": ["guideline"], "k": 5}
    got = client.post("/v1/ask", json=body, headers=READER).json()
    want = cli_json(capsys, "ask", QUESTION, "--type", "guideline", "-k", "5")
    assert got.pop("timings_ms").keys() == want.pop("timings_ms").keys()
    assert got == want and got["citations"]
    got = client.post("/v1/retrieve", json={"question": QUESTION, "family": ["warfarin"]}, headers=READER).json()
    assert got == cli_json(capsys, "retrieve", QUESTION, "--family", "warfarin") and got["hits"]
    got = client.get("/v1/documents", headers=READER).json()
    assert got == cli_json(capsys, "docs") and len(got) == 3


def test_filters_reach_the_answer(client):
    r = client.post("/v1/ask", json={"question": QUESTION, "family": ["no-such-family"]}, headers=READER)
    assert r.status_code == 200 and r.json()["abstained"] is True and r.json()["hits"] == []


def test_health_needs_no_token_and_names_the_index(client, capsys):
    r = client.get("/v1/health")
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "ok" and data["documents"] == 3 and data["passages"] > 0
    assert data["index_version"] == cli_json(capsys, "ask", QUESTION)["index_version"]
    assert data["uptime_s"] >= 0


@pytest.mark.parametrize(("headers", "status", "needle"), [
    ({}, 401, "no bearer token"),
    ({"Authorization": "Basic czNjcmV0"}, 401, "no bearer token"),
    ({"Authorization": "Bearer s3cre"}, 401, "not one of GQA_API_TOKENS"),
    ({"Authorization": "Bearer 0ther"}, 401, "not one of GQA_API_TOKENS"),
])
def test_without_a_valid_token_401(client, headers, status, needle):
    for method, path in [("post", "/v1/ask"), ("post", "/v1/retrieve"), ("get", "/v1/documents"),
                         ("post", "/v1/chat/completions"), ("get", "/v1/models"), ("get", "/v1/jobs/x")]:
        r = getattr(client, method)(path, headers=headers, **({"json": {"question": QUESTION}} if method == "post"
                                                              else {}))
        assert r.status_code == status, path
        assert needle in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"


def test_a_reader_cannot_ingest_403(client, tmp_path):
    pdf = write_corpus(tmp_path / "up") / "metformin_2024.pdf"
    r = client.post("/v1/documents", files={"files": (pdf.name, pdf.read_bytes())}, headers=READER)
    assert r.status_code == 403 and "role reader" in r.json()["error"]
    assert client.get("/v1/jobs/abc", headers=READER).status_code == 403


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/v1/ask", {"question": "   "}, 400, "the question is empty"),
    ("/v1/ask", {"question": "x" * 2001}, 400, "keep it under 2000"),
    ("/v1/ask", {"question": QUESTION, "k": 0}, 400, "k: Input should be greater than or equal to 1"),
    ("/v1/ask", {"question": QUESTION, "generator": "gpt"}, 400, "unknown generator 'gpt'"),
    ("/v1/retrieve", {"question": QUESTION, "type": ["poem"]}, 400, "type.0: Input should be 'guideline'"),
    ("/v1/retrieve", {}, 400, "question: Field required"),
    ("/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "q"}]}, 404,
     "model 'gpt-4' is not served"),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "q"}]}, 400, "no message with role 'user'"),
    ("/v1/nothing", {}, 404, "no such endpoint /v1/nothing"),
])
def test_errors_are_one_line_json(client, path, body, status, needle):
    r = client.post(path, json=body, headers=READER)
    assert r.status_code == status
    assert needle in r.json()["error"] and "\n" not in r.json()["error"]
    assert "x" * 50 not in r.text  # a rejected question is not echoed back


def test_bad_json_is_400(client):
    r = client.post("/v1/ask", content=b"{not json", headers={**READER, "Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_nothing_published_is_503(settings, hash_embedder):
    client = client_for(settings, hash_embedder)
    for r in (client.post("/v1/ask", json={"question": QUESTION}, headers=READER),
              client.post("/v1/retrieve", json={"question": QUESTION}, headers=READER),
              client.get("/v1/health")):
        assert r.status_code == 503 and "nothing is published" in r.json()["error"]
    assert client.get("/v1/documents", headers=READER).json() == []


def test_upload_ingests_in_a_job_with_the_cli_summary(settings, hash_embedder, tmp_path, capsys):
    client = client_for(settings, hash_embedder)
    folder = write_corpus(tmp_path / "up")
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in sorted(folder.glob("*.pdf"))]
    files.append(("files", ("notes.txt", b"hello", "text/plain")))
    r = client.post("/v1/documents", files=files[:2], data={"family": ""}, headers=ADMIN)
    assert r.status_code == 202, r.text
    job = client.app.state.jobs.wait(r.json()["id"])
    assert job == client.get(r.json()["url"], headers=ADMIN).json()
    assert job["status"] == "done" and job["submitted_by"] == "kt" and job["error"] is None
    summary = job["summary"]
    assert [e["file"].rsplit("/", 1)[-1] for e in summary["added"]] == [f[1][0] for f in files[:2]]
    assert summary["exit_code"] == 0 and summary["generation"] and job["progress"]["chunks"]["done"] > 0
    assert set(summary) >= {"added", "new_version", "unchanged", "failed", "generation", "pages", "chunks"}
    assert len(cli_json(capsys, "docs")) == 2  # and the documents are served from the next question
    ask = client.post("/v1/ask", json={"question": QUESTION}, headers=READER).json()
    assert ask["index_version"] == summary["generation"] and ask["citations"]
    # a file that is not a PDF is refused by name before anything runs
    r = client.post("/v1/documents", files=[files[-1]], headers=ADMIN)
    assert r.status_code == 400 and "notes.txt" in r.json()["error"]
    assert client.get("/v1/jobs/0123", headers=ADMIN).status_code == 404


def test_a_second_ingest_while_one_runs_is_409(settings, tmp_path):
    from fakes import HashEmbedder

    from ingest.pipeline import ingest_lock

    release = threading.Event()

    class Slow(HashEmbedder):
        def embed(self, texts):
            release.wait(30)
            return super().embed(texts)

    client = client_for(settings, Slow())
    pdf = write_corpus(tmp_path / "up") / "warfarin_2024.pdf"
    upload = {"files": (pdf.name, pdf.read_bytes())}
    first = client.post("/v1/documents", files=upload, headers=ADMIN)
    assert first.status_code == 202
    r = client.post("/v1/documents", files=upload, headers=ADMIN)
    assert r.status_code == 409 and "an ingest job is running" in r.json()["error"]
    release.set()
    assert client.app.state.jobs.wait(first.json()["id"])["status"] == "done"
    with ingest_lock(settings.home):  # another ingest (the app, the CLI) holds the home
        r = client.post("/v1/documents", files=upload, headers=ADMIN)
    assert r.status_code == 409 and "another ingest is running" in r.json()["error"]


def test_chat_completion_is_the_answer_with_sources(client):
    messages = [{"role": "user", "content": "What is metformin used for?"},
                {"role": "assistant", "content": "Diabetes."},
                {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    r = client.post("/v1/chat/completions", json={"model": "guideline-qa", "messages": messages,
                                                  "temperature": 0.2}, headers=READER)
    assert r.status_code == 200, r.text
    data = r.json()
    ask = client.post("/v1/ask", json={"question": QUESTION}, headers=READER).json()  # earlier turns ignored
    content = data["choices"][0]["message"]["content"]
    assert data["object"] == "chat.completion" and data["choices"][0]["finish_reason"] == "stop"
    assert content.startswith(ask["answer"] + "\n\nSources:\n\n[1] ")
    assert data["citations"] == ask["citations"]
    for c in ask["citations"]:
        assert f'[{c["n"]}] {c["title"]} ({c["version"]}), p.{c["page"]}' in content and c["quote"] in content


def test_chat_stream_is_openai_chunks_ending_in_done(client):
    body = {"model": "guideline-qa", "messages": [{"role": "user", "content": QUESTION}]}
    whole = client.post("/v1/chat/completions", json=body, headers=READER).json()
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}, headers=READER) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and chunks[0]["choices"][0]["delta"]["role"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"] and len(chunks) > 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"] == whole["citations"]


def test_every_answer_writes_an_audit_row_under_the_token_name(client, settings):
    from rag import audit

    ask = client.post("/v1/ask", json={"question": QUESTION}, headers=READER).json()
    client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}, headers=READER)
    client.post("/v1/retrieve", json={"question": QUESTION}, headers=READER)  # passages only: not an answer
    rows = audit.rows(settings)
    assert [(r["channel"], r["who"]) for r in rows] == [("api", "ehr"), ("api", "ehr")]
    assert rows[0]["index_version"] == ask["index_version"]
    assert [c["chunk_id"] for c in rows[0]["citations"]] == [c["chunk_id"] for c in ask["citations"]]


def test_models_lists_guideline_qa(client):
    data = client.get("/v1/models", headers=READER).json()
    assert [m["id"] for m in data["data"]] == ["guideline-qa"]
    assert client.get("/v1/models/guideline-qa", headers=READER).json()["id"] == "guideline-qa"
    assert client.get("/v1/models/gpt-4", headers=READER).status_code == 404


def test_openapi_document_lists_the_routes(client):
    doc = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/retrieve", "/v1/documents", "/v1/health", "/v1/jobs/{job_id}",
            "/v1/chat/completions", "/v1/models"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_access_log_keeps_paths_only():
    import logging

    from cli.api_cmd import PathsOnly

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/v1/ask?q=warfarin+dose", "1.1", 200), None)
    assert PathsOnly().filter(record) and "warfarin" not in record.getMessage()
    assert record.getMessage() == '127.0.0.1:5 - "POST /v1/ask HTTP/1.1" 200'
