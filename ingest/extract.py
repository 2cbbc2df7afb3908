"""Stage 1: read a PDF with pypdf into cleaned pages (printed labels, outline, no running headers)."""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest import drawing, layout
from rag.errors import GQAError
from rag.types import Page

log = logging.getLogger(__name__)


class BadDocument(GQAError):
    """A file that cannot be ingested; the message names the file and the problem."""


@dataclass(frozen=True)
class Extracted:
    """The result of extraction: title, metadata year and cleaned pages."""

    title: str
    pages: list[Page]
    meta_year: str


@dataclass(frozen=True)
class PdfBytes:
    """A file's name and the bytes read from it once: the ingest hashes and parses these same bytes,
    so a file replaced meanwhile is never stored under another version's hash."""

    name: str
    data: bytes


_DIGITS = re.compile(r"\d+")
# (PDF bytes, each page's text) -> the texts with pages lacking a text layer read by OCR (ingest/ocr.py)
OcrHook = Callable[[bytes, list[str]], list[str]]
_WS = re.compile(r"[ \t\u00a0]+")
# A sub-list bullet printed as the letter o (FDA labels set it in a symbol font): written as the white
# bullet it is, so the chunker and the answerer read an item there, not the word 'o'.
_O_BULLET = re.compile(r"^o (?=[\w(])")


