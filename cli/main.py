"""`guideline-qa`: the one console script; `main(argv) -> exit code` (0 ok, 2 some inputs failed, 1 error)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import replace

from rag.errors import ConfigError, GQAError

log = logging.getLogger("guideline-qa")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; this product reserves 2 for 'some inputs failed'."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    p = _Parser(prog="guideline-qa", description="Question answering over clinical guidelines and formularies.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    p.add_argument("--database-url", metavar="URL",
                   help="keep the whole store in this PostgreSQL database (postgresql://...; default: "
                        "GQA_DATABASE_URL, else the embedded store in GQA_HOME)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("ingest", help="ingest PDFs (files or folders) and publish a new index")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--family", help="document family (default: derived from the file name)")
    s.add_argument("--version", dest="doc_version", metavar="LABEL",
                   help="version label (default: a year in the file name or title, else the PDF date)")
    s.add_argument("--ocr", action="store_true",
                   help="read pages without a text layer (scans) by OCR; needs ocrmypdf and tesseract (README)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="extract and embed on Ray (extra cluster): no ADDRESS starts a local Ray; auto or "
                        "ray://HOST:10001 connects to a cluster")
    s.set_defaults(func=_cmd_ingest)

    s = sub.add_parser("docs", help="list every ingested document")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_docs)

    s = sub.add_parser("retrieve", help="show the passages retrieved for a question")
    s.add_argument("question")
    s.add_argument("-k", type=int, default=None, help="number of passages (default 10)")
    s.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    s.add_argument("--type", dest="doc_types", action="append", default=[],
                   choices=["guideline", "formulary", "label", "guidance"], help="only this document type")
    s.add_argument("--include-superseded", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_retrieve)

    for register in _extensions():
        register(sub)
    return p


def _extensions() -> list[Callable]:
    """Subcommands contributed by the answering, app and evaluation packages (added as they exist)."""
    regs: list[Callable] = []
    for mod in ("cli.answer_cmd", "cli.serve_cmd", "cli.eval_cmd", "cli.backup_cmd", "cli.docs_cmd",
                "cli.page_cmd", "cli.reindex_cmd", "cli.inspect_cmd", "cli.api_cmd",
                "cli.audit_cmd", "cli.mcp_cmd", "cli.db_cmd"):
        try:
            module = __import__(mod, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        regs.append(module.register)
    return regs


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; errors print one line to stderr."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        _use_database(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `guideline-qa docs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exiting flushes nowhere
        return 0
    except GQAError as exc:
        print(f"guideline-qa: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):  # locked, no such column: not damage
            raise
        # damage past what opening checks (a page in the middle of the file)
        print(f"guideline-qa: error: {_damaged_database(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("guideline-qa: interrupted", file=sys.stderr)
        return 130


def _use_database(args: argparse.Namespace) -> None:
    """--database-url overrides GQA_DATABASE_URL for this command and the processes it starts (the app's
    server); every command but `db` then refuses a database not upgraded to this release's schema."""
    if args.database_url is not None:
        os.environ["GQA_DATABASE_URL"] = args.database_url
    url = os.environ.get("GQA_DATABASE_URL", "")
    if url and args.command != "db":
        from rag.pg.connect import connect

        for each in (url, os.environ.get("GQA_DATABASE_READ_URL", "")):  # and the read replica, when set
            if each:
                connect(each).close()  # StoreError, one line: unreachable, bad URL or password, old schema


def _damaged_database(exc: Exception) -> str:
    """The one-line message for a database found damaged mid-command."""
    from rag.config import Settings
    from rag.snapshot import database_path
    from rag.store import damaged

    return str(damaged(database_path(Settings.from_env().home), str(exc)))


def settings_from(args: argparse.Namespace):
    """Settings from the environment (flags override where a command has them)."""
    from rag.config import Settings

    return Settings.from_env()


def _cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingest.pipeline import ingest
    from rag.embedder import from_settings as embedder_from

    settings = settings_from(args)
    if args.ocr:
        settings = replace(settings, ocr=True)
    if args.ray is not None:  # Ray is imported only here, and its absence is told before a model loads
        from ingest.ray_ingest import check_address, ingest_on_ray, require_ray

        require_ray()
        address = check_address(args.ray)
    embedder = embedder_from(settings)
    bars: dict[str, tqdm] = {}
    show = sys.stderr.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        if not show:
            return
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(desc=stage, unit=stage[:-1], position=len(bars)))
        bar.update(done - bar.n)

    if args.ray is not None:
        report = ingest_on_ray(args.paths, settings, embedder, address, family=args.family,
                               version=args.doc_version, on_progress=progress)
    else:
        report = ingest(args.paths, settings, embedder, family=args.family, version=args.doc_version,
                        on_progress=progress)
    for bar in bars.values():
        bar.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(format_report(report))
    return 2 if report.failed else 0


