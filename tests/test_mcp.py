"""`guideline-qa mcp` through the `mcp` SDK's own client: in-process over its memory transport with the hash
embedder (fast), and over stdio against the command as a subprocess with the real model (slow)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from answer_corpus import QUESTION, ingest_corpus

pytest.importorskip("mcp")
from mcp import Client, ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp_types import Implementation  # noqa: E402

from cli.main import main  # noqa: E402
from cli.mcp_cmd import build  # noqa: E402
from rag import audit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(settings, hash_embedder, tmp_path, monkeypatch):
    """The generated corpus ingested; the CLI's embedder replaced by the hash embedder (for the CLI's JSON)."""
    from fakes import HashEmbedder

    ingest_corpus(settings, hash_embedder, tmp_path / "pdfs")
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    return settings.home


def server_for(settings, embedder):
    from rag.qa import QA

    return build(QA(settings, embedder))


def session(server, *calls):
    """Run `calls` (each: async fn(client) -> value) in one in-process client session; their results."""
    async def go():
        async with Client(server, client_info=Implementation(name="test-host", version="1")) as client:
            return [await call(client) for call in calls]

    return anyio.run(go)


def call(name: str, **arguments):
    return lambda client: client.call_tool(name, arguments)


def cli_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_tools_shows_both_with_their_schemas(home, settings, hash_embedder):
    (listed,) = session(server_for(settings, hash_embedder), lambda c: c.list_tools())
    tools = {t.name: t for t in listed.tools}
    assert sorted(tools) == ["answer_with_citations", "search_guidelines"]
    search = tools["search_guidelines"].input_schema
    assert search["required"] == ["query"] and search["properties"]["query"]["type"] == "string"
    k = search["properties"]["k"]
    assert (k["type"], k["default"], k["minimum"], k["maximum"]) == ("integer", 5, 1, 50)
    answer = tools["answer_with_citations"].input_schema
    assert answer["required"] == ["question"] and list(answer["properties"]) == ["question"]  # no ctx
    assert tools["answer_with_citations"].annotations.read_only_hint is True


def test_each_tool_returns_the_cli_json(home, settings, hash_embedder, capsys):
    found, answered = session(server_for(settings, hash_embedder), call("search_guidelines", query=QUESTION, k=3),
                              call("answer_with_citations", question=QUESTION))
    assert not found.is_error and not answered.is_error
    want = cli_json(capsys, "retrieve", QUESTION, "-k", "3")
    assert found.structured_content == want and len(want["hits"]) == 3
    assert json.loads(found.content[0].text) == want  # the text a host without structured content reads
    got, want = answered.structured_content, cli_json(capsys, "ask", QUESTION)
    assert got.pop("timings_ms").keys() == want.pop("timings_ms").keys()
    assert got == want and got["citations"] and not got["abstained"]


def test_an_answer_writes_its_audit_row_as_mcp(home, settings, hash_embedder):
    (answered,) = session(server_for(settings, hash_embedder), call("answer_with_citations", question=QUESTION))
    (row,) = audit.rows(settings)
    assert row["channel"] == "mcp" and row["who"] == f"{audit.os_user()} via test-host"
    assert [c["n"] for c in row["citations"]] == [c["n"] for c in answered.structured_content["citations"]]
    assert row["index_version"] == answered.structured_content["index_version"]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"question": "  "}, "the question is empty; type a question"),
    ({"question": "why? " * 500}, "the question is 2499 characters long; keep it under 2000"),
])
def test_a_bad_question_is_a_tool_error_with_the_one_line_message(home, settings, hash_embedder, arguments,
                                                                   message, caplog):
    caplog.set_level("INFO")
    answered, searched = session(server_for(settings, hash_embedder), call("answer_with_citations", **arguments),
                                 call("search_guidelines", query=arguments["question"]))
    for name, result in (("answer_with_citations", answered), ("search_guidelines", searched)):
        # the SDK names the tool before the message
        assert result.is_error and [c.text for c in result.content] == [f"Error executing tool {name}: {message}"]
    assert audit.rows(settings) == []  # nothing was answered
    assert "why?" not in caplog.text


def test_k_out_of_range_is_a_tool_error_naming_k(home, settings, hash_embedder):
    (result,) = session(server_for(settings, hash_embedder), call("search_guidelines", query=QUESTION, k=0))
    assert result.is_error and "k" in result.content[0].text


def test_nothing_published_is_an_error_naming_ingest(settings, hash_embedder):
    results = session(server_for(settings, hash_embedder), call("search_guidelines", query=QUESTION),
                      call("answer_with_citations", question=QUESTION))
    for r in results:
        assert r.is_error and "nothing is published" in r.content[0].text
        assert "`guideline-qa ingest PATH`" in r.content[0].text


def test_a_server_started_before_the_first_publish_answers_after_it(settings, hash_embedder, tmp_path):
    async def publish(client):
        ingest_corpus(settings, hash_embedder, tmp_path / "pdfs")

    before, _, after = session(server_for(settings, hash_embedder), call("answer_with_citations", question=QUESTION),
                               publish, call("answer_with_citations", question=QUESTION))
    assert before.is_error and not after.is_error and after.structured_content["citations"]


def test_without_the_sdk_the_command_says_how_to_install_it(home, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)  # import fails as if not installed
    assert main(["mcp"]) == 1
    err = capsys.readouterr().err
    assert "pip install -e '.[mcp]'" in err and err.count("\n") == 1


async def _over_stdio(home: Path, errlog, *calls):
    env = {"GQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env |= {k: os.environ[k] for k in ("GQA_MODEL_CACHE", "GQA_ONNX_CACHE") if k in os.environ}
    script = Path(sys.executable).with_name("guideline-qa")  # the console script, as a host runs it
    command, args = (str(script), []) if script.exists() else (sys.executable, ["-m", "cli.main"])
    params = StdioServerParameters(command=command, args=[*args, "-v", "mcp"], env=env, cwd=str(ROOT))
    unreadable: list[Exception] = []  # a line of stdout that is no protocol message arrives here

    async def on_message(message) -> None:
        if isinstance(message, Exception):
            unreadable.append(message)

    async with stdio_client(params, errlog=errlog) as (read, write), \
            ClientSession(read, write, message_handler=on_message) as s:
        await s.initialize()
        results = [await c(s) for c in calls]
    assert unreadable == []
    return results


@pytest.mark.slow
def test_over_stdio_with_the_real_model_on_the_demo_corpus(demo_home, tmp_path):
    """The command as an agent host starts it: only protocol on stdout (the client parses every line),
    the tools' JSON, a tool error for a bad question, and no question text on stderr even at -v."""
    question = "What should I prescribe first-line for low-severity community-acquired pneumonia, and at what dose?"
    with open(tmp_path / "stderr.txt", "w") as errlog:
        listed, found, answered, bad = anyio.run(
            _over_stdio, demo_home, errlog, lambda s: s.list_tools(),
            call("search_guidelines", query=question, k=2), call("answer_with_citations", question=question),
            call("answer_with_citations", question=""))
    assert sorted(t.name for t in listed.tools) == ["answer_with_citations", "search_guidelines"]
    assert not found.is_error and len(found.structured_content["hits"]) == 2
    assert found.structured_content["question"] == question
    got = answered.structured_content
    assert not answered.is_error and got["question"] == question and not got["abstained"]
    assert "amoxicillin" in got["answer"].lower() and {c["doc"] for c in got["citations"]} == {"demo_guideline.pdf"}
    assert bad.is_error and bad.content[0].text.endswith(": the question is empty; type a question")
    logged = (tmp_path / "stderr.txt").read_text()
    assert "INFO" in logged and question not in logged and "pneumonia" not in logged
