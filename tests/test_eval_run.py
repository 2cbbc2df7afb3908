"""End-to-end runs of `guideline-qa eval`: report files, the database trend, exit 1 on a regression."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from eval.config import EvalConfig
from eval.metrics import strip_markers
from eval.runner import run_eval
from rag.config import Settings
from rag.qa import QA
from rag.text import split_sentences
from rag.types import Answer, Citation

DEMO_SET = Path(__file__).resolve().parents[1] / "data" / "demo_eval.jsonl"
DATA = DEMO_SET.parent
REFUSE = {  # the two unanswerable demo questions and one answerable one (demo-008)
    "What dose of oseltamivir should a 4-year-old with influenza get?",
    "What IV vancomycin loading dose should I use for suspected MRSA pneumonia?",
    "Is there anything about tendons I should warn a 70-year-old on prednisolone about before starting ciprofloxacin?",
}
# Floors that the scripted answers and hash-embedder retrieval may not reach; the tests set their own.
LOW = ["--min", "must_include=0", "--min", "abstention_recall=0", "--min", "gold_at_5=0", "--min", "faithfulness=0",
       "--min", "citation_validity=0"]


class ScriptedQA:
    """The product's retrieval with a scripted answerer, so that these tests do not move with answer quality.

    It refuses the questions in `refuse`; otherwise it answers with the first sentence of the best prose
    passage, cited. Abstention figures are therefore known: precision 2/3, recall 1.
    """

    def __init__(self, qa: QA, refuse: set[str]) -> None:
        self.qa, self.engine, self.refuse = qa, qa.engine, refuse

    @property
    def index_version(self) -> str:
        return self.qa.index_version

    def answer(self, question: str, filters=None, generator: str | None = None, k: int | None = None) -> Answer:
        hits = tuple(self.qa.retrieve(question, k, filters))
        if question in self.refuse:
            return Answer(question, "No answer.", (), hits, True, "scripted", index_version=self.index_version)
        hit = next(h for h in hits if h.chunk.kind == "text")
        quote = split_sentences(hit.chunk.text)[0]
        return Answer(question, f"{quote} [1]", (Citation(1, hit, quote),), hits, False, "scripted",
                      index_version=self.index_version)


@pytest.fixture(scope="module")
def hashed_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus ingested with the hash embedder (fast; answers are poorer than the real model's)."""
    from fakes import HashEmbedder

    from ingest.pipeline import ingest

    home = tmp_path_factory.mktemp("hashed-demo")
    report = ingest([DATA], Settings.from_env(home=home), HashEmbedder())
    assert not report.failed
    return home


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to open an internet connection fails the test (ragas telemetry included)."""
    import socket

    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def home(hashed_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the hashed demo home, answered through QA with the hash embedder."""
    from fakes import HashEmbedder

    copy = tmp_path / "home"
    shutil.copytree(hashed_demo, copy)
    monkeypatch.setenv("GQA_HOME", str(copy))
    monkeypatch.setattr("eval.runner.QA", lambda settings: ScriptedQA(QA(settings, embedder=HashEmbedder()), REFUSE))
    return copy


def _eval(home: Path, report: Path, *extra: str) -> int:
    return main(["eval", str(DEMO_SET), "--report", str(report), "--no-progress", *extra])


