"""OCR of the pages that have no text layer (scans), with ocrmypdf and tesseract from the system's packages.

Only pages on which pypdf finds (almost) no text and that draw an image are read by OCR; every other
page keeps pypdf's text. Those pages are copied, in order, into a PDF of their own, so ocrmypdf's
sidecar text holds one form-feed-separated part per page and each part maps back to its true page
number. What is hashed is still the original file's bytes (the doc id is the original's sha256).
ocrmypdf, not tesseract alone, because it rasterises PDF pages (through Ghostscript) at the resolution
of their images; it runs in the extraction worker, as a subprocess, only when a page needs it.

Known limits: English only (tesseract-ocr-eng), no deskew or page rotation, and OCR misreads
characters (a 1 for an l, a dose's digit): pages and chunks read by OCR carry `ocr=True`, and the app
asks readers to check such text against the page.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from ingest.extract import BadDocument, Extracted, PdfBytes, extract_pdf
from rag.types import Chunk, Page

log = logging.getLogger(__name__)

# The Debian/Ubuntu packages that provide the tools (`make setup` installs them where it can).
INSTALL = "sudo apt-get install -y ocrmypdf tesseract-ocr tesseract-ocr-eng"
TOOLS = ("ocrmypdf", "tesseract")
# A page with fewer non-space characters than this has no usable text layer: a scan, perhaps with a
# stamped page number (ingest/extract.py refuses a whole document on the same 20 a page).
MIN_TEXT_CHARS = 20
# Seconds tesseract may spend on one page before ocrmypdf gives up on it (ocrmypdf's default is 180;
# a clear A4 scan takes about 1 s).
PAGE_TIMEOUT_S = 120
# ocrmypdf exits 3 when a dependency is missing (e.g. tesseract's language data).
_MISSING_DEPENDENCY = 3
_SKIPPED = re.compile(r"^\[OCR skipped on page\(s\)[^\]]*\]", re.M)
_WS = re.compile(r"[ \t\u00a0]+")


def needs_ocr(text: str) -> bool:
    """True when pypdf's text of a page is too little to be its text layer.

    Example: '' -> True; '12' -> True; 'Give 5 mg daily to adults over 18.' -> False
    """
    return len("".join(text.split())) < MIN_TEXT_CHARS


def missing_tools() -> list[str]:
    """The OCR programs not on PATH, e.g. ['ocrmypdf'] ([] when both are installed)."""
    return [t for t in TOOLS if shutil.which(t) is None]


def ocr_pages(data: bytes, numbers: list[int], name: str) -> dict[int, str]:
    """OCR text of the 1-based pages `numbers` of the PDF `data` that draw an image, by page number.

    Pages without any image (a blank page) are left out: there is nothing to read. BadDocument names
    the file and the fix when the tools are missing or OCR fails.
    """
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        reader.decrypt("")  # extract_pdf has opened it with the empty password already
    scans = [n for n in numbers if _draws_image(reader.pages[n - 1])]
    if not scans:
        return {}
    missing = missing_tools()
    if missing:
        raise BadDocument(f"{name}: {len(scans)} page(s) have no text layer and need OCR, but "
                          f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; "
                          f"install them with `{INSTALL}` (or `make setup`) and ingest again")
    writer = pypdf.PdfWriter()
    for n in scans:
        writer.add_page(reader.pages[n - 1])
    with tempfile.TemporaryDirectory(prefix="gqa-ocr-") as tmp:
        src, side = Path(tmp) / "scans.pdf", Path(tmp) / "scans.txt"
        with open(src, "wb") as fh:
            writer.write(fh)
        text = _run_ocrmypdf(src, side, name, scans)
    parts = text.split("\f")
    if parts and not parts[-1].strip() and len(parts) == len(scans) + 1:
        parts.pop()  # a trailing form feed after the last page
    if len(parts) != len(scans):
        raise BadDocument(f"{name}: OCR returned {len(parts)} pages of text for {len(scans)} scanned pages; "
                          "ingest it without --ocr, or OCR it yourself (ocrmypdf) and ingest the result")
    log.info("%s: OCR read pages %s", name, scans)
    return {n: clean(p) for n, p in zip(scans, parts, strict=True)}


def _run_ocrmypdf(src: Path, side: Path, name: str, scans: list[int]) -> str:
    """ocrmypdf's sidecar text of every page of `src` (form feeds between pages)."""
    # --force-ocr: these pages are chosen as lacking text, so any stray text layer is replaced, not kept;
    # --output-type none: only the sidecar text is wanted, the stored source stays the original file.
    cmd = ["ocrmypdf", "--force-ocr", "--output-type", "none", "--sidecar", str(side), "-l", "eng",
           "--tesseract-timeout", str(PAGE_TIMEOUT_S), "--quiet", str(src), "-"]
    limit = 60 + 2 * PAGE_TIMEOUT_S * len(scans)
    pages = ", ".join(map(str, scans[:10])) + (" ..." if len(scans) > 10 else "")
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise BadDocument(f"{name}: OCR of pages {pages} took over {limit} s; ingest it without --ocr, "
                          "or OCR it yourself (ocrmypdf) and ingest the result") from None
    if run.returncode != 0:
        why = " ".join((run.stderr or "").split())[-200:] or "no message"
        if run.returncode == _MISSING_DEPENDENCY:
            raise BadDocument(f"{name}: OCR cannot run ({why}); install `{INSTALL}` and ingest again")
        raise BadDocument(f"{name}: OCR of pages {pages} failed (ocrmypdf exit {run.returncode}: {why}); "
                          "ingest it without --ocr, or save it to a new PDF and ingest that")
    return side.read_text(encoding="utf-8", errors="replace")


