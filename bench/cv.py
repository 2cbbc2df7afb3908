"""Cross-validated choice of the answering constants over the dev folds (prints tables; not a test).

    python bench/cv.py --home HOME [--dataset ../shared/eval/dev.jsonl]
        --grid "keep_margin=0.1,0.2 max_quotes=2,3" [--objective balanced] [--json]

Every question is answered through `QA.answer` once per grid point (the cartesian product of the
values; the default AnswerConfig's point always among them). For each fold k the point that maximises
the objective on the other folds is chosen and fold k is scored with it: pooled over the folds, these
held-out figures are the honest ones. Beside them: the default config on the same folds, and fusion
alone (the hits of `qa.engine.retrieve` before re-ranking), which the stage after fusion must not fall
below. Items without a fold are left out (named in the output).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from dev_quality import DEV, METRICS, pooled, question_figures, table  # noqa: E402

from eval.dataset import Item, load_dataset  # noqa: E402
from eval.metrics import gold_rank  # noqa: E402
from rag.answer_config import AnswerConfig  # noqa: E402

Point = tuple[tuple[str, float], ...]  # ((field, value), ...) in the grid's order
Table = dict[Point, list[dict]]  # per grid point, one question_figures() row per question


def _balanced(f: dict) -> float:
    words_over = max(0.0, (f["median_words"] or 0) - 120)
    return (_v(f["must_include"]) + _v(f["gold_at_1"]) + _v(f["unanswerable_refused"])
            - 2 * _v(f["answerable_refused"]) - 0.005 * words_over)


def _v(x: float | None) -> float:
    return 0.0 if x is None else x


# name -> (objective over pooled() figures, why)
OBJECTIVES: dict[str, tuple[Callable[[dict], float], str]] = {
    "balanced": (_balanced, "must_include + gold@1 + unanswerable refused - 2 x answerable refused - 0.005 per "
                            "median word over 120: each target once; refusing an answer the documents hold costs "
                            "double (its target, 3%, is the tightest); length only counts past its 120-word target"),
    "must_include": (lambda f: _v(f["must_include"]), "the decisive terms in the answer, alone"),
    "gold_at_1": (lambda f: _v(f["gold_at_1"]), "the gold page at rank 1, alone (ranking constants)"),
    "abstention": (lambda f: _v(f["unanswerable_refused"]) - 2 * _v(f["answerable_refused"]),
                   "refusals only: unanswerable refused - 2 x answerable refused (abstention constants)"),
}


def parse_grid(spec: str, default: AnswerConfig) -> list[Point]:
    """The grid points of 'field=v1,v2 field2=v3', default config's point first, each once.

    Example: ('max_quotes=2,6', AnswerConfig()) -> [(('max_quotes', 6),), (('max_quotes', 2),)]
    """
    axes: list[tuple[str, list[float]]] = []
    for part in spec.split():
        name, sep, raw = part.partition("=")
        if not sep or not raw:
            raise SystemExit(f"--grid {part!r}: write FIELD=V1,V2 (e.g. keep_margin=0.1,0.2)")
        try:
            values = [float(v) for v in raw.split(",") if v]
            default.with_values(**{name: values[0]})  # a name that is not a field fails here
        except (ValueError, IndexError) as exc:
            raise SystemExit(f"--grid {part!r}: {exc}; fields: {', '.join(asdict(default))}") from None
        axes.append((name, values))
    if not axes:
        raise SystemExit("--grid is empty: give at least one FIELD=V1,V2")
    base: Point = tuple((n, float(getattr(default, n))) for n, _ in axes)
    points = [base]
    for combo in itertools.product(*(vals for _, vals in axes)):
        p = tuple((n, float(v)) for (n, _), v in zip(axes, combo, strict=True))
        if p not in points:
            points.append(p)
    return points


def label(point: Point) -> str:
    """A point as the grid writes it.

    Example: (('keep_margin', 0.1), ('max_quotes', 3.0)) -> 'keep_margin=0.1 max_quotes=3'
    """
    return " ".join(f"{n}={v:g}" for n, v in point)


def folds_of(rows: list[dict]) -> list[int]:
    """The folds present, sorted (rows without a fold are not cross-validated)."""
    return sorted({r["fold"] for r in rows if r["fold"] is not None})


def choose(tab: Table, objective: Callable[[dict], float]) -> tuple[dict[int, Point], dict[int, list[float]]]:
    """For each fold, the point with the best objective on the other folds, and every point's score there.

    Ties go to the earlier point in the grid (the default first): a change must earn its place.
    Example: B finds all terms on folds 0-3 and none on fold 4, A half everywhere -> B for every fold
    (it wins on every four folds), and fold 4's held-out score shows B's collapse (tests/test_cv.py).
    """
    points = list(tab)
    folds = folds_of(tab[points[0]])
    choice, scores = {}, {}
    for k in folds:
        s = [objective(pooled(r for r in tab[p] if r["fold"] is not None and r["fold"] != k)) for p in points]
        scores[k] = s
        choice[k] = points[max(range(len(points)), key=lambda i: (s[i], -i))]
    return choice, scores


def held_out(tab: Table, choice: dict[int, Point]) -> list[dict]:
    """The rows each fold gets from the point chosen without it: the honest per-question table."""
    return [r for k, p in choice.items() for r in tab[p] if r["fold"] == k]


def fixed(tab: Table, point: Point, folds: list[int]) -> list[dict]:
    """The rows of one point on the given folds (the default config on the same folds, for comparison)."""
    return [r for r in tab[point] if r["fold"] in folds]


def by(rows: list[dict], key: str) -> dict[str, dict]:
    """pooled() per value of a row field (fold, category), sorted."""
    names = sorted({str(r[key]) for r in rows}, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))
    return {n: pooled(r for r in rows if str(r[key]) == n) for n in names}


class MemoEmbedder:
    """The embedder with each exact batch's vectors kept: a grid point re-asks what the last one asked.

    The key is the whole list of texts, so every call returns what the same call returned before (the
    embedder is deterministic); only the time changes. Misses are timed, to say what embedding costs.
    """

    def __init__(self, inner) -> None:
        self.inner, self.id = inner, inner.id
        self._memo: dict[tuple[str, ...], np.ndarray] = {}
        self.hits = self.misses = 0
        self.miss_s = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        """The vectors of `texts`, computed once per distinct batch."""
        key = tuple(texts)
        if key in self._memo:
            self.hits += 1
        else:
            self.misses += 1
            t0 = time.perf_counter()
            self._memo[key] = self.inner.embed(list(texts))
            self.miss_s += time.perf_counter() - t0
        return self._memo[key].copy()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """As the inner embedder counts them."""
        return self.inner.count_tokens(texts)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def answer_grid(qa, items: list[Item], points: list[Point], default: AnswerConfig, log=print) -> tuple[Table, list]:
    """Every item answered at every point: the per-question table and, per point, its seconds."""
    tab: Table = {}
    timing = []
    memo = qa.engine.embedder
    for n, p in enumerate(points, start=1):
        cfg = default.with_values(**dict(p))
        t0, miss0 = time.perf_counter(), getattr(memo, "miss_s", 0.0)
        tab[p] = [question_figures(i, qa.answer(i.question, config=cfg)) for i in items]
        secs, embed_s = time.perf_counter() - t0, getattr(memo, "miss_s", 0.0) - miss0
        timing.append({"point": label(p), "seconds": round(secs, 1), "embedding_s": round(embed_s, 1)})
        log(f"point {n}/{len(points)} {label(p)}: {secs:.1f} s ({embed_s:.1f} s embedding)")
    return tab, timing


def fusion_rows(qa, items: list[Item]) -> list[dict]:
    """Gold rank of fusion alone (dense + BM25 by reciprocal rank, before re-ranking), per item."""
    k = qa.settings.top_k
    return [{"id": i.id, "fold": i.fold, "category": i.category, "answerable": i.answerable,
             "has_gold": bool(i.sources), "gold_rank": gold_rank(qa.engine.retrieve(i.question, k), i),
             "terms_found": 0, "terms_total": 0, "refused": False, "words": None} for i in items]


def report(tab: Table, fusion: list[dict], objective: str) -> dict:
    """Choice per fold, held-out figures per fold / pooled / per category, the default's and fusion's."""
    fn = OBJECTIVES[objective][0]
    choice, scores = choose(tab, fn)
    folds = sorted(choice)
    default = next(iter(tab))
    honest, base = held_out(tab, choice), fixed(tab, default, folds)
    fus = [r for r in fusion if r["fold"] in folds]
    return {
        "objective": {"name": objective, "why": OBJECTIVES[objective][1]},
        "grid": [label(p) for p in tab], "default": label(default),
        "choice": {str(k): label(p) for k, p in choice.items()},
        "train_scores": {str(k): dict(zip((label(p) for p in tab), map(lambda x: round(x, 4), s), strict=True))
                         for k, s in scores.items()},
        "held_out": {"all": pooled(honest), "fold": by(honest, "fold"), "category": by(honest, "category")},
        "default_config": {"all": pooled(base), "fold": by(base, "fold"), "category": by(base, "category")},
        "fusion": {"all": _ranks(pooled(fus)), "fold": {k: _ranks(v) for k, v in by(fus, "fold").items()}},
        "left_out": [r["id"] for r in tab[default] if r["fold"] is None],
    }


def _ranks(f: dict) -> dict:
    return {"n": f["n"], "gold_at_1": f["gold_at_1"], "gold_at_5": f["gold_at_5"]}


def print_report(out: dict) -> None:
    """The tables a reader compares: per fold, pooled, per category."""
    print(f"objective {out['objective']['name']}: {out['objective']['why']}")
    print(f"grid ({len(out['grid'])} points; default {out['default']}): " + " | ".join(out["grid"]))
    for t in out["timing"]:
        print(f"  {t['point']}: {t['seconds']} s per pass ({t['embedding_s']} s of it embedding)")
    print("\nchosen on the other folds")
    for k, p in out["choice"].items():
        fus = out["fusion"]["fold"].get(k, {})
        print(f"  fold {k}: {p:<40} fusion alone gold@1 {_f(fus.get('gold_at_1'))} top5 {_f(fus.get('gold_at_5'))}")
    held, base = out["held_out"], out["default_config"]
    fus = out["fusion"]["all"]
    print()
    print(table("pooled over the held-out folds", {
        "held-out (chosen)": held["all"], "default config": base["all"],
        "fusion alone": {"n": fus["n"], "answerable": "", **{m: None for m in METRICS}, **_only(fus)}}))
    for name in ("fold", "category"):
        print()
        rows = {}
        for g in held[name]:
            rows[f"{g} held-out"], rows[f"{g} default"] = held[name][g], base[name][g]
        print(table(f"per {name}: held-out (chosen without it) against the default config", rows))
    if out["left_out"]:
        print(f"\nleft out (no fold): {', '.join(out['left_out'])}")


def _only(f: dict) -> dict:
    return {"gold_at_1": f["gold_at_1"], "gold_at_5": f["gold_at_5"]}


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    from rag.config import Settings
    from rag.engine import Engine
    from rag.qa import QA

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="GQA_HOME with the corpus ingested (only read)")
    p.add_argument("--dataset", default=str(DEV))
    p.add_argument("--grid", required=True, help='values to try, e.g. "keep_margin=0.1,0.2 max_quotes=2,3"')
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="balanced",
                   help="what a point is chosen for: " + "; ".join(f"{k}: {v[1]}" for k, v in OBJECTIVES.items()))
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    default = AnswerConfig()
    points = parse_grid(args.grid, default)
    items = load_dataset(args.dataset)
    if len({i.fold for i in items if i.fold is not None}) < 2:
        raise SystemExit(f"{args.dataset}: cross-validation needs items in at least two folds")
    settings = Settings.from_env(home=Path(args.home))
    qa = QA(settings, embedder=MemoEmbedder(Engine(settings).embedder))
    tab, timing = answer_grid(qa, items, points, default, lambda s: print(s, file=sys.stderr, flush=True))
    out = report(tab, fusion_rows(qa, items), args.objective) | {"timing": timing, "index_version": qa.index_version}
    memo = qa.engine.embedder
    out["embed_cache"] = {"hits": memo.hits, "misses": memo.misses}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print_report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
