"""Known-answer tests of the evaluation's own metrics, dataset loading and thresholds (pure functions)."""

from __future__ import annotations

import json

import pytest

from eval.config import DEFAULT_FLOORS, Thresholds, check
from eval.dataset import Item, Source, dataset_key, load_dataset, parse_item
from eval.metrics import (
    abstention_scores,
    citation_precision,
    citation_validity,
    contains_term,
    fold,
    gold_at,
    gold_rank,
    mean,
    must_include_coverage,
    one_per_line,
    percentile,
    strip_markers,
)
from rag.errors import ConfigError
from rag.types import Chunk, Citation, Document, Hit


def _hit(file_name: str, page: int, rank: int, page_end: int | None = None, doc_id: str = "d1") -> Hit:
    doc = Document(doc_id=doc_id, sha256="x" * 64, file_name=file_name, title="T", family="f", version="1",
                   doc_type="guideline")
    chunk = Chunk(f"c{rank}", doc_id, rank, page, page_end or page, str(page), "", "text")
    return Hit(chunk, doc, 1.0 / rank, rank)


ITEM = Item("x-1", "q?", True, "a", ("5 mg",), (Source("a.pdf", (6, 7)),))


def test_fold_and_terms():
    assert fold("Once-\ndaily 1,000 MG") == "oncedaily1000mg"
    assert contains_term("usually 2 to 5 mg\nonce daily", "5 mg")
    assert contains_term("three-times daily", "three times daily")
    assert contains_term("up to 1 000 mg", "1,000 mg")
    assert not contains_term("25 mg", "5 mg")
    assert not contains_term("1.5 mg", "5 mg")
    assert not contains_term("5.5 mg", "5")
    assert contains_term("St. John's wort", "st. john")


def test_number_boundary_is_read_before_folding():
    """Folding never joins two numbers into one, nor hides one number inside another."""
    assert contains_term("15 to < 25 40 + 240", "40")  # 25 and 40 are two numbers; folding made it 2540+240
    assert not contains_term("15 to < 25 40 + 240", "2540")
    assert not contains_term("25 mg", "5 mg")
    assert not contains_term("2,5 mg", "5 mg")  # a decimal comma
    assert not contains_term("2,5 mg", "2 mg") and not contains_term("a dose of 2,5", "2")
    assert contains_term("Tablets 2,5 mg and 5 mg", "5 mg")  # a later occurrence counts
    assert not contains_term("1,240 mg", "240 mg")  # after a thousands separator the number goes on
    assert contains_term("1000 mg", "1,000 mg") and contains_term("1 000 mg", "1,000 mg")
    assert contains_term("1\u202f000 mg", "1,000 mg") and contains_term("1,000 mg", "1000 mg")
    assert contains_term("once-\ndaily", "once daily") and contains_term("ONCE\u2013DAILY", "once daily")
    assert not contains_term("every 2-4 hours", "24 hours")  # a range is two numbers
    assert contains_term("every 2\u2013 4 hours", "2-4 hours") and contains_term(">2 to 4 weeks", "4 weeks")
    assert fold("Once-\ndaily 1,000 MG, 2 - 4 weeks") == "oncedaily1000mg,2-4weeks"


def test_must_include_coverage():
    text = "Amoxicillin 500 mg three times daily [1]."
    assert must_include_coverage(text, ["amoxicillin", "500 mg", "5 days"]) == pytest.approx(2 / 3)
    assert must_include_coverage(text, []) is None
    assert strip_markers("Give 5 mg [1]. Stop [2, 3].") == "Give 5 mg. Stop."
    assert one_per_line("Drug | 5 mg [1] Give it daily [2]. Stop [3, 4];") == "Drug | 5 mg\nGive it daily.\nStop;"


def test_gold_ranks():
    hits = [_hit("b.pdf", 6, 1), _hit("a.pdf", 5, 2), _hit("a.pdf", 5, 3, page_end=6), _hit("a.pdf", 7, 4)]
    rank = gold_rank(hits, ITEM)
    assert rank == 3  # a passage running from page 5 onto gold page 6 counts
    assert (gold_at(rank, 1, ITEM), gold_at(rank, 5, ITEM), gold_at(None, 10, ITEM)) == (0.0, 1.0, 0.0)
    unanswerable = Item("x-2", "q?", False)
    assert gold_at(None, 5, unanswerable) is None


