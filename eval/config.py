"""Evaluation settings: which judge, the metric floors and the allowed drop (no heavy imports here).

Environment: GQA_EVAL_JUDGE, GQA_EVAL_MIN_<METRIC> (e.g. GQA_EVAL_MIN_FAITHFULNESS=0.9),
GQA_EVAL_MAX_DROP. Flags (`--judge`, `--min METRIC=VALUE`, `--max-drop`) override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError

JUDGES = ("offline", "openai", "llamacpp")

# Metrics where higher is better, in report order, with a one-line meaning for the report.
QUALITY: dict[str, str] = {
    "faithfulness": "RAGAS faithfulness of the answers given (refusals excluded)",
    "context_precision": "RAGAS non-LLM context precision against the gold pages",
    "context_recall": "RAGAS non-LLM context recall of the gold pages",
    "gold_at_1": "a gold page at retrieval rank 1",
    "gold_at_5": "a gold page within the top 5",
    "gold_at_10": "a gold page within the top 10",
    "must_include": "share of the decisive terms present in the answer",
    "citation_precision": "share of citations on a gold page",
    "citation_validity": "share of citation quotes verbatim on the cited page",
    "abstention_precision": "share of refusals that were on unanswerable questions",
    "abstention_recall": "share of unanswerable questions refused",
}

# Absolute floors (documented in eval/README_SECTION.md). Reasons:
DEFAULT_FLOORS: dict[str, float] = {
    # Most statements of a given answer must be supported by the retrieved text.
    "faithfulness": 0.80,
    # A quote that is not on its page is a bug in citing, never a matter of degree.
    "citation_validity": 0.95,
    # Half the decisive numbers and names: below this, answers miss what clinicians ask for.
    "must_include": 0.50,
    # The answer cannot be better than retrieval (0.96 on the dev set today): 0.60 catches a broken
    # index (wrong embedder, missing documents) without tripping on a re-ranking change.
    "gold_at_5": 0.60,
    # At least half of the questions the documents cannot answer must be refused.
    "abstention_recall": 0.50,
}
# A fall of more than this (absolute, any quality metric) against the last comparable run that passed fails:
# on the 30-question dev set that is two questions changing for the worse.
DEFAULT_MAX_DROP = 0.05


@dataclass(frozen=True)
class Thresholds:
    """Floors per metric and the largest allowed drop against the last comparable run that passed."""

    floors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))
    max_drop: float = DEFAULT_MAX_DROP

    @classmethod
    def from_env(cls, mins: list[str] | None = None, max_drop: float | None = None) -> Thresholds:
        """Defaults, then GQA_EVAL_MIN_* / GQA_EVAL_MAX_DROP, then `--min METRIC=VALUE` / `--max-drop`."""
        floors = dict(DEFAULT_FLOORS)
        for name in QUALITY:
            raw = os.environ.get(f"GQA_EVAL_MIN_{name.upper()}")
            if raw is not None:
                floors[name] = _fraction(raw, f"GQA_EVAL_MIN_{name.upper()}")
        for spec in mins or []:
            name, sep, raw = spec.partition("=")
            name = name.strip().lower().replace("-", "_")
            if not sep or name not in QUALITY:
                raise ConfigError(f"--min {spec!r}: use METRIC=VALUE with METRIC one of {', '.join(QUALITY)}")
            floors[name] = _fraction(raw, f"--min {name}")
        drop = max_drop
        if drop is None:
            raw = os.environ.get("GQA_EVAL_MAX_DROP")
            drop = _fraction(raw, "GQA_EVAL_MAX_DROP") if raw is not None else DEFAULT_MAX_DROP
        if not 0 <= drop <= 1:
            raise ConfigError(f"--max-drop {drop}: must be between 0 and 1")
        return cls(floors, drop)


def _fraction(raw: str, where: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"{where}={raw!r} is not a number; use a value between 0 and 1") from None
    if not 0 <= v <= 1:
        raise ConfigError(f"{where}={raw!r} is out of range; use a value between 0 and 1")
    return v


def default_judge() -> str:
    """GQA_EVAL_JUDGE, else 'offline' (runs on this machine, reaches no network)."""
    name = os.environ.get("GQA_EVAL_JUDGE", "offline")
    if name not in JUDGES:
        raise ConfigError(f"GQA_EVAL_JUDGE={name!r}; choose one of {', '.join(JUDGES)}")
    return name


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run: what to ask, where to write, how to judge and when to fail."""

    dataset: Path
    report_dir: Path | None = None  # None: <home>/eval-reports/<run id>
    judge: str = "offline"
    generator: str | None = None  # None: the product's configured generator
    limit: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    record: bool = True  # store the run in the database (the trend and the next run's baseline)


def check(metrics: dict, thresholds: Thresholds, previous: dict | None) -> list[str]:
    """One line per failed threshold: floors first, then drops against the previous run.

    Example: ({'faithfulness': 0.7}, floors {'faithfulness': 0.8}, None)
             -> ['faithfulness 0.700 is below the floor 0.800 (GQA_EVAL_MIN_FAITHFULNESS)']
    """
    out = []
    for name, floor in thresholds.floors.items():
        value = metrics.get(name)
        if value is not None and value < floor - 1e-9:
            out.append(f"{name} {value:.3f} is below the floor {floor:.3f} (GQA_EVAL_MIN_{name.upper()})")
    if previous:
        before = previous.get("metrics", {})
        for name in QUALITY:
            now, then = metrics.get(name), before.get(name)
            if now is None or then is None:
                continue
            if then - now > thresholds.max_drop + 1e-9:
                out.append(
                    f"{name} dropped {then - now:.3f} ({then:.3f} -> {now:.3f}) against run "
                    f"{previous.get('run_id', '?')}, more than the allowed {thresholds.max_drop:.3f} "
                    "(GQA_EVAL_MAX_DROP)"
                )
    return out
