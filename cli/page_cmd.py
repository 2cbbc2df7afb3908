"""`guideline-qa page FILE PAGE [--highlight TEXT] --out PAGE.png`: a page as printed, the quote highlighted."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rag.errors import ConfigError


def register(sub) -> None:
    """Add the `page` subcommand."""
    s = sub.add_parser("page", help="render a PDF page to PNG, with a quote highlighted where it is printed")
    s.add_argument("file", metavar="FILE", help="an ingested document's file name or doc_id, or a path to a PDF")
    s.add_argument("page", metavar="PAGE", type=int, help="1-based PDF page number (not the printed label)")
    s.add_argument("--highlight", metavar="TEXT",
                   help="text to highlight (a sentence, or a table row as 'cell | cell'); exit 2 if not on the page")
    s.add_argument("--out", required=True, type=Path, metavar="PAGE.png", help="where to write the PNG")
    s.add_argument("--dpi", type=int, default=None, help="resolution (default 120)")
    s.set_defaults(func=_cmd_page)


def _cmd_page(args: argparse.Namespace) -> int:
    from cli.main import settings_from
    from rag.pages import DEFAULT_DPI, PageCache, render_page

    settings = settings_from(args)
    data, name = pdf_bytes(settings.home, args.file)
    if args.highlight is not None and not args.highlight.strip():
        raise ConfigError("--highlight is empty: give the text to highlight, or leave the flag out")
    if not args.out.parent.is_dir():  # before rendering: fail fast
        raise ConfigError(f"--out {args.out}: the folder {args.out.parent} does not exist; create it first")
    cache = PageCache(settings.home / "pages", settings.page_cache_mb * 1024 * 1024)
    image = render_page(data, args.page, args.highlight, args.dpi or DEFAULT_DPI, cache, name)
    write_atomically(args.out, image.png)
    if image.found is False:
        shown = args.highlight if len(args.highlight) <= 60 else args.highlight[:57] + "..."
        print(f"guideline-qa: {shown!r} is not on page {args.page} of {name}; wrote the page without a highlight "
              f"to {args.out}", file=sys.stderr)
        return 2
    boxes = len(image.boxes)
    print(f"wrote {args.out}: page {image.page} of {image.pages} of {name} at {image.dpi} dpi"
          + (f", highlighted in {boxes} box{'es' if boxes != 1 else ''}" if image.found else ""))
    return 0


def pdf_bytes(home: Path, ref: str) -> tuple[bytes, str]:
    """The PDF that FILE names (a path to a PDF, else an ingested document's name or doc_id) and its name."""
    from ingest.withdraw import find_document
    from rag.pages import read_source
    from rag.storage import read_home

    path = Path(ref).expanduser()
    if path.is_file():
        try:
            return path.read_bytes(), path.name
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    store = read_home(home)
    if store is None:
        raise ConfigError(f"{ref!r} is not a file and nothing is ingested in {home}; give a path to a PDF")
    try:
        doc = find_document(store.documents(), ref, home)
        recorded = store.source_path(doc.doc_id)
    finally:
        store.close()
    return read_source(home, doc, recorded), doc.file_name


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder (never half a PNG)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"--out {path}: cannot be written ({exc.strerror}); choose another place") from None
