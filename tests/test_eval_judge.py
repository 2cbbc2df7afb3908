"""The offline judge on hand-made cases fed through ragas's own prompts: supported, wrong numbers, paraphrases."""

from __future__ import annotations

import json

import pytest
from ragas.metrics._faithfulness import (
    NLIStatementInput,
    NLIStatementOutput,
    NLIStatementPrompt,
    StatementGeneratorInput,
    StatementGeneratorOutput,
    StatementGeneratorPrompt,
)

from eval.judge import OfflineJudge, context_windows, prompt_input, prompt_kind, split_statements
from eval.ragas_run import RagasScorer
from rag.errors import ConfigError

CONTEXT = (
    "Assess severity with the CURB-65 score. A score of 3 to 5 indicates high severity: arrange urgent "
    "hospital admission and assess for critical care.\n"
    "Offer amoxicillin 500 mg orally three times daily for 5 days to adults with low-severity pneumonia. "
    "With an eGFR below 30 mL/min/1.73 m2, reduce the clarithromycin dose by half.\n"
    "Drug | Strength | Usual adult dose\nDoxycycline | 100 mg capsules | 200 mg on day 1, then 100 mg once daily"
)


def _verdicts(judge: OfflineJudge, statements: list[str]) -> list[tuple[int, str]]:
    """Ask the judge through the exact text ragas's NLI prompt produces."""
    text = NLIStatementPrompt().to_string(NLIStatementInput(context=CONTEXT, statements=statements))
    out = NLIStatementOutput.model_validate_json(judge.reply(text))
    assert [s.statement for s in out.statements] == statements
    return [(s.verdict, s.reason) for s in out.statements]


def test_recognises_ragas_prompts(hash_embedder):
    gen = StatementGeneratorPrompt().to_string(StatementGeneratorInput(question="Q?", answer='Say "5 mg" [1].'))
    nli = NLIStatementPrompt().to_string(NLIStatementInput(context="C", statements=["S"]))
    assert (prompt_kind(gen), prompt_kind(nli)) == ("statements", "verdicts")
    assert prompt_input(gen) == {"question": "Q?", "answer": 'Say "5 mg" [1].'}  # not the examples' input
    assert prompt_input(nli) == {"context": "C", "statements": ["S"]}
    with pytest.raises(ConfigError, match="use --judge openai"):
        prompt_kind("Given a question, answer and context, verify if the context was useful ...")
    judge = OfflineJudge(hash_embedder)
    reply = StatementGeneratorOutput.model_validate_json(judge.reply(gen))
    assert reply.statements == ['Say "5 mg".']
    assert judge.prompts == {"statements": 1, "verdicts": 0}


def test_statement_split():
    assert split_statements("Give 5 mg [1]; review in 2 days. Yes.") == ["Give 5 mg", "review in 2 days."]
    assert split_statements("Take 2.5 mg (e.g. at night) [1]. Then stop treatment [2].") == [
        "Take 2.5 mg (e.g. at night).", "Then stop treatment."]
    assert len(context_windows("A b c. D e f. G h i.")) == 5  # 3 single sentences and 2 pairs


def test_supported_statement(hash_embedder):
    judge = OfflineJudge(hash_embedder)
    [(verdict, reason)] = _verdicts(judge, ["Offer amoxicillin 500 mg three times daily for 5 days."])
    assert verdict == 1, reason
    [(verdict, reason)] = _verdicts(judge, ["Doxycycline 200 mg on day 1, then 100 mg once daily."])
    assert verdict == 1, reason  # a table row


def test_unsupported_numbers(hash_embedder):
    judge = OfflineJudge(hash_embedder)
    got = _verdicts(judge, [
        "Offer amoxicillin 250 mg orally three times daily for 5 days.",  # number absent
        "Offer amoxicillin 500 mg orally twice daily for 5 days.",  # spelled frequency absent
        "Doxycycline 500 mg once daily.",  # number present, but with another drug far away
    ])
    assert [v for v, _ in got] == [0, 0, 0]
    assert "250" in got[0][1] and "twice" in got[1][1] and "never occur together" in got[2][1]


def test_paraphrase_without_shared_words_is_not_supported(hash_embedder):
    """The documented limit: rewording defeats the offline judge where an LLM judge would agree."""
    judge = OfflineJudge(hash_embedder)
    [(verdict, reason)] = _verdicts(judge, ["When kidney function is poor, give less clarithromycin."])
    assert verdict == 0 and "content words" in reason


def test_faithfulness_through_ragas(hash_embedder):
    """ragas's own Faithfulness metric, judged offline: one of two statements supported -> 0.5."""
    scorer = RagasScorer(OfflineJudge(hash_embedder))
    try:
        answer = "Offer amoxicillin 500 mg three times daily for 5 days [1]. Give 1 g of vancomycin daily [2]."
        assert scorer.score_faithfulness("What to prescribe?", answer, CONTEXT.split("\n")) == 0.5
        assert scorer.score_faithfulness("What to prescribe?", "Yes.", CONTEXT.split("\n")) is None
    finally:
        scorer.close()


@pytest.mark.slow
def test_close_paraphrase_passes_on_similarity(real_embedder):
    """With the product's embedder, a near paraphrase (78% of the words) is supported on similarity."""
    judge = OfflineJudge(real_embedder)
    got = _verdicts(judge, [
        "A CURB-65 score of 3 to 5 means high severity and needs urgent admission to hospital.",
        "Urgent hospital admission is needed for low-severity pneumonia.",  # right words, wrong relation
        "High-severity patients need hospital care urgently and critical care assessment.",  # loose rewording
    ])
    assert [v for v, _ in got] == [1, 0, 0], json.dumps(got)
    assert "similarity" in got[0][1]


def test_openai_judge_from_environment(monkeypatch, hash_embedder):
    """Built from GQA_JUDGE_* with ragas's llm_factory; nothing is sent until a prompt is scored."""
    from ragas.llms.base import InstructorBaseRagasLLM

    from eval.judge import describe_judge, make_judge

    monkeypatch.delenv("GQA_JUDGE_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="GQA_JUDGE_BASE_URL"):
        make_judge("openai", hash_embedder)
    monkeypatch.setenv("GQA_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GQA_JUDGE_MODEL", "qwen2.5-7b-instruct")
    monkeypatch.setenv("GQA_JUDGE_API_KEY", "secret-key")
    judge = make_judge("openai", hash_embedder)
    assert isinstance(judge, InstructorBaseRagasLLM)
    info = describe_judge(judge)
    assert info == {"name": "openai", "model": "qwen2.5-7b-instruct", "base_url": "http://127.0.0.1:9/v1"}
    assert "secret-key" not in json.dumps(info)


def test_llamacpp_judge_explains_what_is_missing(monkeypatch, tmp_path, hash_embedder):
    from eval.judge import make_judge

    monkeypatch.delenv("GQA_JUDGE_GGUF", raising=False)
    with pytest.raises(ConfigError, match="GQA_JUDGE_GGUF"):
        make_judge("llamacpp", hash_embedder)
    gguf = tmp_path / "judge.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("GQA_JUDGE_GGUF", str(gguf))
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'guideline-qa\[llamacpp\]'"):
            make_judge("llamacpp", hash_embedder)
    with pytest.raises(ConfigError, match="unknown judge 'gpt'"):
        make_judge("gpt", hash_embedder)
