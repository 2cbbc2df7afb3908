"""`guideline-qa ask`: the JSON schema, the text layout, exit codes; fast tier (hash embedder, fake LLM server)."""

from __future__ import annotations

import json

import pytest
from answer_corpus import QUESTION, ingest_corpus
from fake_openai import FakeOpenAIServer

from cli.main import main
from rag.text import is_verbatim
from rag.verify import ABSTAIN_PHRASE

ANSWER_KEYS = {"question", "answer", "abstained", "citations", "hits", "generator", "timings_ms",
               "removed_sentences", "index_version"}
CITATION_KEYS = {"n", "doc", "title", "version", "page", "page_label", "section", "quote", "chunk_id"}


@pytest.fixture
def cli_home(settings, hash_embedder, tmp_path, monkeypatch):
    """The generated corpus ingested into GQA_HOME; the CLI's embedder replaced by the hash embedder."""
    from fakes import HashEmbedder

    ingest_corpus(settings, hash_embedder, tmp_path / "pdfs")
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    return settings.home


def ask(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["ask", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_json_schema(cli_home, capsys):
    code, out, err = ask(capsys, QUESTION, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert ANSWER_KEYS <= set(data)
    assert data["question"] == QUESTION and data["generator"] == "extractive"
    assert isinstance(data["answer"], str) and data["answer"] and data["abstained"] is False
    assert data["removed_sentences"] == []
    assert {"retrieve", "answer", "total"} <= set(data["timings_ms"])
    assert all(isinstance(v, int | float) for v in data["timings_ms"].values())
    assert data["citations"] and [c["n"] for c in data["citations"]] == list(range(1, len(data["citations"]) + 1))
    texts = {h["chunk_id"]: h["text"] for h in data["hits"]}
    for c in data["citations"]:
        assert CITATION_KEYS <= set(c)
        assert isinstance(c["page"], int) and isinstance(c["n"], int)
        assert f"[{c['n']}]" in data["answer"]
        assert is_verbatim(c["quote"], texts[c["chunk_id"]])
    assert 1 <= len(data["hits"]) <= 10
    assert {"rank", "score", "doc", "title", "page", "text", "chunk_id"} <= set(data["hits"][0])


def test_ask_text_lists_numbered_sources(cli_home, capsys):
    code, out, _ = ask(capsys, QUESTION, "--type", "guideline")
    assert code == 0
    answer, _, sources = out.partition("\nSources:\n")
    assert "[1]" in answer
    first = sources.splitlines()
    assert first[0].startswith("[1] ") and ", p." in first[0]
    assert first[1].startswith('    "') and first[1].rstrip().endswith('"')


def test_abstention_is_a_success(cli_home, capsys):
    code, out, _ = ask(capsys, QUESTION, "--family", "no-such-family", "--json")
    data = json.loads(out)
    assert code == 0 and data["abstained"] is True and data["answer"] == ABSTAIN_PHRASE
    assert data["citations"] == [] and data["hits"] == []
    code, out, _ = ask(capsys, QUESTION, "--family", "no-such-family")
    assert code == 0 and out.strip() == ABSTAIN_PHRASE


@pytest.mark.parametrize(("argv", "needle"), [
    (["--generator", "openai"], "GQA_OPENAI_BASE_URL"),
    (["--generator", "llamacpp"], "GQA_GGUF_PATH"),
    (["--generator", "gpt"], "unknown generator 'gpt'; choose one of extractive, openai, llamacpp"),
    (["-k", "0"], "must be at least 1"),
    (["--type", "poem"], "invalid choice"),
])
def test_errors_exit_1_with_one_line(cli_home, capsys, argv, needle):
    code, out, err = ask(capsys, QUESTION, *argv)
    assert code == 1 and out == ""
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_no_index_is_an_error(capsys, monkeypatch):
    from fakes import HashEmbedder

    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    code, _, err = ask(capsys, QUESTION)
    assert code == 1 and err.startswith("guideline-qa: error: ")


def test_ask_with_openai_generator_reports_removed_sentences(cli_home, capsys, monkeypatch):
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("GQA_OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("GQA_OPENAI_MODEL", "fake-model")
        server.enqueue("The dose is 500 mg. The usual adult dose of warfarin is 5 mg daily [1][2][3].")
        code, out, err = ask(capsys, QUESTION, "--generator", "openai", "--json", "--type", "guideline")
    assert code == 0, err
    data = json.loads(out)
    assert data["generator"] == "openai"
    assert data["removed_sentences"] == [{"sentence": "The dose is 500 mg.", "reason": "no citation"}]
    # --type guideline keeps the interactions document (also a guideline); whichever passage states
    # '5 mg' is cited, and every marker in the answer has a citation under it.
    assert data["answer"].startswith("The usual adult dose of warfarin is 5 mg daily [1]")
    assert all(f"[{c['n']}]" in data["answer"] for c in data["citations"])
