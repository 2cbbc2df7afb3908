"""Judges for RAGAS: the deterministic offline judge (the default), an OpenAI-compatible endpoint, a local GGUF.

The offline judge is a ragas LLM that needs no language model. It recognises the two prompts of
ragas's Faithfulness metric by their output schema, reads the prompt's input JSON and replies in the
schema ragas expects:

- statement generation: the answer (citation markers removed) split into sentences, inline list
  items and ';'-clauses; fragments with no number and under two content words are dropped;
- NLI verdicts: a statement quoted verbatim from the context is supported (verdict 1); otherwise it
  is supported when one window of up to two consecutive context units (split like the answer; table
  rows are units) holds every number of the statement (with its unit: '500 mg' is
  not '500 mcg'; spelled counts too: 'twice' is not 'three times') and either most of its content
  words (WORD_SHARE) with a minimum embedding similarity (SIMILARITY_MIN), or a good part of them
  (WORD_SHARE_LOW) with a high similarity (SIMILARITY), measured with the product's own embedder.

Known limits, stated plainly: it is STRICTER about wording and WEAKER about paraphrase than an LLM
judge. A faithful answer that rewords the source ("kidney function" for "eGFR") or infers a
conclusion ("so no dose change is needed") is scored unfaithful. It does not understand sentences:
a statement that drops a "not" of its source, or relates words of two neighbouring sentences
wrongly, can be scored faithful when its words, numbers and similarity all fit. It suits extractive
answers (verbatim quotes) and trends over time; use `--judge openai` for an absolute faithfulness
figure of generated answers.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.outputs import Generation, LLMResult
from pydantic import BaseModel
from ragas.llms.base import BaseRagasLLM
from ragas.metrics._faithfulness import (
    NLIStatementOutput,
    StatementFaithfulnessAnswer,
    StatementGeneratorOutput,
)
from ragas.run_config import RunConfig

from eval.metrics import strip_markers
from rag.embedder import Embedder
from rag.errors import ConfigError
from rag.text import content_words, is_verbatim, numbers_with_units, split_sentences

log = logging.getLogger(__name__)

JUDGES = ("offline", "openai", "llamacpp")
# Calibrated on hand-made cases (tests/test_eval_judge.py) and the demo set: below 0.8 of the
# content words, sentences that merely share the topic start to pass.
WORD_SHARE = 0.8
# With at least half of the words present, a near-paraphrase passes on embedding similarity.
WORD_SHARE_LOW = 0.5
# all-MiniLM-L6-v2 cosine between a statement and its source window; unrelated clinical sentences
# from the same document sit around 0.3-0.6.
SIMILARITY = 0.75
WINDOW = 2  # consecutive context sentences a statement may draw on (3 let wrong pairings through)
EMBED_CANDIDATES = 5  # windows embedded per statement (the best by word share), to bound the cost
# Even with every word present, a statement this unlike its best window is a wrong relation of the
# right words ("urgent admission for low-severity pneumonia"); verbatim statements score about 1.0.
SIMILARITY_MIN = 0.6
_INPUT = "Now perform the same with the following input"
_BARE_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
# Dosing frequencies and counts written as words are checked like numbers ("twice" is not "three times").
_BULLET = re.compile(r"\s+[-\u2022]\s+(?=[A-Z(])")  # inline list items: "... above. - Clarithromycin: ..."
_NUMBER_WORDS = frozenset(
    "once twice thrice one two three four five six seven eight nine ten eleven twelve".split())


def _schema(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())  # exactly how PydanticPrompt writes it into the prompt


def prompt_kind(text: str) -> str:
    """'statements' or 'verdicts': which Faithfulness prompt this is, recognised by its output schema."""
    if _schema(StatementGeneratorOutput) in text:
        return "statements"
    if _schema(NLIStatementOutput) in text:
        return "verdicts"
    raise ConfigError(
        "the offline judge speaks only ragas's Faithfulness prompts (statement generation, NLI verdicts); "
        "this metric needs an LLM judge: use --judge openai or --judge llamacpp"
    )


def prompt_input(text: str) -> dict:
    """The input JSON object that a ragas PydanticPrompt puts after its examples."""
    at = text.rfind(_INPUT)
    start = text.find("{", at if at >= 0 else 0)
    if at < 0 or start < 0:
        raise ValueError("no input JSON found in the ragas prompt")
    obj, _ = json.JSONDecoder().raw_decode(text, start)
    return obj


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text) if not _BARE_NUMBER.fullmatch(w)}


def _numbers(text: str) -> set[str]:
    bare = {n.replace(",", "") for n in _BARE_NUMBER.findall(text)}
    spelled = {w for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return set(numbers_with_units(text)) | bare | spelled


@dataclass(frozen=True)
class _Window:
    text: str
    words: frozenset[str]
    numbers: frozenset[str]


def units(text: str) -> list[str]:
    """Lines, then sentences, then inline list items, then ';'-clauses of a text.

    Example: 'Doses: - Amoxicillin 500 mg; review. - Doxycycline.' -> ['Doses:', 'Amoxicillin 500 mg', 'review.',
    'Doxycycline.']
    """
    return [c.strip() for line in text.splitlines() for s in split_sentences(line) for u in _BULLET.split(s)
            for c in u.split(";") if c.strip()]


def split_statements(answer: str) -> list[str]:
    """The units of an answer without citation markers, each kept when it has a number or 2+ content words.

    Example: 'Give 5 mg [1]; review in 2 days. Yes.' -> ['Give 5 mg', 'review in 2 days.']
    """
    return [u for u in units(strip_markers(answer)) if len(_words(u)) >= 2 or _numbers(u)]


def context_windows(context: str, size: int = WINDOW) -> list[_Window]:
    """Every run of 1..size consecutive units (sentences, table rows, list items) of the context."""
    units_ = units(context)
    out = []
    for i in range(len(units_)):
        for j in range(i + 1, min(i + size, len(units_)) + 1):
            text = " ".join(units_[i:j])
            out.append(_Window(text, frozenset(_words(text)), frozenset(_numbers(text))))
    return out


class OfflineJudge(BaseRagasLLM):
    """A deterministic ragas LLM: words, numbers with units and embedding similarity; no language model."""

    def __init__(self, embedder: Embedder) -> None:
        # One attempt: a deterministic judge gives the same reply again (ragas retries 10 times by default).
        super().__init__(run_config=RunConfig(max_retries=1))
        self.embedder = embedder
        self.prompts: dict[str, int] = {"statements": 0, "verdicts": 0}
        self._vectors: dict[str, np.ndarray] = {}

    def describe(self) -> dict:
        """What goes into summary.json about this judge."""
        return {"name": "offline", "embedder": self.embedder.id, "word_share": WORD_SHARE,
                "word_share_low": WORD_SHARE_LOW, "similarity": SIMILARITY, "window": WINDOW}

    def generate_text(self, prompt, n: int = 1, temperature: float = 0.01, stop=None,
                      callbacks=None) -> LLMResult:
        """Reply to a ragas prompt with JSON in its output schema (n identical generations)."""
        reply = self.reply(prompt.to_string())
        return LLMResult(generations=[[Generation(text=reply) for _ in range(max(1, n))]])

    async def agenerate_text(self, prompt, n: int = 1, temperature: float | None = 0.01, stop=None,
                             callbacks=None) -> LLMResult:
        """The same reply; the work is CPU-bound and short, so nothing is awaited."""
        return self.generate_text(prompt, n, temperature or 0.01, stop, callbacks)

    def is_finished(self, response: LLMResult) -> bool:
        """Always finished: the reply is never truncated."""
        return True

    def reply(self, text: str) -> str:
        """The JSON reply to one prompt text."""
        kind = prompt_kind(text)
        self.prompts[kind] += 1
        data = prompt_input(text)
        if kind == "statements":
            return StatementGeneratorOutput(statements=split_statements(data["answer"])).model_dump_json()
        windows = context_windows(data["context"])
        answers = [self.verdict(s, windows, data["context"]) for s in data["statements"]]
        return NLIStatementOutput(statements=answers).model_dump_json()

    def verdict(self, statement: str, windows: list[_Window], context: str = "") -> StatementFaithfulnessAnswer:
        """Verdict 1 for a verbatim quote, or when one window holds the statement's numbers and enough words."""
        if is_verbatim(statement.rstrip(".;: "), context):
            return _answer(statement, 1, "verbatim in the context")
        words, numbers = _words(statement), _numbers(statement)
        everywhere = frozenset().union(*(w.numbers for w in windows)) if windows else frozenset()
        missing = sorted(numbers - everywhere)
        if missing:
            return _answer(statement, 0, f"number(s) {', '.join(missing)} not in the context")
        fits = [w for w in windows if numbers <= w.numbers]
        if not fits:
            return _answer(statement, 0, "its numbers never occur together in the context")
        # Best word share first; among equals the shortest window (the sentence itself, not its neighbours).
        ranked = sorted(fits, key=lambda w: (-_share(words, w.words), len(w.text)))
        best = _share(words, ranked[0].words)
        if best < WORD_SHARE_LOW:
            return _answer(statement, 0, f"only {best:.0%} of its content words in any passage")
        near = [w for w in ranked[:EMBED_CANDIDATES] if _share(words, w.words) >= WORD_SHARE_LOW]
        sim = max(self._similarities(statement, [w.text for w in near]))
        if best >= WORD_SHARE and sim >= SIMILARITY_MIN:
            return _answer(statement, 1, f"{best:.0%} of its content words and all its numbers in one passage "
                                         f"(similarity {sim:.2f})")
        if sim >= SIMILARITY:
            return _answer(statement, 1, f"{best:.0%} of its content words, similarity {sim:.2f}")
        return _answer(statement, 0, f"{best:.0%} of its content words, similarity only {sim:.2f}")

    def _similarities(self, statement: str, texts: list[str]) -> list[float]:
        todo = [t for t in [statement, *texts] if t not in self._vectors]
        if todo:
            for t, v in zip(todo, self.embedder.embed(todo), strict=True):
                self._vectors[t] = v
        q = self._vectors[statement]
        return [float(np.dot(q, self._vectors[t])) for t in texts]


