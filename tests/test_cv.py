"""bench/cv.py: the grid, the choice per fold on a synthetic table whose right answer is known, the CLI."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rag.answer_config import AnswerConfig

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cv = _load("cv")
A = (("keep_margin", 0.2),)  # the default point
B = (("keep_margin", 0.1),)
C = (("keep_margin", 0.3),)


def _row(qid: str, fold: int | None, found: int, total: int = 1, rank: int = 1, refused: bool = False,
         answerable: bool = True, category: str = "dosing") -> dict:
    return {"id": qid, "fold": fold, "category": category, "answerable": answerable, "has_gold": answerable,
            "gold_rank": rank, "terms_found": found, "terms_total": total, "refused": refused,
            "words": None if refused else 50}


def _table(wins: dict) -> dict:
    """Four answerable questions per fold 0-4; wins[point][fold] of them have their term found."""
    return {p: [_row(f"q{k}-{j}", k, int(j < w[k])) for k in range(5) for j in range(4)] for p, w in wins.items()}


def must(f: dict) -> float:
    return f["must_include"]


def test_grid_is_the_product_with_the_default_first():
    d = AnswerConfig()
    q, m = d.max_quotes, d.keep_margin
    points = cv.parse_grid(f"max_quotes={q + 1},{q + 2} keep_margin={m / 2},{m * 2}", d)
    assert points[0] == (("max_quotes", q), ("keep_margin", m))  # the default, though not in the grid
    assert len(points) == 5 and len(set(points)) == 5  # 2 x 2, and the default
    assert (("max_quotes", q + 2), ("keep_margin", m / 2)) in points
    assert cv.label((("max_quotes", 6.0), ("keep_margin", 0.2))) == "max_quotes=6 keep_margin=0.2"
    assert len(cv.parse_grid(f"max_quotes={q + 1},{q} keep_margin={m / 2},{m}", d)) == 4  # the default is in it
    assert cv.parse_grid(f"keep_margin={m}", d) == [(("keep_margin", m),)]  # the default given again: one point
    with pytest.raises(SystemExit, match="unknown AnswerConfig field"):
        cv.parse_grid("keep_margn=0.1", d)
    with pytest.raises(SystemExit, match="FIELD=V1,V2"):
        cv.parse_grid("keep_margin", d)


def test_a_point_best_on_four_folds_and_worst_on_the_fifth():
    # B finds every term on folds 0-3 and none on fold 4; A finds 2 of 4 everywhere.
    tab = _table({A: [2, 2, 2, 2, 2], B: [4, 4, 4, 4, 0]})
    choice, scores = cv.choose(tab, must)
    # without fold 4, B wins (16/16 against 8/16); without fold k < 4, B has 12/16 against 8/16: still B
    assert choice == {0: B, 1: B, 2: B, 3: B, 4: B}
    assert scores[4] == [0.5, 1.0] and scores[0] == [0.5, 0.75]
    honest = cv.pooled(cv.held_out(tab, choice))
    assert honest["must_include"] == 16 / 20  # fold 4 is scored with B and shows its collapse
    assert cv.pooled(cv.fixed(tab, A, [0, 1, 2, 3, 4]))["must_include"] == 0.5


def test_a_point_that_wins_only_on_the_held_out_fold_is_not_chosen_for_it():
    # C is perfect on fold 2 alone: fold 2's held-out score must not see that
    tab = _table({A: [3, 3, 1, 3, 3], C: [1, 1, 4, 1, 1]})
    choice, _ = cv.choose(tab, must)
    assert choice[2] == A
    assert all(choice[k] == A for k in (0, 1, 3, 4))
    assert cv.pooled(cv.held_out(tab, choice))["must_include"] == 13 / 20


def test_ties_keep_the_default_and_folds_without_a_number_are_left_out():
    tab = _table({A: [2] * 5, B: [2] * 5})
    tab = {p: rows + [_row("x", None, 0)] for p, rows in tab.items()}
    choice, _ = cv.choose(tab, must)
    assert set(choice.values()) == {A} and sorted(choice) == [0, 1, 2, 3, 4]
    assert all(r["fold"] is not None for r in cv.held_out(tab, choice))
    out = cv.report(tab, [dict(r, refused=False) for r in tab[A]], "must_include")
    assert out["left_out"] == ["x"] and out["choice"]["0"] == "keep_margin=0.2"


def test_balanced_objective_weighs_false_refusals_double_and_words_over_120():
    base = {"must_include": 0.8, "gold_at_1": 0.8, "unanswerable_refused": 0.8, "answerable_refused": 0.1,
            "median_words": 100}
    score = cv.OBJECTIVES["balanced"][0]
    assert score(base) == pytest.approx(2.2)
    assert score(base | {"median_words": 160}) == pytest.approx(2.2 - 0.2)
    assert score(base | {"answerable_refused": 0.2}) == pytest.approx(2.0)


def test_report_per_fold_category_and_fusion():
    tab = _table({A: [2, 2, 2, 2, 2], B: [4, 4, 4, 4, 0]})
    fusion = [dict(r, gold_rank=1 if r["fold"] < 3 else 2) for r in tab[A]]
    out = cv.report(tab, fusion, "must_include")
    assert out["held_out"]["fold"]["4"]["must_include"] == 0.0
    assert out["default_config"]["fold"]["4"]["must_include"] == 0.5
    assert out["fusion"]["all"]["gold_at_1"] == 0.6 and out["fusion"]["fold"]["3"]["gold_at_1"] == 0.0
    assert out["held_out"]["category"]["dosing"]["n"] == 20


class CountingEmbedder:
    def __init__(self) -> None:
        self.id, self.calls = "counting", 0

    def embed(self, texts):
        import numpy as np

        self.calls += 1
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]


def test_memo_embedder_returns_the_same_vectors_once_computed():
    inner = CountingEmbedder()
    memo = cv.MemoEmbedder(inner)
    first = memo.embed(["a", "bb"])
    first[0, 0] = 99  # a caller writing into its copy changes nothing kept
    again = memo.embed(["a", "bb"])
    assert again.tolist() == [[1.0, 1.0], [2.0, 1.0]] and inner.calls == 1
    memo.embed(["bb", "a"])  # another batch is another call
    assert inner.calls == 2 and (memo.hits, memo.misses) == (1, 2) and memo.id == "counting"


@pytest.mark.slow
def test_cli_on_the_demo_corpus(demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """Two grid points and the default over the demo set (folds given by the test), with the real model."""
    lines = []
    for n, line in enumerate((ROOT / "data" / "demo_eval.jsonl").read_text().splitlines()):
        lines.append(json.dumps(json.loads(line) | {"fold": n % 3}))
    dataset = tmp_path / "demo_folds.jsonl"
    dataset.write_text("\n".join(lines) + "\n")
    other = AnswerConfig().max_quotes + 1
    grid = f"max_quotes=1,{other}"
    assert cv.main(["--home", str(demo_home), "--dataset", str(dataset), "--grid", grid, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    default = f"max_quotes={AnswerConfig().max_quotes}"
    assert out["grid"] == [default, "max_quotes=1", f"max_quotes={other}"] and out["default"] == default
    assert sorted(out["choice"]) == ["0", "1", "2"] and set(out["choice"].values()) <= set(out["grid"])
    assert out["held_out"]["all"]["n"] == out["default_config"]["all"]["n"] == 10
    assert [t["point"] for t in out["timing"]] == out["grid"]
    assert out["embed_cache"]["hits"] >= 10  # the second point asks each question's vector again
    dq = _load("dev_quality")
    from eval.dataset import load_dataset
    from rag.config import Settings
    from rag.qa import QA

    qa = QA(Settings.from_env(home=demo_home))
    items = load_dataset(dataset)
    # the cached run gives the default config exactly the figures of a fresh, uncached QA
    assert out["default_config"]["all"] == dq.figures((i, qa.answer(i.question)) for i in items)
    # and each fold the figures of the point chosen for it, answered afresh
    chosen = {int(k): AnswerConfig().with_values(max_quotes=float(v.split("=")[1])) for k, v in out["choice"].items()}
    fresh = [(i, qa.answer(i.question, config=chosen[i.fold])) for i in items]
    assert out["held_out"]["all"] == dq.figures(fresh)
    capsys.readouterr()
    assert cv.main(["--home", str(demo_home), "--dataset", str(dataset), "--grid", grid]) == 0
    text = capsys.readouterr().out
    assert "chosen on the other folds" in text and "fusion alone" in text and "per category" in text