def test_report_files_written_and_readable(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                           no_network: list[object]):
    out = tmp_path / "report"
    assert _eval(home, out, *LOW) == 0
    assert no_network == []
    stdout = capsys.readouterr().out
    assert "PASS" in stdout and str(out) in stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"demo-{i:03d}" for i in range(1, 11)]
    for r in rows:
        assert {"answer", "abstained", "citations", "faithfulness", "gold_at_5", "must_include",
                "citation_validity", "latency_ms", "context_recall", "item_score", "unsupported"} <= set(r)
        if r["abstained"]:
            assert r["faithfulness"] is None and "refused" in r["faithfulness_note"]
    summary = json.loads((out / "summary.json").read_text())
    gen = (home / "gqa.sqlite").exists() and sqlite3.connect(home / "gqa.sqlite").execute(
        "SELECT value FROM meta WHERE key='current_generation'").fetchone()[0]
    assert summary["index_version"] == gen
    assert summary["generator"] == "scripted" and summary["judge"]["name"] == "offline"
    assert summary["versions"]["ragas"] == "0.4.3" and summary["duration_s"] >= 0
    assert summary["dataset"] == {"path": str(DEMO_SET), "key": summary["dataset"]["key"], "items": 10,
                                  "limit": None, "answerable": 8, "unanswerable": 2}
    assert summary["passed"] is True and summary["previous_run"] is None
    m = summary["metrics"]
    assert 0 <= m["gold_at_5"] <= 1
    assert (m["abstention_precision"], m["abstention_recall"]) == (round(2 / 3, 4), 1.0)
    assert summary["counts"]["answered"] == 7 and summary["counts"]["false_refusals"] == 1
    html = (out / "report.html").read_text()
    assert "What&#x27;s the most oral ciprofloxacin" in html and "What's the most" not in html
    assert html.index("<h2>Questions, worst first</h2>") > html.index("trend.png")
    assert (out / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = sqlite3.connect(home / "gqa.sqlite").execute("SELECT run_id, passed FROM eval_runs").fetchall()
    assert runs == [(summary["run_id"], 1)]


def _with_folds(path: Path, folds: dict[str, int]) -> Path:
    """A copy of the demo set in which the named items carry a fold (the others none)."""
    lines = []
    for line in DEMO_SET.read_text().splitlines():
        obj = json.loads(line)
        if obj["id"] in folds:
            obj["fold"] = folds[obj["id"]]
        lines.append(json.dumps(obj))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_figures_per_fold_and_category(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """The scripted refusals (demo-008 answerable, demo-009/010 not) land in the groups they belong to."""
    folds = {f"demo-{i:03d}": 0 for i in (1, 2, 3, 4, 9)} | {f"demo-{i:03d}": 1 for i in (5, 6, 7, 8)}
    dataset = _with_folds(tmp_path / "folds.jsonl", folds)  # demo-010 has no fold
    out = tmp_path / "r"
    assert main(["eval", str(dataset), "--report", str(out), "--no-progress", *LOW]) == 0
    stdout = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    by_fold, by_cat = summary["by_fold"], summary["by_category"]
    assert list(by_fold) == ["0", "1", "-"]
    assert [(g["items"], g["answerable"]) for g in by_fold.values()] == [(5, 4), (4, 4), (1, 0)]
    assert [g["answerable_refused"] for g in by_fold.values()] == [0.0, 0.25, None]
    assert [g["abstention_recall"] for g in by_fold.values()] == [1.0, None, 1.0]
    assert (by_cat["dosing"]["items"], by_cat["dosing"]["answerable_refused"]) == (4, 0.0)
    assert (by_cat["safety"]["answerable_refused"], by_cat["safety"]["abstention_recall"]) == (1.0, None)
    assert summary["metrics"]["answerable_refused"] == 0.125  # the existing fields stay, one added
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["fold"] for r in rows] == [folds.get(r["id"]) for r in rows]
    words = sorted(len(strip_markers(r["answer"]).split()) for r in rows if r["fold"] == 1 and not r["abstained"])
    assert len(words) == 3 and by_fold["1"]["median_words"] == words[1]  # the middle of three answers
    table = stdout[stdout.index("  fold"):].splitlines()
    assert table[0].split()[:3] == ["fold", "items", "ans"]
    assert table[2].split()[:3] == ["1", "4", "4"] and "0.250" in table[2].split()
    assert table[3].split()[:3] == ["-", "1", "0"]
    assert "  category" in stdout and any(line.split()[:2] == ["safety", "1"] for line in stdout.splitlines())
    html = (out / "report.html").read_text()
    assert "<h2>Per fold" in html and "<h2>Per category</h2>" in html
    fold_table = html[html.index("<h2>Per fold"):html.index("<h2>Trend")]
    assert fold_table.count("<tr>") == 4 and "<td>-</td><td class=num>1</td><td class=num>0</td>" in fold_table


def test_floor_failure_exits_1_with_one_line(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert _eval(home, tmp_path / "r", *LOW, "--min", "abstention_precision=0.9") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["guideline-qa eval: FAIL abstention_precision 0.667 is below the floor 0.900 "
                   "(GQA_EVAL_MIN_ABSTENTION_PRECISION)"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["passed"] is False


def test_drop_against_previous_run_exits_1(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert _eval(home, tmp_path / "first", *LOW) == 0
    first = json.loads((tmp_path / "first" / "summary.json").read_text())
    db = sqlite3.connect(home / "gqa.sqlite")
    better = dict(first["metrics"], abstention_precision=0.8667)
    with db:  # last night's run was better
        db.execute("UPDATE eval_runs SET metrics = ? WHERE run_id = ?", (json.dumps(better), first["run_id"]))
    capsys.readouterr()
    assert _eval(home, tmp_path / "second", *LOW, "--max-drop", "0.1") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"guideline-qa eval: FAIL abstention_precision dropped 0.200 (0.867 -> 0.667) against run "
                   f"{first['run_id']}, more than the allowed 0.100 (GQA_EVAL_MAX_DROP)"]
    second = json.loads((tmp_path / "second" / "summary.json").read_text())
    assert second["previous_run"]["run_id"] == first["run_id"]
    # a failed run is no baseline: the same figures again still fail against the last run that passed
    assert _eval(home, tmp_path / "again", *LOW, "--max-drop", "0.1") == 1
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["previous_run"]["run_id"] == first["run_id"] and again["passed"] is False
    # a --limit run is its own trend: it never compares with (or fails against) the full set
    assert _eval(home, tmp_path / "third", *LOW, "--limit", "3") == 0
    third = json.loads((tmp_path / "third" / "summary.json").read_text())
    assert third["previous_run"] is None and third["dataset"]["items"] == 3


def test_judge_failure_fails_the_run(home: Path, tmp_path: Path):
    from fakes import HashEmbedder
    from test_eval_ragas import ScriptedJudge

    settings = Settings.from_env(home=home)
    qa = ScriptedQA(QA(settings, embedder=HashEmbedder()), REFUSE)
    result = run_eval(EvalConfig(dataset=DEMO_SET, report_dir=tmp_path / "r", record=False),
                      settings, qa=qa, judge=ScriptedJudge())
    answered = [r for r in result.rows if r["abstained"] is False]
    assert answered and all(r["error"].startswith("judge: RuntimeError") for r in answered)
    assert f"judge failed on {len(answered)} of 10 questions (first: {answered[0]['id']}: " in result.failures[-1]
    assert (tmp_path / "r" / "report.html").exists()  # the report still shows what went wrong
    assert not (home / "gqa.sqlite").exists() or not sqlite3.connect(home / "gqa.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE name='eval_runs'").fetchall()


def test_bad_dataset_is_a_one_line_error(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n')
    assert main(["eval", str(bad), "--no-progress"]) == 1
    assert "bad.jsonl line 1: missing field(s) answerable" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_set_end_to_end(demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture):
    """The real model over the demo corpus, through `main` exactly as the nightly job runs it."""
    copy = tmp_path / "home"
    shutil.copytree(demo_home, copy)  # the run records itself; the shared demo home stays read-only
    monkeypatch.setenv("GQA_HOME", str(copy))
    out = tmp_path / "report"
    rc = main(["eval", str(DEMO_SET), "--report", str(out)])
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert rc == (0 if summary["passed"] else 1), captured.err
    assert len(captured.err.strip().splitlines()) >= len(summary["failures"])
    assert len((out / "results.jsonl").read_text().splitlines()) == 10
    m = summary["metrics"]
    # extractive answers are verbatim quotes: the offline judge must find every statement supported
    assert m["faithfulness"] is None or m["faithfulness"] >= 0.9
    assert m["citation_validity"] in (None, 1.0)
    assert m["gold_at_10"] is not None and m["context_recall"] is not None
    assert (out / "report.html").exists() and (out / "trend.png").exists()
