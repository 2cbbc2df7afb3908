"""Answering quality on a question set, overall and per fold and category (prints tables; not a test).

    python bench/dev_quality.py --home HOME [--dataset ../shared/eval/dev.jsonl] [--split-at 30]
        [--answers answers.jsonl] [--json]

Every question goes through `QA.answer`, as the app asks it. `--split-at N` also prints the first N
items against the rest (the dev set's first 30 are the questions earlier constants were fitted on).
`--answers FILE` writes each answer with its citations, to read them as a clinician would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.dataset import Item, load_dataset  # noqa: E402
from eval.metrics import contains_term, gold_rank, strip_markers  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.qa import QA  # noqa: E402
from rag.types import Answer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
METRICS = ("gold_at_1", "gold_at_5", "must_include", "answerable_refused", "unanswerable_refused", "median_words")


def question_figures(item: Item, answer: Answer) -> dict:
    """What one answer contributes to the figures: gold rank, decisive terms found, refused, words.

    `words` is None for a refusal (the median is over the answers given to answerable questions).
    """
    text = strip_markers(answer.text)
    return {
        "id": item.id, "fold": item.fold, "category": item.category, "answerable": item.answerable,
        "has_gold": bool(item.sources), "gold_rank": gold_rank(answer.hits, item),
        "terms_found": sum(contains_term(text, t) for t in item.must_include) if item.answerable else 0,
        "terms_total": len(item.must_include) if item.answerable else 0,
        "refused": answer.abstained, "words": None if answer.abstained else len(text.split()),
    }


def pooled(rows: Iterable[dict]) -> dict:
    """The issue's figures over rows of question_figures(); None where a group has no such items.

    must_include is pooled over terms (found terms / all terms), as the targets are stated.
    Example: rows of two answerable questions, ranks 1 and 3, terms 2/2 and 0/1 -> gold_at_1 0.5, must_include 0.667
    """
    rows = list(rows)
    ans = [r for r in rows if r["answerable"]]
    ranks = [r["gold_rank"] for r in ans if r["has_gold"]]
    words = [r["words"] for r in ans if r["words"] is not None]
    total = sum(r["terms_total"] for r in ans)

    def share(xs: list) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return {
        "n": len(rows), "answerable": len(ans),
        "gold_at_1": share([r == 1 for r in ranks]),
        "gold_at_5": share([r is not None and r <= 5 for r in ranks]),
        "must_include": sum(r["terms_found"] for r in ans) / total if total else None,
        "answerable_refused": share([r["refused"] for r in ans]),
        "unanswerable_refused": share([r["refused"] for r in rows if not r["answerable"]]),
        "median_words": statistics.median(words) if words else None,
    }


def figures(runs: Iterable[tuple[Item, Answer]]) -> dict:
    """The issue's figures for a group of (item, answer) pairs (pooled() of their question_figures())."""
    return pooled(question_figures(i, a) for i, a in runs)


def table(title: str, groups: dict[str, dict]) -> str:
    """A plain-text table: one row per group, one column per metric."""
    w = max([18, *(len(name) + 2 for name in groups)])
    head = f"{'':<{w}}{'n':>4}{'ans':>5}" + "".join(f"{m:>22}" for m in METRICS)
    lines = [title, head]
    for name, f in groups.items():
        cells = "".join(f"{_cell(f[m], m):>22}" for m in METRICS)
        lines.append(f"{name:<{w}}{f['n']:>4}{f['answerable']:>5}{cells}")
    return "\n".join(lines)


def _cell(v: float | None, metric: str) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if metric == "median_words" else f"{v:.3f}"


def grouped(runs: list[tuple[Item, Answer]], key) -> dict[str, dict]:
    """figures() per value of key(item), sorted by that value."""
    keys = sorted({str(key(i)) for i, _ in runs})
    return {k: figures((i, a) for i, a in runs if str(key(i)) == k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="GQA_HOME with the corpus ingested")
    p.add_argument("--dataset", default=str(DEV))
    p.add_argument("--split-at", type=int, default=0, help="also compare the first N items with the rest")
    p.add_argument("--answers", help="write every answer (JSONL) to this file")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = p.parse_args(argv)
    qa = QA(Settings.from_env(home=Path(args.home)))
    items = load_dataset(args.dataset)
    runs = [(i, qa.answer(i.question)) for i in items]
    out = {"all": figures(runs), "fold": grouped(runs, lambda i: i.fold),
           "category": grouped(runs, lambda i: i.category), "index_version": qa.index_version,
           "fusion": fusion_alone(qa, items)}
    if args.split_at:
        ids = {i.id for i in items[: args.split_at]}
        out["split"] = {f"first {args.split_at}": figures((i, a) for i, a in runs if i.id in ids),
                        "rest": figures((i, a) for i, a in runs if i.id not in ids)}
    if args.answers:
        with open(args.answers, "w") as fh:
            for i, a in runs:
                fh.write(json.dumps({"id": i.id, "fold": i.fold, "category": i.category, "answerable": i.answerable,
                                     "question": i.question, "must_include": list(i.must_include),
                                     "gold_rank": gold_rank(a.hits, i), **a.to_json()} | {"hits": None}) + "\n")
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(table(f"{args.dataset} (index {out['index_version']})", {"all": out["all"], **out.get("split", {})}))
    print()
    print(table("by fold", out["fold"]))
    print()
    print(table("by category", out["category"]))
    print()
    print(fusion_table(out["fusion"], {"all": out["all"], **out["fold"]}))
    return 0


def fusion_alone(qa: QA, items: list[Item]) -> dict[str, dict]:
    """Gold@1 and top 5 of fusion's own order (qa.engine.retrieve, before re-ranking), overall and per fold:
    the stage after fusion must not do worse than this."""
    ranks = {i.id: gold_rank(qa.engine.retrieve(i.question, 10), i) for i in items if i.answerable and i.sources}

    def share(ids: list[str], k: int) -> float | None:
        got = [ranks[x] for x in ids if x in ranks]
        return sum(r is not None and r <= k for r in got) / len(got) if got else None

    groups = {"all": [i.id for i in items], **{str(f): [i.id for i in items if str(i.fold) == str(f)]
                                               for f in sorted({str(i.fold) for i in items})}}
    return {g: {"gold_at_1": share(ids, 1), "gold_at_5": share(ids, 5)} for g, ids in groups.items()}


def fusion_table(fusion: dict[str, dict], ours: dict[str, dict]) -> str:
    """Re-ranked (`ours`: figures() per group) against fusion alone, gold@1 and top 5, overall and per fold."""
    lines = ["re-ranked against fusion alone", f"{'':<8}{'gold@1':>10}{'fusion':>10}{'top 5':>10}{'fusion':>10}"]
    for g, f in fusion.items():
        mine = ours.get(g)
        a1 = _cell(mine["gold_at_1"], "") if mine else "-"
        a5 = _cell(mine["gold_at_5"], "") if mine else "-"
        lines.append(f"{g:<8}{a1:>10}{_cell(f['gold_at_1'], ''):>10}{a5:>10}{_cell(f['gold_at_5'], ''):>10}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