def test_citation_precision_and_validity():
    cites = [Citation(1, _hit("a.pdf", 6, 1), "take 5 mg"), Citation(2, _hit("a.pdf", 9, 2), "stop it"),
             Citation(3, _hit("b.pdf", 6, 3, doc_id="d2"), "nothing like it")]
    assert citation_precision(cites, ITEM) == pytest.approx(1 / 3)
    assert citation_precision([], ITEM) is None
    pages = {("d1", 6): "Adults: take 5\nmg daily.", ("d1", 9): "Stop  it at once.", ("d2", 6): "Other."}
    assert citation_validity(cites, lambda d, p: pages.get((d, p))) == pytest.approx(2 / 3)
    assert citation_validity([], lambda d, p: None) is None


def test_abstention_and_aggregates():
    assert abstention_scores([(False, True), (False, False), (True, True), (True, False)]) == (0.5, 0.5)
    assert abstention_scores([(True, False)]) == (None, None)
    assert mean([1.0, None, float("nan"), 0.0]) == 0.5
    assert mean([None]) is None
    assert percentile([10, 20, 30, 40], 50) == 20
    assert percentile([10, 20, 30, 40], 95) == 40


def test_dataset_loading(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [{"id": "a", "question": "Q1?", "answerable": True, "must_include": ["5 mg"],
              "sources": [{"doc": "x.pdf", "pages": [2, 3]}]},
             {"id": "b", "question": "Q2?", "answerable": False}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    items = load_dataset(path)
    assert [i.id for i in items] == ["a", "b"]
    assert items[0].gold_pages() == {("x.pdf", 2), ("x.pdf", 3)}
    assert len(load_dataset(path, limit=1)) == 1
    assert dataset_key(items) != dataset_key(items[:1])
    with pytest.raises(ConfigError, match="line 3: missing field"):
        parse_item({"id": "c"}, "d.jsonl line 3")
    with pytest.raises(ConfigError, match="'answerable' is 'yes'"):
        parse_item({"id": "c", "question": "q", "answerable": "yes"}, "d.jsonl line 3")
    with pytest.raises(ConfigError, match="not found"):
        load_dataset(tmp_path / "missing.jsonl")


def test_thresholds_from_env_and_flags(monkeypatch):
    monkeypatch.setenv("GQA_EVAL_MIN_FAITHFULNESS", "0.9")
    monkeypatch.setenv("GQA_EVAL_MAX_DROP", "0.1")
    t = Thresholds.from_env(["gold-at-1=0.5"])
    assert t.floors["faithfulness"] == 0.9 and t.floors["gold_at_1"] == 0.5 and t.max_drop == 0.1
    assert t.floors["citation_validity"] == DEFAULT_FLOORS["citation_validity"]
    assert Thresholds.from_env(max_drop=0.0).max_drop == 0.0
    with pytest.raises(ConfigError, match="METRIC one of faithfulness"):
        Thresholds.from_env(["speed=1"])
    monkeypatch.setenv("GQA_EVAL_MIN_FAITHFULNESS", "high")
    with pytest.raises(ConfigError, match="GQA_EVAL_MIN_FAITHFULNESS='high' is not a number"):
        Thresholds.from_env()


def test_check_floors_and_drops():
    t = Thresholds({"faithfulness": 0.8}, 0.05)
    assert check({"faithfulness": 0.7}, t, None) == [
        "faithfulness 0.700 is below the floor 0.800 (GQA_EVAL_MIN_FAITHFULNESS)"]
    assert check({"faithfulness": 0.9, "gold_at_5": None}, t, None) == []
    prev = {"run_id": "r1", "metrics": {"faithfulness": 0.96, "gold_at_5": 0.9, "must_include": 0.5}}
    lines = check({"faithfulness": 0.9, "gold_at_5": 0.86, "must_include": 0.9}, t, prev)
    assert lines == ["faithfulness dropped 0.060 (0.960 -> 0.900) against run r1, more than the allowed 0.050 "
                     "(GQA_EVAL_MAX_DROP)"]
