"""RAGAS wiring: faithfulness with an explicit judge, reference-based context precision and recall.

Every metric is given what it needs explicitly (the judge LLM, the distance measure); nothing is left
to ragas defaults, which would build an OpenAI client. `ragas.evaluate()` is not used: scoring one
sample at a time lets the command line show one progress bar over questions and keep a failing
judge call to the item it belongs to.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from dataclasses import dataclass, field

from langchain_core.callbacks import BaseCallbackHandler
from ragas.dataset_schema import SingleTurnSample
from ragas.metrics._context_precision import NonLLMContextPrecisionWithReference
from ragas.metrics._context_recall import NonLLMContextRecall
from ragas.metrics._faithfulness import Faithfulness, NLIStatementOutput
from ragas.metrics.base import MetricType, SingleTurnMetric

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[a-z0-9]+")


def containment(passage: str, page: str, n: int = 3) -> float:
    """Share of the passage's word n-grams that occur in the page text (1.0: the passage is on the page).

    Example: ('take 5 mg daily', 'Adults: take 5 mg daily with food.') -> 1.0
    """
    p, g = _TOKEN.findall(passage.lower()), _TOKEN.findall(page.lower())
    n = min(n, len(p)) or 1
    grams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    if not grams:
        return 0.0
    page_grams = {tuple(g[i : i + n]) for i in range(len(g) - n + 1)}
    return len(grams & page_grams) / len(grams)


@dataclass
class PageContainment(SingleTurnMetric):
    """Distance measure for ragas's non-LLM context metrics: is the retrieved passage on the gold page?

    Written by hand because ragas's default (Levenshtein over whole strings, which also needs rapidfuzz)
    scores a 1,000-character passage against a 4,000-character page near 0.25 even when the passage
    is a verbatim part of it. ragas calls it with reference=retrieved passage, response=gold page.
    """

    name: str = "page_containment"
    _required_columns: dict[MetricType, set[str]] = field(
        default_factory=lambda: {MetricType.SINGLE_TURN: {"reference", "response"}}
    )

    def init(self, run_config) -> None:  # noqa: D102 - nothing to configure
        pass

    async def _single_turn_ascore(self, sample: SingleTurnSample, callbacks) -> float:
        return containment(sample.reference or "", sample.response or "")

    async def _ascore(self, row: dict, callbacks) -> float:
        return await self._single_turn_ascore(SingleTurnSample(**row), callbacks)


class VerdictRecorder(BaseCallbackHandler):
    """Keeps the judge's per-statement verdicts that ragas reports through its callbacks (any judge)."""

    def __init__(self) -> None:
        self.verdicts: list[dict] = []

    def on_chain_end(self, outputs, **kwargs) -> None:  # noqa: D102 - langchain callback
        found = outputs.get("output") if isinstance(outputs, dict) else None
        for out in found if isinstance(found, list) else []:
            if isinstance(out, NLIStatementOutput):
                self.verdicts = [s.model_dump() for s in out.statements]


class RagasScorer:
    """Scores one answered question at a time with ragas's own metrics; call `close()` when done."""

    def __init__(self, judge: object) -> None:
        self.faithfulness = Faithfulness(llm=judge)  # type: ignore[arg-type]
        self.context_precision = NonLLMContextPrecisionWithReference(distance_measure=PageContainment())
        self.context_recall = NonLLMContextRecall(_distance_measure=PageContainment())
        # One loop for the whole run: an async client bound to a loop must not see a second one.
        self._loop = asyncio.new_event_loop()

    def score_faithfulness(self, question: str, answer: str, contexts: list[str]) -> float | None:
        """RAGAS faithfulness of an answer (citation markers removed) to the retrieved passages.

        None when ragas finds no statement in the answer (its NaN).
        """
        return self.faithfulness_verdicts(question, answer, contexts)[0]

    def faithfulness_verdicts(self, question: str, answer: str, contexts: list[str]) -> tuple[float | None, list[dict]]:
        """Faithfulness and the judge's verdicts ({statement, reason, verdict} per statement)."""
        sample = SingleTurnSample(user_input=question, response=answer, retrieved_contexts=contexts)
        recorder = VerdictRecorder()
        value = self._run(self.faithfulness.single_turn_ascore(sample, callbacks=[recorder]))
        return _number(value), recorder.verdicts

    def score_context(self, contexts: list[str], references: list[str]) -> tuple[float | None, float | None]:
        """(precision, recall) of the retrieved passages against the gold pages' text."""
        if not contexts or not references:
            return None, None
        sample = SingleTurnSample(retrieved_contexts=contexts, reference_contexts=references)
        p = self._run(self.context_precision.single_turn_ascore(sample))
        r = self._run(self.context_recall.single_turn_ascore(sample))
        return _number(p), _number(r)

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        """Close the event loop."""
        self._loop.close()


def _number(value: object) -> float | None:
    if value is None:
        return None
    v = float(value)  # type: ignore[arg-type]
    return None if math.isnan(v) else v
