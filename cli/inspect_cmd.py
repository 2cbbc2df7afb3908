"""`guideline-qa inspect FILE [--page N] [--json]`: how the product read a document, page by page."""

from __future__ import annotations

import argparse
import json
import textwrap

HELP = """How a document was read: its pages (printed label, OCR, the lines dropped as running header or
footer) and its chunks in order (kind, section path, page span, cut flags, table cells, recommendation
fields, text); each chunk is listed under the page it starts on. FILE is an ingested document's file
name or doc_id, or a path to a PDF: one already ingested (the same bytes) is shown as it is served; any
other is extracted and chunked in memory with the configured settings, as `ingest` would cut it, and
nothing is stored (a long PDF takes as long as extracting it)."""


def register(sub) -> None:
    """Add the `inspect` subcommand."""
    s = sub.add_parser("inspect", help="how a document was read: pages, dropped header/footer lines, chunks",
                       description=HELP)
    s.add_argument("file", metavar="FILE", help="an ingested document's file name or doc_id, or a path to a PDF")
    s.add_argument("--page", type=int, metavar="N", help="only PDF page N (1-based, not the printed label)")
    s.add_argument("--json", action="store_true", help="print one JSON object (README, Command line)")
    s.set_defaults(func=_cmd_inspect)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from cli.main import settings_from
    from ingest.inspection import inspect_document

    out = inspect_document(settings_from(args), args.file, args.page)
    print(json.dumps(out, indent=1, ensure_ascii=False) if args.json else describe(out))
    return 0  # a closed pipe (`inspect FILE | head`) is handled by cli.main.main, for every command


def describe(out: dict) -> str:
    """The text form of an inspection: the document, then each page with its dropped lines and chunks."""
    d = out["document"]
    cut = f"cut {d['cut']}" if d["cut"] is not None else "read in memory, not stored"
    old = " (older than this release's: `guideline-qa reindex` re-cuts it)" if d["outdated"] else ""
    lines = [f"{d['file']} (doc {d['doc_id']}): {d['title']}",
             f"family {d['family']} · version {d['version']} · {d['status']} · {d['type']} · {cut} · "
             f"chunker {d['chunker']}{old} · {d['pages']} pages, {d['chunks']} chunks"]
    for p in out["pages"]:
        lines += ["", f"page {p['number']} (printed {p['label']})" + (" · OCR" if p["ocr"] else "")]
        if p["dropped"] is None:
            lines.append("  dropped: not recorded (stored by an older release)")
        else:
            lines.append("  dropped: " + (" / ".join(repr(x) for x in p["dropped"]) if p["dropped"] else "none"))
        if not p["chunks"]:
            lines.append("  no chunk starts on this page")
        for c in p["chunks"]:
            lines += _chunk_lines(c)
    return "\n".join(lines)


def _chunk_lines(c: dict) -> list[str]:
    """One chunk: a head line (ordinal, kind, span, cut flags, section), its fields, its text indented."""
    from ingest.inspection import recommendation_items

    span = f"p.{c['page']}" + (f"-{c['page_end']}" if c["page_end"] != c["page"] else "")
    flags = [f for f, on in (("starts mid", c["starts_mid"]), ("ends mid", c["ends_mid"]), ("OCR", c["ocr"])) if on]
    head = f"  #{c['ordinal']} {c['kind']} {span}" + (f" [{', '.join(flags)}]" if flags else "")
    out = [head + (f"  {c['section']}" if c["section"] else "")]
    if c["table"]:
        t = c["table"]
        out += [f"     caption: {t.get('caption') or '-'}", f"     header: {_cells(t.get('header'))}",
                f"     cells: {_cells(t.get('cells'))}"]
    if c["recommendation"]:
        out.append("     " + ", ".join(f"{k}: {v}" for k, v in recommendation_items(c["recommendation"])))
    for ln in c["text"].splitlines() or [""]:
        out += textwrap.wrap(ln, 110, initial_indent="     ", subsequent_indent="     ") or ["     "]
    return out


def _cells(cells) -> str:
    """Cells joined as the page text joins them.

    Example: ['Group', 'Dose'] -> 'Group | Dose'; [['a', 'b'], ['c', 'd']] -> 'a | b / c | d'
    """
    if not cells:
        return "-"
    if all(isinstance(x, list) for x in cells):
        return " / ".join(" | ".join(map(str, r)) for r in cells)
    return " | ".join(map(str, cells))