def format_report(report) -> str:
    """The human summary table of an ingest."""
    from ingest.chunk import CHUNKER_VERSION
    from ingest.versions import version_note

    rows: list[tuple[str, str, str]] = []
    for e in report.added:
        rows.append(("added", _name(e["file"]), version_note(e)))
    for e in report.new_version:
        rows.append(("new version", _name(e["file"]), version_note(e)))
    for e in report.unchanged:
        old = e.get("chunker", CHUNKER_VERSION) < CHUNKER_VERSION
        same = f"a copy of {e['duplicate_of']}: identical bytes, not stored again" if e.get("duplicate_of") \
            else "identical bytes"
        rows.append(("unchanged", _name(e["file"]), f"version {e['version']} ({same})"
                     + (f"; moved from family {e['moved_from']}: " + version_note(e) if e.get("moved_from") else "")
                     + ("; cut into passages by an older release and kept so: `guideline-qa reindex` re-cuts it "
                        "in place (README, Versions)" if old else "")))
    for e in report.failed:
        rows.append(("FAILED", _name(e["file"]), e["error"]))
    width = max([len(r[1]) for r in rows] + [4])
    lines = [f"{'result':<12} {'file':<{width}}  detail", "-" * (width + 40)]
    lines += [f"{a:<12} {b:<{width}}  {c}" for a, b, c in rows]
    lines.append(
        f"{len(report.added)} added, {len(report.new_version)} new version, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; {report.pages} pages, {report.chunks} chunks "
        f"({report.embedded} embedded, rest cached); "
        + (f"published generation {report.generation}" if report.generation else "nothing new to publish")
    )
    return "\n".join(lines)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1] or path


def _cmd_docs(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out = documents_json(settings)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    if not out:
        print(f"no documents ingested in {settings.home}")
        return 0
    cols = ["file", "family", "version", "status", "pages", "chunks", "ingested_at", "sha256"]
    table = [[str(d[c])[:12] + "…" if c == "sha256" else str(d[c]) for c in cols] for d in out]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    for d in out:
        if d["status"] == "withdrawn":
            print(f"withdrawn {d['file']} (doc {d['doc_id']}) by {d['withdrawn_by']} at {d['withdrawn_at']}: "
                  f"{d['withdrawn_reason']}; `guideline-qa reinstate {d['file']}` serves it again")
    return 0


def documents_json(settings) -> list[dict]:
    """The `docs --json` list (also `GET /v1/documents`): every ingested document, withdrawn ones included."""
    from ingest.versions import withdrawal_fields
    from rag.storage import exists, open_store

    docs, events = [], []
    if exists(settings):
        store = open_store(settings, readonly=True)
        try:
            docs, events = store.documents(), store.withdrawals()
        finally:
            store.close()
    return [
        {"file": d.file_name, "title": d.title, "family": d.family, "version": d.version, "type": d.doc_type,
         "status": d.status, "superseded_by": d.superseded_by, "pages": d.pages, "chunks": d.chunks,
         "sha256": d.sha256, "ingested_at": d.ingested_at, "doc_id": d.doc_id, **withdrawal_fields(d, events)}
        for d in docs
    ]


def engine_for(args: argparse.Namespace):
    """An Engine over the configured home."""
    from rag.engine import Engine

    return Engine(settings_from(args))


def filters_from(args: argparse.Namespace):
    """Filters from --family/--type/--include-superseded."""
    from rag.retrieve import Filters

    return Filters(tuple(getattr(args, "family", []) or []), tuple(getattr(args, "doc_types", []) or []),
                   bool(getattr(args, "include_superseded", False)))


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from rag.qa import check_question

    if args.k is not None and args.k < 1:
        raise ConfigError(f"-k {args.k}: must be at least 1")
    question = check_question(args.question)  # the same rules as `ask`: not empty, under 2000 characters
    hits = engine_for(args).retrieve(question, k=args.k, filters=filters_from(args))
    if args.json:
        print(json.dumps(retrieve_json(question, hits), indent=1))
        return 0
    for h in hits:
        print(f"[{h.rank}] {h.score:.3f}  {h.doc.title} ({h.doc.version}, {h.doc.status}) p.{h.chunk.page}"
              f" [printed {h.chunk.page_label}]  {h.chunk.section}")
        print("    " + h.chunk.text[:300].replace("\n", " / "))
    return 0


def retrieve_json(question: str, hits) -> dict:
    """The `retrieve --json` object (also `POST /v1/retrieve`): the question as searched and its hits."""
    return {"question": question, "hits": [h.to_json() for h in hits]}


if __name__ == "__main__":
    sys.exit(main())
