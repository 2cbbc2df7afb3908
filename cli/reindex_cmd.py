"""`guideline-qa reindex [--family NAME ...] [--json]`: re-cut documents cut by an older release, in place."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    """Add the `reindex` subcommand."""
    s = sub.add_parser("reindex", help="re-cut the documents an older release cut, from their source files, and "
                                       "publish them atomically")
    s.add_argument("--family", dest="families", action="extend", nargs="+", default=[], metavar="NAME",
                   help="only these families (repeatable)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=_cmd_reindex)


def _cmd_reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cli.main import settings_from
    from ingest.reindex import reindex
    from rag.embedder import from_settings as embedder_from

    settings = settings_from(args)
    embedder = embedder_from(settings)
    bar: list[tqdm] = []

    def progress(stage: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            if not bar:
                bar.append(tqdm(desc="re-cut", unit="doc", total=total))
            bar[0].update(done - bar[0].n)

    report = reindex(settings, embedder, args.families or None, on_progress=progress)
    for b in bar:
        b.close()
    print(json.dumps(report.to_json(), indent=1) if args.json else format_reindex(report, args.families))
    return 2 if report.failed else 0


def format_reindex(report, families: list[str] | None = None) -> str:
    """The human summary of a reindex: one line per document re-cut or kept, then the totals.

    Example: nothing outdated -> 'nothing to re-cut: the 3 documents are cut by chunker 2 (this release)'
    """
    from ingest.chunk import CHUNKER_VERSION

    scope = f" of famil{'y' if len(families or []) == 1 else 'ies'} {', '.join(families)}" if families else ""
    if not report.recut and not report.failed:
        return (f"nothing to re-cut: the {report.up_to_date} documents{scope} are cut by chunker {CHUNKER_VERSION} "
                "(this release)")
    rows = [("re-cut", e["file"], f"chunker {e['from_chunker']} -> {e['chunker']}: {e['chunks_before']} -> "
                                  f"{e['chunks']} chunks ({e['embedded']} embedded)") for e in report.recut]
    rows += [("KEPT", e["file"], e["error"]) for e in report.failed]
    width = max(len(r[1]) for r in rows)
    lines = [f"{a:<8} {b:<{width}}  {c}" for a, b, c in rows]
    tail = (f"published generation {report.generation}" if report.generation
            else "nothing published: clinicians keep the current index")
    lines.append(f"{len(report.recut)} re-cut, {len(report.failed)} kept as they were (see above), "
                 f"{report.up_to_date} already cut by chunker {CHUNKER_VERSION}{scope}; {report.pages} pages, "
                 f"{report.chunks} chunks ({report.embedded} embedded, rest cached); {tail}")
    return "\n".join(lines)