def _share(words: set[str], window: frozenset[str]) -> float:
    return len(words & window) / len(words) if words else 1.0


def _answer(statement: str, verdict: int, reason: str) -> StatementFaithfulnessAnswer:
    return StatementFaithfulnessAnswer(statement=statement, reason=reason, verdict=verdict)


def make_judge(name: str, embedder: Embedder):
    """The ragas LLM for `--judge NAME`, configured from the environment (secrets only from there)."""
    if name == "offline":
        return OfflineJudge(embedder)
    if name == "openai":
        return _openai_judge()
    if name == "llamacpp":
        return LlamaCppJudge.from_env()
    raise ConfigError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")


def describe_judge(judge: object) -> dict:
    """The judge's name and settings (never its key) for summary.json and the database."""
    if hasattr(judge, "describe"):
        return judge.describe()
    return {"name": "openai", "model": getattr(judge, "model", ""),
            "base_url": os.environ.get("GQA_JUDGE_BASE_URL", "")}


def _openai_judge():
    base_url = os.environ.get("GQA_JUDGE_BASE_URL", "")
    model = os.environ.get("GQA_JUDGE_MODEL", "")
    if not base_url or not model:
        raise ConfigError(
            "--judge openai needs GQA_JUDGE_BASE_URL (e.g. http://localhost:8000/v1 for vLLM, "
            "http://localhost:11434/v1 for Ollama, https://api.openai.com/v1) and GQA_JUDGE_MODEL; "
            "the key comes from GQA_JUDGE_API_KEY or OPENAI_API_KEY"
        )
    from openai import OpenAI
    from ragas.llms import llm_factory

    key = os.environ.get("GQA_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
    client = OpenAI(base_url=base_url, api_key=key, timeout=float(os.environ.get("GQA_JUDGE_TIMEOUT", "120")),
                    max_retries=2)
    max_tokens = int(os.environ.get("GQA_JUDGE_MAX_TOKENS", "2048"))  # NLI replies list every statement
    log.info("judge: %s at %s", model, base_url)
    return llm_factory(model, client=client, max_tokens=max_tokens)


class LlamaCppJudge(BaseRagasLLM):
    """A local GGUF model through llama-cpp-python (an optional extra), asked for JSON replies."""

    def __init__(self, llama: object, path: str) -> None:
        super().__init__(run_config=RunConfig(max_retries=2, max_wait=5))  # local: no rate limits to wait out
        self.llama = llama
        self.path = path

    @classmethod
    def from_env(cls) -> LlamaCppJudge:
        """Load GQA_JUDGE_GGUF with llama-cpp-python, or explain what is missing."""
        path = os.environ.get("GQA_JUDGE_GGUF", "")
        if not path or not Path(path).is_file():
            raise ConfigError(f"--judge llamacpp needs GQA_JUDGE_GGUF set to a local .gguf file; got {path!r}")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "--judge llamacpp needs llama-cpp-python, which is not installed: "
                "pip install 'guideline-qa[llamacpp]' (compiles llama.cpp), or use --judge offline"
            ) from None
        n_ctx = int(os.environ.get("GQA_JUDGE_N_CTX", "8192"))
        return cls(Llama(model_path=path, n_ctx=n_ctx, verbose=False), path)

    def describe(self) -> dict:
        """Name and model file."""
        return {"name": "llamacpp", "model": Path(self.path).name}

    def generate_text(self, prompt, n: int = 1, temperature: float = 0.01, stop=None,
                      callbacks=None) -> LLMResult:
        """n chat completions constrained to JSON."""
        gens = []
        for _ in range(max(1, n)):
            out = self.llama.create_chat_completion(  # type: ignore[attr-defined]
                messages=[{"role": "user", "content": prompt.to_string()}], temperature=temperature,
                stop=stop, response_format={"type": "json_object"}, max_tokens=2048,
            )
            choice = out["choices"][0]
            gens.append(Generation(text=choice["message"]["content"] or "",
                                   generation_info={"finish_reason": choice.get("finish_reason")}))
        return LLMResult(generations=[gens])

    async def agenerate_text(self, prompt, n: int = 1, temperature: float | None = 0.01, stop=None,
                             callbacks=None) -> LLMResult:
        """Synchronous underneath: llama.cpp runs one completion at a time anyway."""
        return self.generate_text(prompt, n, temperature or 0.01, stop, callbacks)

    def is_finished(self, response: LLMResult) -> bool:
        """False when a completion hit its token limit (ragas then raises LLMDidNotFinishException)."""
        return all((g.generation_info or {}).get("finish_reason") != "length" for g in response.generations[0])