def _draws_image(page) -> bool:
    try:
        return len(page.images) > 0  # image XObjects and inline images
    except Exception:  # noqa: BLE001 - a malformed image dictionary: let OCR look at the page
        return True


def clean(text: str) -> str:
    """OCR text as page text: ocrmypdf's skip notes dropped, runs of spaces collapsed, lines stripped.

    Example: 'Give  5 mg \\n\\n\\n\\nDaily ' -> 'Give 5 mg\\n\\nDaily'
    """
    lines = [_WS.sub(" ", ln).strip() for ln in _SKIPPED.sub("", text).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def extract_with_ocr(src: PdfBytes) -> Extracted:
    """extract_pdf, with the pages that lack a text layer read by OCR and marked `ocr`; page numbers
    stay those of the original file."""
    read: dict[int, str] = {}
    scanned: list[int] = []  # the pages OCR read (with or without finding text)
    returned = False

    def hook(data: bytes, raw: list[str]) -> list[str]:
        nonlocal returned
        lacking = [i + 1 for i, t in enumerate(raw) if needs_ocr(t)]
        ocred = ocr_pages(data, lacking, src.name) if lacking else {}
        scanned.extend(ocred)
        # OCR's text replaces pypdf's only where it read more (a page number stamped on a blank page stays)
        read.update({n: t for n, t in ocred.items() if len(t.strip()) > len(raw[n - 1].strip())})
        returned = True  # a BadDocument after this is extract_pdf's no-text refusal
        return [read.get(i + 1, t) for i, t in enumerate(raw)]

    try:
        ext = extract_pdf(src, ocr=hook)
    except BadDocument:
        if not returned:
            raise
        if not scanned:
            raise BadDocument(f"{src.name}: no extractable text and no page image to read by OCR "
                              "(is every page blank?)") from None
        raise BadDocument(f"{src.name}: no extractable text, not even by OCR of its {len(scanned)} scanned "
                          "page(s); is the scan legible (about 300 dpi, upright)?") from None
    if not read:
        return ext
    return replace(ext, pages=[replace(p, ocr=True) if p.number in read else p for p in ext.pages])


def mark_ocr(chunks: list[Chunk], pages: list[Page]) -> list[Chunk]:
    """The chunks with `ocr=True` on each that has text from a page read by OCR.

    Example: pages 1-3 with page 2 read by OCR -> a chunk on pages 1-2 is marked, one on page 3 is not
    """
    ocr = {p.number for p in pages if p.ocr}
    if not ocr:
        return chunks
    return [replace(c, ocr=True) if ocr & set(range(c.page, c.page_end + 1)) else c for c in chunks]
