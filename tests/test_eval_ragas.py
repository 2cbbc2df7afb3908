"""ragas wiring: Faithfulness driven by a scripted judge (replies from a queue, prompts recorded); context metrics."""

from __future__ import annotations

import json

import pytest
from langchain_core.outputs import Generation, LLMResult
from ragas.llms.base import BaseRagasLLM
from ragas.run_config import RunConfig

from eval.ragas_run import RagasScorer, containment


class ScriptedJudge(BaseRagasLLM):
    """A ragas LLM that answers each prompt with the next queued reply and records the prompt."""

    def __init__(self, *replies: object) -> None:
        super().__init__(run_config=RunConfig(max_retries=1))
        self.queue = [r if isinstance(r, str) else json.dumps(r) for r in replies]
        self.prompts: list[str] = []

    def enqueue(self, *replies: object) -> None:
        self.queue += [r if isinstance(r, str) else json.dumps(r) for r in replies]

    def generate_text(self, prompt, n=1, temperature=0.01, stop=None, callbacks=None) -> LLMResult:
        self.prompts.append(prompt.to_string())
        if not self.queue:
            raise RuntimeError("scripted judge: no reply queued")
        return LLMResult(generations=[[Generation(text=self.queue.pop(0))]])

    async def agenerate_text(self, prompt, n=1, temperature=0.01, stop=None, callbacks=None) -> LLMResult:
        return self.generate_text(prompt, n, temperature, stop, callbacks)

    def is_finished(self, response: LLMResult) -> bool:
        return True


def _verdicts(*pairs: tuple[str, int]) -> dict:
    return {"statements": [{"statement": s, "reason": "scripted", "verdict": v} for s, v in pairs]}


def test_faithfulness_uses_the_judge_it_is_given():
    judge = ScriptedJudge(
        {"statements": ["Amoxicillin is first line.", "The dose is 500 mg.", "The course is 7 days."]},
        _verdicts(("Amoxicillin is first line.", 1), ("The dose is 500 mg.", 1), ("The course is 7 days.", 0)),
    )
    scorer = RagasScorer(judge)
    try:
        score = scorer.score_faithfulness(
            "What is first line?", "Amoxicillin 500 mg for 7 days.", ["Offer amoxicillin 500 mg.", "For 5 days."])
    finally:
        scorer.close()
    assert score == pytest.approx(2 / 3)
    assert judge.queue == [] and len(judge.prompts) == 2
    statements_prompt, nli_prompt = judge.prompts
    assert '"answer": "Amoxicillin 500 mg for 7 days."' in statements_prompt
    assert '"question": "What is first line?"' in statements_prompt
    # ragas joins the retrieved contexts with a newline and sends the generated statements back
    assert '"context": "Offer amoxicillin 500 mg.\\nFor 5 days."' in nli_prompt
    assert '"The course is 7 days."' in nli_prompt


def test_no_statements_is_none_and_skips_the_verdicts():
    judge = ScriptedJudge({"statements": []})
    scorer = RagasScorer(judge)
    try:
        assert scorer.score_faithfulness("q", "Yes.", ["c"]) is None
    finally:
        scorer.close()
    assert len(judge.prompts) == 1


def test_judge_failure_surfaces():
    scorer = RagasScorer(ScriptedJudge())
    try:
        with pytest.raises(RuntimeError, match="no reply queued"):
            scorer.score_faithfulness("q", "An answer.", ["c"])
    finally:
        scorer.close()


def test_context_precision_and_recall_against_gold_pages():
    page6 = "Dosing. Offer amoxicillin 500 mg orally three times daily for 5 days. Review at 48 hours."
    page7 = "Renal. With an eGFR below 30, halve the clarithromycin dose to 250 mg twice daily."
    retrieved = ["Tendon rupture is a rare adverse effect of fluoroquinolones.",  # rank 1: off the gold pages
                 "Offer amoxicillin 500 mg orally three times daily for 5 days.",  # rank 2: on page 6
                 "Something else entirely, with no words in common."]
    scorer = RagasScorer(ScriptedJudge())
    try:
        precision, recall = scorer.score_context(retrieved, [page6, page7])
        assert scorer.score_context([], [page6]) == (None, None)
    finally:
        scorer.close()
    assert precision == pytest.approx(0.5)  # average precision: the one relevant passage sits at rank 2
    assert recall == pytest.approx(0.5)  # page 6 covered, page 7 not


def test_containment():
    assert containment("take 5 mg daily", "Adults: take 5 mg daily with food.") == 1.0
    assert containment("take 5 mg daily", "take 50 mg weekly") == 0.0
    assert containment("", "anything") == 0.0


def test_verdicts_are_recorded_for_the_report():
    judge = ScriptedJudge({"statements": ["A is B.", "C is D."]}, _verdicts(("A is B.", 1), ("C is D.", 0)))
    scorer = RagasScorer(judge)
    try:
        score, verdicts = scorer.faithfulness_verdicts("q", "A is B. C is D.", ["A is B."])
    finally:
        scorer.close()
    assert score == 0.5
    assert verdicts == [{"statement": "A is B.", "reason": "scripted", "verdict": 1},
                        {"statement": "C is D.", "reason": "scripted", "verdict": 0}]
