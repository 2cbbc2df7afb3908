"""The report folder: results.jsonl, summary.json, trend.png and report.html (every text escaped)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from html import escape
from pathlib import Path

from eval.config import QUALITY
from eval.metrics import mean

log = logging.getLogger(__name__)

TREND = ("faithfulness", "gold_at_5", "must_include", "citation_validity", "context_recall", "abstention_recall")
ITEM_PARTS = ("faithfulness", "must_include", "citation_validity", "gold_at_5")
# The target figures, shown per category and per fold: (summary field, column heading).
GROUP_FIGURES = (("gold_at_1", "gold@1"), ("gold_at_5", "gold@5"), ("must_include", "must_include"),
                 ("answerable_refused", "ans refused"), ("abstention_recall", "unans refused"),
                 ("median_words", "median words"), ("faithfulness", "faithful"))


def item_score(row: dict) -> float:
    """One number per question for sorting the table, worst first: -1 for a failed item.

    The mean of its defined faithfulness, decisive-term coverage, citation validity, gold@5 and
    refusal correctness (1 when it refused exactly when it should).
    Example: {'faithfulness': 1.0, 'must_include': 0.5, 'abstention': 'answered', 'error': ''} -> 0.8333
    """
    if row.get("error"):
        return -1.0
    parts = [row.get(k) for k in ITEM_PARTS]
    parts.append(0.0 if row.get("abstention") in ("false refusal", "missed refusal") else 1.0)
    return round(mean(parts) or 0.0, 4)


def write_all(folder: Path, rows: list[dict], summary: dict, trend: list[dict]) -> None:
    """Write all four files into `folder` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r["item_score"] = item_score(r)
    with open(folder / "results.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_trend(trend, folder / "trend.png")
    (folder / "report.html").write_text(render_html(rows, summary, "trend.png"), encoding="utf-8")
    log.info("report written to %s", folder)


def plot_trend(trend: list[dict], path: Path) -> None:
    """A line per quality metric over the comparable runs (matplotlib, Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [_short_time(t["started_at"]) for t in trend]
    x = list(range(len(trend)))
    for name in TREND:
        ys = [t["metrics"].get(name) for t in trend]
        if any(y is not None for y in ys):
            ax.plot(x, [float("nan") if y is None else y for y in ys], marker="o", label=name)
    for i, t in enumerate(trend):
        if not t.get("passed", True):
            ax.axvline(i, color="red", alpha=0.15, linewidth=8)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("score")
    ax.set_title(f"Comparable runs ({len(trend)}); red band: a threshold failed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)


def _short_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%m-%d %H:%M")
    except ValueError:
        return iso[:16]


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f3f3f3}
.fail{color:#b00;font-weight:bold}.pass{color:#070;font-weight:bold}.small{font-size:12px;color:#555}
td.num{text-align:right;font-variant-numeric:tabular-nums}"""


def render_html(rows: list[dict], summary: dict, image: str) -> str:
    """The human report: verdict, aggregates against thresholds, trend, questions worst first."""
    e = escape
    verdict = '<span class="pass">PASS</span>' if summary["passed"] else '<span class="fail">FAIL</span>'
    ds, judge = summary["dataset"], summary["judge"]
    head = [
        f"<h1>Evaluation {e(summary['run_id'])}: {verdict}</h1>",
        f"<p>Dataset <code>{e(ds['path'])}</code> ({ds['items']} questions: {ds['answerable']} answerable, "
        f"{ds['unanswerable']} unanswerable). Index version <code>{e(summary['index_version'])}</code>; "
        f"generator <code>{e(summary['generator'])}</code>; judge <code>{e(json.dumps(judge))}</code>.</p>",
        f"<p class=small>Started {e(summary['started_at'])}, {summary['duration_s']} s. "
        f"Versions: {e(', '.join(f'{k} {v}' for k, v in summary['versions'].items()))}.</p>",
    ]
    if summary["failures"]:
        head.append("<ul>" + "".join(f'<li class="fail">{e(f)}</li>' for f in summary["failures"]) + "</ul>")
    body = head + [_aggregates(summary), _groups(summary, "by_category", "Per category"),
                   _groups(summary, "by_fold", "Per fold (- : items without a fold)"),
                   f'<h2>Trend</h2><img src="{e(image)}" alt="trend of the quality metrics">',
                   _questions(rows)]
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Evaluation {e(summary['run_id'])}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _aggregates(summary: dict) -> str:
    floors, prev = summary["thresholds"]["floors"], summary.get("previous_run") or {}
    before = prev.get("metrics", {})
    out = ["<h2>Aggregates</h2><table><tr><th>metric</th><th>value</th><th>floor</th>"
           f"<th>previous ({escape(prev.get('run_id', 'none'))})</th><th>change</th><th>meaning</th></tr>"]
    max_drop = summary["thresholds"]["max_drop"]
    for name, meaning in QUALITY.items():
        v, f, b = summary["metrics"].get(name), floors.get(name), before.get(name)
        change = None if v is None or b is None else v - b
        bad = (v is not None and f is not None and v < f) or (change is not None and -change > max_drop)
        cls = ' class="fail"' if bad else ""
        out.append(f"<tr><td{cls}>{escape(name)}</td><td class=num>{_fmt(v)}</td><td class=num>{_fmt(f)}</td>"
                   f"<td class=num>{_fmt(b)}</td><td class=num>{'' if change is None else f'{change:+.3f}'}</td>"
                   f"<td class=small>{escape(meaning)}</td></tr>")
    m = summary["metrics"]
    out.append(f"</table><p>Latency per question: mean {_ms(m.get('latency_ms_mean'))} ms, "
               f"p50 {_ms(m.get('latency_ms_p50'))} ms, p95 {_ms(m.get('latency_ms_p95'))} ms. "
               f"Counts: {escape(json.dumps(summary['counts']))}. Allowed drop against the previous comparable "
               f"run: {max_drop:.3f}.</p>")
    return "".join(out)


def group_cell(value: float | None, field: str) -> str:
    """One figure of a per-group table: words as a whole number, shares with three decimals.

    Example: (158.5, 'median_words') -> '158'; (0.25, 'gold_at_1') -> '0.250'; (None, 'gold_at_1') -> '-'
    """
    if value is None:
        return "-"
    return f"{value:.0f}" if field == "median_words" else f"{value:.3f}"


def _groups(summary: dict, key: str, title: str) -> str:
    groups = summary.get(key) or {}
    if not groups:
        return ""
    out = [f"<h2>{escape(title)}</h2><table><tr><th>{escape(key.removeprefix('by_'))}</th><th>items</th>"
           "<th>answerable</th>" + "".join(f"<th>{escape(h)}</th>" for _, h in GROUP_FIGURES) + "</tr>"]
    for name, g in groups.items():
        cells = "".join(f"<td class=num>{group_cell(g.get(f), f)}</td>" for f, _ in GROUP_FIGURES)
        out.append(f"<tr><td>{escape(name)}</td><td class=num>{g['items']}</td><td class=num>{g['answerable']}</td>"
                   f"{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _questions(rows: list[dict]) -> str:
    cols = ("item", "score", "refusal", "faithful", "must include", "gold rank", "citations", "ms")
    out = ["<h2>Questions, worst first</h2><table><tr>" + "".join(f"<th>{c}</th>" for c in cols)
           + "<th>question / answer / notes</th></tr>"]
    for r in sorted(rows, key=lambda r: (r["item_score"], r["id"])):
        cites = r["citations"]
        cite_txt = (f"{sum(c['valid'] for c in cites)}/{len(cites)} verbatim, "
                    f"{sum(c['on_gold_page'] for c in cites)}/{len(cites)} on gold") if cites else "–"
        missing = f" missing: {', '.join(r['must_include_missing'])}" if r["must_include_missing"] else ""
        unsupported = [f"unsupported: \u201c{u['statement']}\u201d ({u['reason']})" for u in r.get("unsupported", [])]
        notes = " ".join(x for x in (r["faithfulness_note"], *unsupported, r["error"]) if x)
        out.append(
            f"<tr><td>{escape(r['id'])}<br><span class=small>{escape(r['category'])}</span></td>"
            f"<td class=num>{_fmt(r['item_score'])}</td><td>{escape(r['abstention'])}</td>"
            f"<td class=num>{_fmt(r['faithfulness'])}</td>"
            f"<td class=num>{_fmt(r['must_include'])}<span class=small>{escape(missing)}</span></td>"
            f"<td class=num>{_fmt(r['gold_rank'])}</td><td>{escape(cite_txt)}</td>"
            f"<td class=num>{_ms(r['latency_ms'])}</td>"
            f"<td><b>{escape(r['question'])}</b><br>{escape(r['answer'])}"
            f"<br><span class=small>{escape(notes)}</span></td></tr>"
        )
    out.append("</table>")
    return "".join(out)
