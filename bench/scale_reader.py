"""A reader process for bench/scale.py: answers questions through rag.qa.QA in a loop, one JSON line each.

    python bench/scale_reader.py HOME QUESTIONS_FILE STOP_FILE [MAX_SECONDS]

Prints {"event": "first", ...} after its first answer (with the time spent importing, building QA and
answering), then {"event": "answer", "start", "end", "gen"} per answer (wall clock, time.time(), so the
parent can set them against the moment a publish committed), until STOP_FILE exists or MAX_SECONDS
have passed; then {"event": "done", "rss_mb", "peak_rss_mb", "answers"}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

STARTED = time.time()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> tuple[float, float]:
    """(resident set now, its peak) of this process in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kb = {k: float(fields[k].split()[0]) for k in ("VmRSS", "VmHWM") if k in fields}
    return kb.get("VmRSS", 0.0) / 1024, kb.get("VmHWM", 0.0) / 1024


def say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: list[str]) -> int:
    home, questions, stop = Path(argv[0]), Path(argv[1]).read_text().splitlines(), Path(argv[2])
    limit = float(argv[3]) if len(argv) > 3 else 600.0
    from rag.config import Settings
    from rag.qa import QA

    imported = time.time()
    qa = QA(Settings.from_env(home=home))
    built = time.time()
    a = qa.answer(questions[0])
    now = time.time()
    say("first", start=built, end=now, gen=a.index_version, import_s=round(imported - STARTED, 3),
        qa_s=round(built - imported, 3), answer_s=round(now - built, 3), abstained=a.abstained)
    n = 1
    while not stop.exists() and time.time() - STARTED < limit:
        t = time.time()
        a = qa.answer(questions[n % len(questions)])
        say("answer", start=t, end=time.time(), gen=a.index_version)
        n += 1
    rss, peak = rss_mb()
    say("done", rss_mb=round(rss, 1), peak_rss_mb=round(peak, 1), answers=n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
