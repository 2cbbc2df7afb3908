"""`guideline-qa eval DATASET.jsonl`: the nightly evaluation; exit 1 with one line per failed threshold."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.config import JUDGES, QUALITY


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `eval` subcommand (ragas is imported only when it runs)."""
    s = sub.add_parser(
        "eval", help="evaluate answers on a question set: RAGAS faithfulness, retrieval, citations, abstention",
        description="Answer every question of DATASET.jsonl through the app's API, score it and write a report. "
                    "Exit 0 when every threshold holds, 1 when one fails (one line per failure on stderr).",
    )
    s.add_argument("dataset", metavar="DATASET.jsonl")
    s.add_argument("--report", metavar="DIR", help="report folder (default: <GQA_HOME>/eval-reports/<run id>)")
    s.add_argument("--judge", choices=JUDGES, default=None,
                   help="faithfulness judge (default: GQA_EVAL_JUDGE, else offline: deterministic, no network)")
    s.add_argument("--generator", metavar="NAME", help="answer generator (default: GQA_GENERATOR, else extractive)")
    s.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    s.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE",
                   help=f"floor for a metric (repeatable; env GQA_EVAL_MIN_<METRIC>); metrics: {', '.join(QUALITY)}")
    s.add_argument("--max-drop", type=float, metavar="X",
                   help="largest allowed fall of any metric against the previous comparable run "
                        "(env GQA_EVAL_MAX_DROP, default 0.05)")
    s.add_argument("--no-record", action="store_true", help="do not store this run in the database")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation; print the figures; return 1 when a threshold fails."""
    from tqdm import tqdm

    from eval.config import EvalConfig, Thresholds, default_judge
    from eval.runner import run_eval
    from rag.config import Settings

    config = EvalConfig(
        dataset=Path(args.dataset), report_dir=Path(args.report) if args.report else None,
        judge=args.judge or default_judge(), generator=args.generator, limit=args.limit,
        thresholds=Thresholds.from_env(args.min, args.max_drop), record=not args.no_record,
    )
    settings = Settings.from_env()
    bar = tqdm(desc="questions", unit="q", file=sys.stderr, disable=args.no_progress, mininterval=0.5)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = run_eval(config, settings, on_progress=progress)
    finally:
        bar.close()
    print(format_summary(result.summary))
    for line in result.failures:
        print(f"guideline-qa eval: FAIL {line}", file=sys.stderr)
    return 1 if result.failures else 0


def format_summary(summary: dict) -> str:
    """The figures as a short table for the terminal and the nightly log."""
    m, floors = summary["metrics"], summary["thresholds"]["floors"]
    lines = [f"run {summary['run_id']}  index {summary['index_version']}  generator {summary['generator']}  "
             f"judge {summary['judge']['name']}  {summary['dataset']['items']} questions  {summary['duration_s']} s"]
    for name in QUALITY:
        v = m.get(name)
        floor = f"  (floor {floors[name]:.2f})" if name in floors else ""
        lines.append(f"  {name:<22} {'-' if v is None else f'{v:.3f}'}{floor}")
    lines.append(f"  {'latency ms p50/p95':<22} {m.get('latency_ms_p50')}/{m.get('latency_ms_p95')}")
    for key in ("by_category", "by_fold"):
        lines += group_lines(key.removeprefix("by_"), summary.get(key) or {})
    lines.append(f"{'PASS' if summary['passed'] else 'FAIL'}  report: {summary['report_dir']}")
    return "\n".join(lines)


def group_lines(title: str, groups: dict[str, dict]) -> list[str]:
    """A plain table of the target figures, one row per category or fold ('-': items without one)."""
    from eval.report import GROUP_FIGURES, group_cell

    if not groups:
        return []
    width = max(len(title), *(len(n) for n in groups)) + 2
    out = [f"  {title:<{width}}{'items':>6}{'ans':>5}" + "".join(f"{h:>14}" for _, h in GROUP_FIGURES)]
    for name, g in groups.items():
        cells = "".join(f"{group_cell(g.get(f), f):>14}" for f, _ in GROUP_FIGURES)
        out.append(f"  {name:<{width}}{g['items']:>6}{g['answerable']:>5}{cells}")
    return out