def extract_pdf(source: Path | PdfBytes, ocr: OcrHook | None = None) -> Extracted:
    """Read every page of a PDF file, or of bytes already read from one; raise BadDocument with a
    one-line reason when it cannot be read. `ocr(data, page_texts)` may replace the texts of pages
    without a text layer (ingest/ocr.py, `ingest --ocr`)."""
    import pypdf
    from pypdf.errors import PdfReadError

    name = source.name
    if isinstance(source, PdfBytes):
        data = source.data
    else:
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise BadDocument(f"{name}: cannot be read ({exc.strerror})") from None
    if not data:
        raise BadDocument(f"{name}: empty file (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        raise BadDocument(f"{name}: not a PDF (no %PDF- header); only PDF files can be ingested")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))  # many PDFs are encrypted with an empty user password
            except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                opened = False
            if not opened:
                raise BadDocument(f"{name}: encrypted PDF; a password is required (ingest a decrypted copy)")
        n = len(reader.pages)
        labels = _labels(reader, n)
        outline = _outline(reader)
        read = [_page_reading(p) for p in reader.pages]
        raw = [text for text, _ in read]
        title = _title(reader, name)
        meta_year = _meta_year(reader)
    except BadDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise BadDocument(f"{name}: corrupt or truncated PDF ({type(exc).__name__}: {exc})"[:300]) from None
    if n == 0:
        raise BadDocument(f"{name}: the PDF has no pages")
    if ocr is not None:
        raw = ocr(data, raw)
    if sum(len(t.strip()) for t in raw) < 20 * max(1, n // 10):
        raise BadDocument(f"{name}: no extractable text; OCR is not supported unless asked for "
                          "(a scanned PDF? ingest it with --ocr)")
    cleaned, dropped = split_running_lines(raw)
    pages = [
        Page(number=i + 1, label=labels[i], text=cleaned[i], outline=tuple(outline.get(i + 1, ())),
             dropped=dropped[i], boxed=read[i][1])
        for i in range(n)
    ]
    return Extracted(title=title, pages=pages, meta_year=meta_year)


_CAPTION = re.compile(r"^(Table|TABLE)\s+[A-Z]?\d+", re.M)
_COLUMN_GAP = re.compile(r"(?<=\S) {3,}(?=\S)")


def _page_text(page) -> str:
    """A page's text: pypdf's, reordered by position where its order is wrong (ingest.layout)."""
    return _page_reading(page)[0]


def _page_reading(page) -> tuple[str, tuple[str, ...]]:
    """A page's text (pypdf's, reordered by position where its order is wrong: ingest.layout) and the
    text of the boxed warnings printed on it.

    Table rows keep their cells apart (' | ') on pages with a table caption, as the chunker expects.
    """
    try:
        drawing.content_stream(page)  # parsed once, for pypdf's plain text and for the layout alike
    except Exception:  # noqa: BLE001 - a stream pypdf cannot parse: its own extraction reports it
        pass
    plain = _plain_text(page)
    text, boxed = layout.read_page(page, plain, cells=bool(_CAPTION.search(plain)))
    return _normalise(text), tuple(_normalise(b) for b in boxed)


def _normalise(text: str) -> str:
    """The characters pypdf emits for ligatures and odd spaces normalised; the words kept verbatim."""
    text = text.replace("\u00ad", "").replace("\ufb01", "fi").replace("\ufb02", "fl")
    return "\n".join(_O_BULLET.sub("\u25e6 ", _WS.sub(" ", ln).strip()) for ln in text.splitlines())


def _plain_text(page) -> str:
    """pypdf's text in content-stream order; table pages in its layout mode, cells apart."""
    text = page.extract_text() or ""
    if _CAPTION.search(text):
        # pypdf's plain mode emits a table one cell per line, losing its rows; layout mode keeps each
        # row on one line with its columns spaced apart (about 30% slower, so only on table pages).
        try:
            layout_text = page.extract_text(extraction_mode="layout") or ""
        except Exception:  # noqa: BLE001 - layout mode fails on some fonts; plain text is still fine
            layout_text = ""
        if layout_text.strip() and not _two_columns(layout_text):
            text = "\n".join(_COLUMN_GAP.sub(" | ", ln.strip()) for ln in layout_text.splitlines())
    return text


def _two_columns(layout: str) -> bool:
    """True when layout text is two columns of prose side by side (then plain text reads better).

    Example: a line 'of the evidence from trials and          Revisions to these Guidelines will' counts.
    """
    lines = [ln.strip() for ln in layout.splitlines() if ln.strip()]
    halves = 0
    for ln in lines:
        parts = _COLUMN_GAP.split(ln)
        if len(parts) == 2 and min(len(parts[0]), len(parts[1])) > 25:
            halves += 1
    return halves > 0.3 * max(1, len(lines))


def _labels(reader, n: int) -> list[str]:
    try:
        labels = list(reader.page_labels)
    except Exception:  # noqa: BLE001 - malformed /PageLabels trees are common; fall back to numbers
        labels = []
    if len(labels) != n:
        labels = [str(i + 1) for i in range(n)]
    return [str(x) for x in labels]


def _outline(reader) -> dict[int, list[tuple[int, str]]]:
    """Outline titles by 1-based page, with their depth."""
    out: dict[int, list[tuple[int, str]]] = {}

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1
                title = _WS.sub(" ", str(item.title)).strip()
            except Exception:  # noqa: BLE001 - dangling destinations: skip that entry only
                continue
            if page >= 1 and title:
                out.setdefault(page, []).append((depth, title))

    try:
        walk(reader.outline, 0)
    except Exception:  # noqa: BLE001
        return {}
    return out


def _title(reader, name: str) -> str:
    meta = None
    try:
        meta = reader.metadata
    except Exception:  # noqa: BLE001
        meta = None
    title = str(getattr(meta, "title", "") or "").strip() if meta else ""
    if len(title) < 4 or title.lower().startswith(("microsoft", "untitled")) or title.lower().endswith(".pdf"):
        title = Path(name).stem.replace("_", " ").replace("-", " ").strip()
    return title


def _meta_year(reader) -> str:
    try:
        meta = reader.metadata or {}
        raw = str(meta.get("/ModDate") or meta.get("/CreationDate") or "")
    except Exception:  # noqa: BLE001
        return ""
    m = re.search(r"(19|20)\d\d", raw)
    return m.group(0) if m else ""


def strip_running_lines(pages: list[str], edge: int = 3, min_share: float = 0.5) -> list[str]:
    """Drop lines that repeat at the top or bottom of many pages (running headers and footers).

    A line is compared with its numbers masked, so 'Page 3 of 9' matches 'Page 4 of 9' and 'Page iv'.
    Only the first and last `edge` non-empty lines of a page are candidates, and a line must recur on
    at least half of the pages (and on 2 or more).

    Example: ['Hdr\\nA\\nPage 1', 'Hdr\\nB\\nPage 2'] -> ['A', 'B']
    """
    return split_running_lines(pages, edge, min_share)[0]


def split_running_lines(pages: list[str], edge: int = 3, min_share: float = 0.5
                        ) -> tuple[list[str], list[tuple[str, ...]]]:
    """strip_running_lines, with the lines dropped from each page, in page order (Page.dropped).

    Example: ['Hdr\\nA\\nPage 1', 'Hdr\\nB\\nPage 2'] -> (['A', 'B'], [('Hdr', 'Page 1'), ('Hdr', 'Page 2')])
    """
    if len(pages) < 2:
        return pages, [() for _ in pages]
    split = [p.splitlines() for p in pages]
    counts: Counter[str] = Counter()
    edges = []
    for lines in split:
        filled = [i for i, ln in enumerate(lines) if ln.strip()]
        cand = filled[:edge] + filled[-edge:]
        edges.append(cand)
        counts.update({_key(lines[i]) for i in cand})
    need = max(2, int(len(pages) * min_share + 0.999))
    running = {k for k, c in counts.items() if c >= need and k}
    seen: dict[str, list[tuple[int, str]]] = {}
    for n, (lines, cand) in enumerate(zip(split, edges, strict=True)):
        for i in cand:
            if _key(lines[i]) in running:
                seen.setdefault(_key(lines[i]), []).append((n, lines[i].strip()))
    running = {k for k in running if _page_numbered(seen.get(k, []))}
    out: list[str] = []
    dropped: list[tuple[str, ...]] = []
    for n, (lines, cand) in enumerate(zip(split, edges, strict=True)):
        drop = {i for i in cand if _key(lines[i]) in running}
        # a page counter a reading by position put mid-page ('... for artesunate\n180 of 451\nin severe')
        drop |= {i for i, ln in enumerate(lines) if i not in drop and "#" in _key(ln) and _key(ln) in running
                 and str(n + 1) in _DIGITS.findall(ln)}
        kept = [ln for i, ln in enumerate(lines) if i not in drop]
        out.append(re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n"))  # blank lines mark paragraphs
        dropped.append(tuple(lines[i] for i in sorted(drop)))
    return out, dropped


def _page_numbered(lines: list[tuple[int, str]]) -> bool:
    """Whether lines that differ only in numbers differ as a page number does (or not at all).

    A running header or footer repeats one text, or counts the pages, and a page number stands at the
    start or the end of its line, or reads 'N of M' or 'N/M' at its end ('12', 'Guideline | Page 3',
    '170 of 451', 'Page 3 of 9', '... label 1/3'). Body lines that share a pattern ('Give 5 mg daily' /
    'Give 10 mg daily') are not running lines. Roman page numbers are trusted as before.
    Example: [(0, 'Page 1 of 9'), (1, 'Page 2 of 9')] -> True; [(0, 'Give 5 mg'), (1, 'Give 10 mg')] -> False
    """
    if len({text for _, text in lines}) <= 1 or any(_ROMAN.fullmatch(w) for _, t in lines
                                                     for w in _WORD.findall(t.lower())):
        return True
    spots = [[m.start() for m in _DIGITS.finditer(t)] for _, t in lines]
    values = [[int(m.group()) for m in _DIGITS.finditer(t)] for _, t in lines]
    texts = [t for _, t in lines]
    for pos in range(min(len(v) for v in values)):
        if len({v[pos] for v in values}) == 1:
            continue  # this number is the same everywhere ('of 451')
        if not all(_page_number_spot(t, sp[pos]) for t, sp in zip(texts, spots, strict=True)):
            return False
    return True


_PAGE_SPOT = re.compile(r"\d+(?:\s*$|\s+of\s+\d|\s*/\s*\d+\s*$)", re.I)


def _page_number_spot(text: str, at: int) -> bool:
    """Whether the number starting at `at` opens or ends the line, or reads 'N of M' or ends it as 'N/M'."""
    return at == 0 or bool(_PAGE_SPOT.match(text, at))


def _key(line: str) -> str:
    """A line with its page numbers masked, arabic or roman: 'Page iv' and 'Page 12' are one running line."""
    low = _DIGITS.sub("#", line.strip().lower())
    return _WORD.sub(lambda m: "#" if _ROMAN.fullmatch(m.group()) else m.group(), low)


_WORD = re.compile(r"\b[ivxlcdm]+\b")
_ROMAN = re.compile(r"m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})")
