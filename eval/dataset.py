"""Evaluation questions: the JSONL format of ../shared/eval/README.md, loaded and checked line by line."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError
from rag.types import sha256_hex

log = logging.getLogger(__name__)

REQUIRED = ("id", "question", "answerable")


@dataclass(frozen=True)
class Source:
    """A gold source: a document file name and its 1-based PDF pages that hold the answer."""

    doc: str
    pages: tuple[int, ...]


@dataclass(frozen=True)
class Item:
    """One evaluation question with its gold answer, decisive terms and gold pages."""

    id: str
    question: str
    answerable: bool
    answer: str = ""
    must_include: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    category: str = ""
    difficulty: str = ""
    fold: int | None = None  # cross-validation fold (dev set): constants are chosen on the other folds

    def gold_pages(self) -> set[tuple[str, int]]:
        """(file name, page) pairs of every gold page.

        Example: sources [{"doc": "a.pdf", "pages": [6, 7]}] -> {("a.pdf", 6), ("a.pdf", 7)}
        """
        return {(s.doc, p) for s in self.sources for p in s.pages}


def parse_item(obj: object, where: str) -> Item:
    """One dataset line (already JSON-decoded) as an Item; errors name the line and the fix."""
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}; every line needs {', '.join(REQUIRED)}")
    if not isinstance(obj["answerable"], bool):
        raise ConfigError(f"{where}: 'answerable' is {obj['answerable']!r}; use true or false")
    if not str(obj["question"]).strip():
        raise ConfigError(f"{where}: 'question' is empty")
    sources = []
    for s in obj.get("sources") or []:
        if not isinstance(s, dict) or "doc" not in s or not isinstance(s.get("pages", []), list):
            raise ConfigError(f'{where}: each source must look like {{"doc": "file.pdf", "pages": [6]}}; got {s!r}')
        try:
            pages = tuple(int(p) for p in s.get("pages", []))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: source pages {s.get('pages')!r} must be 1-based integers") from None
        sources.append(Source(str(s["doc"]), pages))
    terms = obj.get("must_include") or []
    if not isinstance(terms, list):
        raise ConfigError(f"{where}: 'must_include' must be a list of strings; got {terms!r}")
    return Item(
        id=str(obj["id"]), question=str(obj["question"]), answerable=obj["answerable"],
        answer=str(obj.get("answer") or ""), must_include=tuple(str(t) for t in terms),
        sources=tuple(sources), category=str(obj.get("category") or ""),
        difficulty=str(obj.get("difficulty") or ""), fold=_fold(obj.get("fold"), where),
    )


def _fold(value: object, where: str) -> int | None:
    """The item's fold number, or None when it has none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: 'fold' is {value!r}; use a non-negative integer or leave it out")
    return value


def load_dataset(path: str | Path, limit: int | None = None) -> list[Item]:
    """The items of a JSONL file (blank lines skipped), the first `limit` of them when given."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"dataset {str(p)!r} not found; pass a JSONL file such as data/demo_eval.jsonl")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: must be at least 1")
    items: list[Item] = []
    seen: set[str] = set()
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p.name} line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg}); one JSON object a line") from None
        item = parse_item(obj, where)
        if item.id in seen:
            raise ConfigError(f"{where}: duplicate id {item.id!r}; ids must be unique")
        seen.add(item.id)
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise ConfigError(f"dataset {str(p)!r} has no questions")
    log.info("loaded %d questions from %s", len(items), p)
    return items


def dataset_key(items: list[Item]) -> str:
    """A hash of exactly the questions evaluated: runs are compared only when it matches.

    A `--limit 3` run therefore has its own trend and never counts as a drop of the full set.
    """
    return sha256_hex(json.dumps([_as_json(i) for i in items], sort_keys=True), 16)


def _as_json(item: Item) -> dict:
    return {"id": item.id, "question": item.question, "answerable": item.answerable, "answer": item.answer,
            "must_include": list(item.must_include),
            "sources": [{"doc": s.doc, "pages": list(s.pages)} for s in item.sources]}
