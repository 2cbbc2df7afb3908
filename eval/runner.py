"""One evaluation run: answer every question through rag.qa.QA, score it, compare, record, report."""

from __future__ import annotations

import logging
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from eval import history, report
from eval.config import EvalConfig, check
from eval.dataset import Item, dataset_key, load_dataset
from eval.metrics import (
    abstention_scores,
    citation_precision,
    citation_validity,
    contains_term,
    gold_at,
    gold_rank,
    mean,
    must_include_coverage,
    on_gold_page,
    one_per_line,
    percentile,
    strip_markers,
)
from rag.config import Settings
from rag.errors import ConfigError, IndexError_
from rag.qa import QA
from rag.storage import for_home, open_store
from rag.text import is_verbatim
from rag.types import Answer, sha256_hex

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (questions done, total)
PACKAGES = ("guideline-qa", "ragas", "langchain-core", "sentence-transformers", "torch", "faiss-cpu", "numpy",
            "openai", "llama-index-core")


@dataclass
class RunResult:
    """What a run produced: per-question rows, the summary and the failed thresholds."""

    rows: list[dict]
    summary: dict
    failures: list[str]
    report_dir: Path


class PageTexts:
    """Gold and cited page texts from the database, looked up by file name or doc id (read-only)."""

    def __init__(self, home: Path) -> None:
        self.store = open_store(for_home(home), readonly=True)
        self.by_file: dict[str, list[str]] = {}
        for d in self.store.documents():
            self.by_file.setdefault(d.file_name, []).append(d.doc_id)
        self._cache: dict[tuple[str, int], str | None] = {}

    def text(self, doc_id: str, page: int) -> str | None:
        """The cleaned text of one page of one document version."""
        key = (doc_id, page)
        if key not in self._cache:
            self._cache[key] = self.store.page_text(doc_id, page)
        return self._cache[key]

    def gold(self, item: Item) -> list[str]:
        """The text of every gold page (each ingested version of the named file)."""
        out = []
        for s in item.sources:
            for doc_id in self.by_file.get(s.doc, []):
                out += [t for p in s.pages if (t := self.text(doc_id, p))]
        return out

    def close(self) -> None:
        """Close the database connection."""
        self.store.close()


def run_eval(config: EvalConfig, settings: Settings, qa: QA | None = None, judge: object | None = None,
             on_progress: Progress | None = None) -> RunResult:
    """Answer, score, compare with the last comparable run that passed, record and write the report."""
    from eval.judge import describe_judge, make_judge
    from eval.ragas_run import RagasScorer

    items = load_dataset(config.dataset, config.limit)
    started, t0 = _now(), time.perf_counter()
    qa = qa or QA(settings)
    index_version = qa.index_version  # loads the published generation before the first timing
    judge = judge if judge is not None else make_judge(config.judge, qa.engine.embedder)
    scorer, pages = RagasScorer(judge), PageTexts(settings.home)
    rows: list[dict] = []
    if on_progress:
        on_progress(0, len(items))
    try:
        for n, item in enumerate(items, start=1):
            rows.append(evaluate_item(item, qa, scorer, pages, config.generator))
            if on_progress:
                on_progress(n, len(items))
    finally:
        scorer.close()
        pages.close()
    key = dataset_key(items)
    generator = next((r["generator"] for r in rows if r["generator"]), config.generator or settings.generator)
    judge_info = describe_judge(judge)
    earlier = history.comparable_runs(settings.home, key, judge_info["name"], generator)
    metrics = aggregate(rows)
    # drops are measured against the last comparable run that passed: after a failed night the next run
    # must climb back, not merely stay as low as the failure
    baseline = next((r for r in reversed(earlier) if r["passed"]), earlier[-1] if earlier else None)
    failures = check(metrics, config.thresholds, baseline) + _error_lines(rows)
    run_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{sha256_hex(f'{key}{index_version}{time.time_ns()}', 6)}"
    summary: dict[str, Any] = {
        "run_id": run_id, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": _now().isoformat(timespec="seconds"), "duration_s": round(time.perf_counter() - t0, 1),
        "dataset": _dataset_info(config, items, key), "index_version": index_version,
        "index_versions": sorted({r["index_version"] for r in rows if r["index_version"]}),
        "generator": generator, "judge": judge_info, "versions": versions(), "metrics": metrics,
        "counts": counts(rows), "by_category": by_group(rows, "category"), "by_fold": by_group(rows, "fold"),
        "thresholds": {"floors": config.thresholds.floors,
                                               "max_drop": config.thresholds.max_drop},
        "previous_run": baseline, "failures": failures, "passed": not failures,
        "report_dir": str(config.report_dir or settings.home / "eval-reports" / run_id),
    }
    return _finish(config, settings, rows, summary, earlier)


def _dataset_info(config: EvalConfig, items: list[Item], key: str) -> dict:
    return {"path": str(config.dataset), "key": key, "items": len(items), "limit": config.limit,
            "answerable": sum(i.answerable for i in items), "unanswerable": sum(not i.answerable for i in items)}


def _finish(config: EvalConfig, settings: Settings, rows: list[dict], summary: dict, earlier: list[dict]) -> RunResult:
    """Warn about a mid-run publish, record the run, write the report folder."""
    if len(summary["index_versions"]) > 1:
        log.warning("a new index was published during the run: %s", ", ".join(summary["index_versions"]))
    if config.record:
        history.record_run(settings.home, summary)
    trend = earlier + [{"run_id": summary["run_id"], "started_at": summary["started_at"],
                        "index_version": summary["index_version"], "passed": summary["passed"],
                        "metrics": summary["metrics"]}]
    report_dir = Path(summary["report_dir"])
    report.write_all(report_dir, rows, summary, trend)
    return RunResult(rows, summary, summary["failures"], report_dir)


def evaluate_item(item: Item, qa: QA, scorer, pages: PageTexts, generator: str | None) -> dict:
    """Every metric of one question; a failing answer or judge call is recorded, not raised."""
    row = _base_row(item)
    t0 = time.perf_counter()
    try:
        answer = qa.answer(item.question, generator=generator)
    except (ConfigError, IndexError_):
        raise  # the whole run is misconfigured: stop at the first question
    except Exception as exc:  # noqa: BLE001 - one failed answer must not end an unattended run
        log.warning("%s: answering failed: %s", item.id, exc)
        row["error"] = f"answer: {type(exc).__name__}: {exc}"
        return row
    row["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    row.update(_answer_fields(item, answer, pages))
    contexts = [h.chunk.text for h in answer.hits]
    if answer.abstained:
        row["faithfulness_note"] = "refused: scored by abstention precision/recall, not faithfulness"
    else:
        try:
            row["faithfulness"], verdicts = scorer.faithfulness_verdicts(
                item.question, one_per_line(answer.text), contexts)
            row["unsupported"] = [{"statement": v["statement"], "reason": v["reason"]}
                                  for v in verdicts if not v["verdict"]]
            if row["faithfulness"] is None:
                row["faithfulness_note"] = "the judge found no statement in the answer"
        except Exception as exc:  # noqa: BLE001 - a judge failure is reported per item and fails the run
            log.warning("%s: judge failed: %s", item.id, exc)
            row["error"] = f"judge: {type(exc).__name__}: {exc}"
    if item.sources:
        row["context_precision"], row["context_recall"] = scorer.score_context(contexts, pages.gold(item))
    return row


def _base_row(item: Item) -> dict:
    return {
        "id": item.id, "question": item.question, "category": item.category, "difficulty": item.difficulty,
        "fold": item.fold,
        "answerable": item.answerable, "abstained": None, "answer": "", "generator": "", "index_version": "",
        "citations": [], "retrieved": [], "gold_rank": None, "gold_at_1": None, "gold_at_5": None,
        "gold_at_10": None, "must_include": None, "must_include_missing": [], "citation_precision": None,
        "citation_validity": None, "faithfulness": None, "faithfulness_note": "", "unsupported": [],
        "context_precision": None, "context_recall": None, "abstention": "", "latency_ms": None, "timings_ms": {},
        "error": "",
    }


def _answer_fields(item: Item, answer: Answer, pages: PageTexts) -> dict:
    rank = gold_rank(answer.hits, item)
    gold = item.gold_pages()
    cites = []
    for c in answer.citations:
        d = c.to_json()
        d["valid"] = is_verbatim(c.quote, pages.text(c.hit.chunk.doc_id, c.hit.chunk.page) or "")
        d["on_gold_page"] = on_gold_page(c.hit.doc.file_name, c.hit.chunk.page, c.hit.chunk.page, gold)
        cites.append(d)
    text = strip_markers(answer.text) if not answer.abstained else ""
    return {
        "abstained": answer.abstained, "answer": answer.text, "generator": answer.generator,
        "index_version": answer.index_version, "citations": cites,
        "retrieved": [{"rank": h.rank, "doc": h.doc.file_name, "page": h.chunk.page, "page_end": h.chunk.page_end,
                       "score": round(float(h.score), 4)} for h in answer.hits],
        "gold_rank": rank, "gold_at_1": gold_at(rank, 1, item), "gold_at_5": gold_at(rank, 5, item),
        "gold_at_10": gold_at(rank, 10, item),
        "must_include": must_include_coverage(text, item.must_include) if item.answerable else None,
        "must_include_missing": [t for t in item.must_include if not contains_term(text, t)],
        "citation_precision": citation_precision(answer.citations, item),
        "citation_validity": citation_validity(answer.citations, pages.text),
        "abstention": _abstention(item.answerable, answer.abstained), "timings_ms": answer.timings_ms,
    }


def _abstention(answerable: bool, abstained: bool) -> str:
    if abstained:
        return "false refusal" if answerable else "correct refusal"
    return "answered" if answerable else "missed refusal"


def aggregate(rows: list[dict]) -> dict:
    """The run's figures: means over the items where each metric is defined, abstention, latency."""
    ok = [r for r in rows if not r["error"].startswith("answer:")]
    out: dict = {name: mean(r[name] for r in ok) for name in (
        "context_precision", "context_recall", "gold_at_1", "gold_at_5", "gold_at_10", "must_include",
        "citation_precision", "citation_validity")}
    out["faithfulness"] = mean(r["faithfulness"] for r in ok if not r["abstained"])
    out["abstention_precision"], out["abstention_recall"] = abstention_scores(
        (r["answerable"], bool(r["abstained"])) for r in ok)
    out["answerable_refused"] = mean(float(bool(r["abstained"])) for r in ok if r["answerable"])
    words = [len(strip_markers(r["answer"]).split()) for r in ok if r["answerable"] and r["abstained"] is False]
    out["median_words"] = statistics.median(words) if words else None
    lat = [r["latency_ms"] for r in ok if r["latency_ms"] is not None]
    out["latency_ms_mean"] = round(sum(lat) / len(lat), 1) if lat else None
    out["latency_ms_p50"], out["latency_ms_p95"] = percentile(lat, 50), percentile(lat, 95)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def group_name(value: object) -> str:
    """The name a row's category or fold is grouped under: '-' when it has none.

    Example: 3 -> '3'; None -> '-'; '' -> '-'
    """
    return "-" if value is None or value == "" else str(value)


def by_group(rows: list[dict], field: str) -> dict[str, dict]:
    """aggregate() per value of rows' `field` (category, fold), with its item counts; '-' (none) last.

    Example: rows with folds 1, 0, None, 0 -> keys ['0', '1', '-']
    """
    names = {group_name(r.get(field)) for r in rows}
    order = sorted(names, key=lambda n: (n == "-", int(n) if n.isdigit() else 0, n))
    out = {}
    for name in order:
        part = [r for r in rows if group_name(r.get(field)) == name]
        out[name] = {"items": len(part), "answerable": sum(bool(r["answerable"]) for r in part), **aggregate(part)}
    return out


def counts(rows: list[dict]) -> dict:
    """How many items each figure rests on, and how many failed."""
    return {
        "items": len(rows), "answered": sum(r["abstained"] is False for r in rows),
        "refused": sum(bool(r["abstained"]) for r in rows),
        "faithfulness_scored": sum(r["faithfulness"] is not None for r in rows),
        "false_refusals": sum(r["abstention"] == "false refusal" for r in rows),
        "missed_refusals": sum(r["abstention"] == "missed refusal" for r in rows),
        "answer_errors": sum(r["error"].startswith("answer:") for r in rows),
        "judge_errors": sum(r["error"].startswith("judge:") for r in rows),
    }


def _error_lines(rows: list[dict]) -> list[str]:
    out = []
    for kind in ("answer", "judge"):
        bad = [r for r in rows if r["error"].startswith(kind + ":")]
        if bad:
            out.append(f"{kind} failed on {len(bad)} of {len(rows)} questions (first: {bad[0]['id']}: "
                       f"{bad[0]['error'].split(': ', 1)[1][:200]})")
    return out


def versions() -> dict:
    """Python and the versions of the packages that shape the figures."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> datetime:
    return datetime.now(UTC)
