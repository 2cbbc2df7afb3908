"""The page as printed: a PDF page rendered to PNG by pdfium, with a quote highlighted where it is printed.

pypdf (the index's reader) cannot rasterise, so pages are rendered with pypdfium2 (PDFium, offline, no
system packages). The quote is located on PDFium's own text page, whose characters carry boxes. Stored
quotes are pypdf's text, and the two readers differ in whitespace, line breaks, hyphens at line ends
(PDFium turns them into U+0002 and drops the break), ligatures and case, so both sides are folded by
`fold` before an exact search; a longer quote that still differs a little (cross-reference residue or
kerning splits removed on one side only) is matched approximately, and one that the readers read in
different orders (a box spliced into a sentence, a table row read across its cells) in a few long
pieces. A table row quoted as "cell | cell" (or "header: cell · header: cell") is matched cell by
cell, the cells nearest together.
Matched characters are highlighted by PDFium's line rectangles for them, in one translucent colour.

Rendered pages (without highlight) are cached as PNG under <home>/pages/<doc_id>/<page>-<dpi>.png,
written atomically; the folder is bounded by size (least recently used pages deleted first).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import logging
import math
import os
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.backup import source_file
from rag.errors import ConfigError, GQAError
from rag.types import Document

log = logging.getLogger(__name__)

# Translucent yellow, as a highlighter pen: the colour mixed into the page where the quote is printed.
HIGHLIGHT_RGB = (255, 200, 0)
HIGHLIGHT_ALPHA = 0.4
# 120 dpi: a Letter page is 1020 x 1320 px (about 150-400 KB of PNG), sharp enough for 7-pt table text.
DEFAULT_DPI = 120
# Points of padding around PDFium's line rectangles, so that ascenders and descenders are covered.
PAD_PT = 1.5
# Shorter quotes must match exactly (after folding): approximate matches of short text are guesses.
FUZZY_MIN_CHARS = 24
# An approximate match must cover this share of the quote, within a page span at most 1.5x its length.
FUZZY_COVER = 0.85
# A quote read in another order than PDFium reads the page is matched in pieces of at least 6 folded
# characters (shorter ones are everywhere), at most one piece per 12 characters, skipping at most 15%.
PIECE_MIN_CHARS = 6
PIECE_AVG_CHARS = 12
PIECE_SKIP = 0.15
# Characters dropped by `fold`: every hyphen and dash (a hyphen at a line end is the same word), soft
# hyphens, PDFium's U+0002 and U+FFFE for broken words, zero-width characters, and ellipses (a quoted
# piece of a sentence is marked with one).
_DROP = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2212\u00ad\u0002\ufffe\u200b\u200c\u200d\ufeff\u2026")
_QUOTE_MARKS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


Span = tuple[int, int]


class PageError(GQAError):
    """A page cannot be rendered: no such page, or the file is not a readable PDF."""


@dataclass(frozen=True)
class PageImage:
    """One rendered page: PNG bytes, and where the highlight went (pixel boxes: left, top, right, bottom)."""

    png: bytes
    page: int
    pages: int
    dpi: int
    found: bool | None  # None when no highlight was asked for
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    cached: bool = False


def fold(text: str) -> tuple[str, list[int]]:
    """Text folded for matching (NFKC, case-folded, no whitespace/hyphens), and each kept char's source index.

    Example: 'Anti-\\ncoagulant ﬁne' -> ('anticoagulantfine', [0, 1, 2, 3, 6, ...])
    """
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch.translate(_QUOTE_MARKS)).casefold():
            if c.isspace() or c in _DROP or (unicodedata.category(c) == "Cc"):
                continue
            out.append(c)
            where.append(i)
    return "".join(out), where


def segments(quote: str) -> list[str]:
    """The parts of a quote to find: the cells of a table row, or the sentence itself.

    Example: 'Adults | 10 mg daily' -> ['Adults', '10 mg daily']; '…the dose is 5 mg.' -> ['…the dose is 5 mg.']
    """
    for sep in (" | ", " · "):
        if sep in quote:
            return [p.strip() for p in quote.split(sep) if fold(p)[0]]
    return [quote] if fold(quote)[0] else []


def _occurrences(hay: str, needle: str) -> list[int]:
    """Every start of `needle` in `hay` (overlapping ones too)."""
    out, k = [], hay.find(needle)
    while k >= 0:
        out.append(k)
        k = hay.find(needle, k + 1)
    return out


def _fuzzy(hay: str, needle: str) -> tuple[int, int] | None:
    """The span of `hay` that approximately holds `needle` (most of it, in order, close together), if any."""
    if len(needle) < FUZZY_MIN_CHARS:
        return None
    longest = difflib.SequenceMatcher(None, needle, hay, autojunk=False).find_longest_match()
    if longest.size < 8:
        return None
    lo = max(0, longest.b - longest.a - len(needle) // 2)  # a window where the whole quote could sit
    window = hay[lo:longest.b - longest.a + len(needle) * 3 // 2]
    blocks = [b for b in difflib.SequenceMatcher(None, needle, window, autojunk=False).get_matching_blocks()
              if b.size >= 4]
    if not blocks or sum(b.size for b in blocks) < FUZZY_COVER * len(needle):
        return None
    start, end = lo + blocks[0].b, lo + blocks[-1].b + blocks[-1].size
    return (start, end) if end - start <= 1.5 * len(needle) else None


def _word_starts(text: str) -> list[int]:
    """Folded indices where a word of `text` begins (a piece of a quote is looked for from one).

    Example: 'Give (5 mg)' -> [0, 4, 5, 6] (folded 'give(5mg)': 'give', '(', '5', 'mg)')
    """
    folded, where = fold(text)
    starts = []
    for j in range(len(folded)):
        gap = j == 0 or any(not c.isalnum() for c in text[where[j - 1] + 1:where[j]])
        if gap or (folded[j].isalnum() and not folded[j - 1].isalnum()):
            starts.append(j)
    return starts


def _pieces(hay: str, quote: str, near: int = 0) -> list[Span] | None:
    """`quote` as pieces each printed somewhere on the page (one reader spliced or reordered it), or None.

    Each piece is the longest rest of the quote found on the page, where it is nearest the previous one.
    A word with no piece of PIECE_MIN_CHARS from it is skipped (at most PIECE_SKIP of the quote); more
    than one piece per PIECE_AVG_CHARS of it is taken as a chance match.
    """
    needle = fold(quote)[0]
    starts = _word_starts(quote) + [len(needle)]
    spans: list[Span] = []
    pos, skipped, last = 0, 0, near
    while pos < len(needle):
        lo, hi = 0, len(needle) - pos  # binary search: every prefix of a found piece is found too
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if needle[pos:pos + mid] in hay else (lo, mid - 1)
        if lo < PIECE_MIN_CHARS:
            nxt = next(k for k in starts if k > pos)
            pos, skipped = nxt, skipped + nxt - pos
            if skipped > PIECE_SKIP * len(needle):
                return None
            continue
        k = min(_occurrences(hay, needle[pos:pos + lo]), key=lambda o: abs(o - last))
        spans.append((k, k + lo))
        pos, last = pos + lo, k + lo
    return spans if spans and len(spans) <= max(2, len(needle) // PIECE_AVG_CHARS) else None


def _cell_spans(hay: str, cell: str) -> list[Span]:
    """Folded spans where a table cell is printed whole; 'Header: value' falls back to the value alone."""
    needle = fold(cell)[0]
    found = [(k, k + len(needle)) for k in _occurrences(hay, needle)]
    if not found and ": " in cell:
        return _cell_spans(hay, cell.rsplit(": ", 1)[1])
    return found


def _tightest(options: list[list[Span]]) -> list[Span]:
    """One span from each list: the shortest left-to-right run of them, else each nearest the longest."""
    best: list[Span] | None = None
    for first in options[0]:
        chain = [first]
        for spans in options[1:]:
            nxt = next((sp for sp in spans if sp[0] >= chain[-1][1]), None)
            if nxt is None:
                break
            chain.append(nxt)
        if len(chain) == len(options) and (best is None or chain[-1][1] - chain[0][0] < best[-1][1] - best[0][0]):
            best = chain
    if best is not None:
        return best
    anchor = max(options, key=lambda spans: spans[0][1] - spans[0][0])[0][0]
    return [min(spans, key=lambda sp: abs(sp[0] - anchor)) for spans in options]


def _row(hay: str, cells: list[str]) -> list[Span] | None:
    """The spans printing a table row: cells found whole as close together as they are printed, and a
    cell that was read across cells (a reader's column order differs) in pieces near them."""
    whole = [_cell_spans(hay, c) for c in cells]
    found = [i for i, spans in enumerate(whole) if spans]
    chosen: dict[int, list[Span]] = {}
    if found:
        chosen = {i: [sp] for i, sp in zip(found, _tightest([whole[i] for i in found]), strict=True)}
    near = min((sp[0][0] for sp in chosen.values()), default=0)
    for i, cell in enumerate(cells):
        if i not in chosen:
            pieces = _pieces(hay, cell, near)
            if pieces is None:
                return None
            chosen[i] = pieces
    return [sp for i in range(len(cells)) for sp in chosen[i]]


def locate(page_text: str, quote: str) -> list[Span] | None:
    """Spans (start, end) of `page_text` that print `quote`, or None when it is not on the page.

    Example: ('Give 2 mg\\r\\nonce daily.', '2 MG once') -> [(5, 15)]
    """
    hay, where = fold(page_text)
    parts = segments(quote)
    if not parts or not hay:
        return None
    if len(parts) > 1:
        spans = _row(hay, parts)
    else:
        needle = fold(parts[0])[0]
        k = hay.find(needle)
        one = (k, k + len(needle)) if k >= 0 else _fuzzy(hay, needle)
        spans = [one] if one else (_pieces(hay, parts[0]) if len(needle) >= FUZZY_MIN_CHARS else None)
    if spans is None:
        return None
    return [(where[s], where[e - 1] + 1) for s, e in spans]


class PageCache:
    """Rendered pages as PNG files under `root`, at most `max_bytes` in all (least recently used go first)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, key: str, page: int, dpi: int) -> Path:
        """Where page `page` of the PDF whose doc_id is `key` is kept at `dpi`."""
        return self.root / key / f"{page}-{dpi}.png"

    def get(self, key: str, page: int, dpi: int) -> bytes | None:
        """The cached PNG, or None; a hit counts as a use (its time is refreshed)."""
        p = self.path(key, page, dpi)
        try:
            data = p.read_bytes()
            os.utime(p)
        except OSError:  # not cached, or pruned by another process just now
            return None
        return data

    def put(self, key: str, page: int, dpi: int, png: bytes) -> None:
        """Store a PNG atomically (readers never see half a file), then prune to the size bound."""
        p = self.path(key, page, dpi)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=p.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(png)
            os.replace(tmp, p)
        except OSError as exc:  # a read-only or full home still shows the page, only uncached
            log.warning("page cache %s not written: %s", p, exc)
            return
        self.prune()

    def prune(self) -> int:
        """Delete the least recently used files until the cache is within its bound; the bytes freed."""
        files: list[tuple[float, int, Path]] = []
        stale = time.time() - 3600  # a temporary file an hour old belongs to a killed writer
        for f in self.root.glob("*/*.png"):
            try:
                st = f.stat()
            except OSError:
                continue
            if f.name.startswith(".tmp-") and st.st_mtime > stale:
                continue
            files.append((0.0 if f.name.startswith(".tmp-") else st.st_mtime, st.st_size, f))
        total, freed = sum(size for _, size, _ in files), 0
        for _, size, f in sorted(files):
            if total - freed <= self.max_bytes:
                break
            try:
                f.unlink()
                freed += size
            except OSError:
                continue
        return freed


def _open(data: bytes, name: str):
    """A PdfDocument over the bytes, or PageError naming the file."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise PageError(f"{name}: cannot be opened as a PDF ({exc}); check the file or re-ingest it") from None


def _check_page(page: int, pages: int, name: str) -> None:
    if not 1 <= page <= pages:
        raise ConfigError(f"page {page} is out of range for {name}: it has {pages} page"
                          f"{'s' if pages != 1 else ''} (give 1 to {pages})")


def _pos_args(pdf_page, scale: float) -> tuple[int, int, int, int, int]:
    """PDFium's device arguments of a plain render at `scale` (as PdfPage.render computes them)."""
    return 0, 0, math.ceil(pdf_page.get_width() * scale), math.ceil(pdf_page.get_height() * scale), 0


def _render(pdf_page, scale: float) -> bytes:
    """The page as PNG bytes."""
    image = pdf_page.render(scale=scale).to_pil().convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _boxes(pdf_page, quote: str, scale: float) -> list[tuple[int, int, int, int]] | None:
    """Pixel boxes of the lines printing `quote` on the page, or None when it is not there."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    text = pdf_page.get_textpage()
    try:
        chars = "".join(chr(pdfium_c.FPDFText_GetUnicode(text, i)) for i in range(text.count_chars()))
        spans = locate(chars, quote)
        if spans is None:
            return None
        conv = pdfium.PdfPosConv(pdf_page, _pos_args(pdf_page, scale))
        out: list[tuple[int, int, int, int]] = []
        for start, end in spans:
            for i in range(text.count_rects(start, end - start)):
                left, bottom, right, top = text.get_rect(i)
                x0, y0 = conv.to_bitmap(left - PAD_PT, top + PAD_PT)
                x1, y1 = conv.to_bitmap(right + PAD_PT, bottom - PAD_PT)
                out.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return merge_lines(out)
    finally:
        text.close()


def merge_lines(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes on one line joined into one (some PDFs give PDFium one text object, so one rect, per glyph).

    A box is on a line when they overlap vertically by half the lower one's height; boxes of a line join
    when the gap between them is under the line's height (a gap between table cells stays).
    Example: [(0, 0, 10, 12), (11, 1, 20, 12), (0, 20, 9, 32)] -> [(0, 0, 20, 12), (0, 20, 9, 32)]
    """
    lines: list[list[tuple[int, int, int, int]]] = []
    for box in sorted(boxes, key=lambda b: b[1] + b[3]):
        if lines:
            top, bottom = min(b[1] for b in lines[-1]), max(b[3] for b in lines[-1])
            if min(bottom, box[3]) - max(top, box[1]) >= 0.5 * min(bottom - top, box[3] - box[1]):
                lines[-1].append(box)
                continue
        lines.append([box])
    out: list[tuple[int, int, int, int]] = []
    for line in lines:
        height = max(b[3] for b in line) - min(b[1] for b in line)
        merged: list[tuple[int, int, int, int]] = []
        for x0, y0, x1, y1 in sorted(line):
            if merged and x0 - merged[-1][2] <= height:
                m = merged[-1]
                merged[-1] = (m[0], min(m[1], y0), max(m[2], x1), max(m[3], y1))
            else:
                merged.append((x0, y0, x1, y1))
        out += merged
    return out


def highlight(png: bytes, boxes: list[tuple[int, int, int, int]]) -> bytes:
    """The PNG with `boxes` tinted in HIGHLIGHT_RGB (one even tint where boxes overlap)."""
    from PIL import Image, ImageDraw

    image = Image.open(io.BytesIO(png)).convert("RGB")
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        draw.rectangle(box, fill=255)
    tinted = Image.blend(image, Image.new("RGB", image.size, HIGHLIGHT_RGB), HIGHLIGHT_ALPHA)
    out = io.BytesIO()
    Image.composite(tinted, image, mask).save(out, format="PNG")
    return out.getvalue()


def render_page(data: bytes, page: int, quote: str | None = None, dpi: int = DEFAULT_DPI,
                cache: PageCache | None = None, name: str = "the PDF") -> PageImage:
    """PDF page `page` (1-based) of the PDF `data` as PNG, with `quote` highlighted where it is printed.

    `found` is False when the quote is not on the page (the page is returned without highlight).
    ConfigError for a page out of range; PageError when the bytes are not a readable PDF.
    """
    if not 18 <= dpi <= 600:
        raise ConfigError(f"--dpi {dpi}: must be between 18 and 600")
    key = hashlib.sha256(data).hexdigest()[:16]  # the doc_id of these bytes
    doc = _open(data, name)
    try:
        pages = len(doc)
        _check_page(page, pages, name)
        pdf_page = doc[page - 1]
        scale = dpi / 72
        png = cache.get(key, page, dpi) if cache else None
        cached = png is not None
        if png is None:
            png = _render(pdf_page, scale)
            if cache:
                cache.put(key, page, dpi, png)
        if quote is None:
            return PageImage(png, page, pages, dpi, None, (), cached)
        boxes = _boxes(pdf_page, quote, scale)
        if not boxes:
            return PageImage(png, page, pages, dpi, False, (), cached)
        return PageImage(highlight(png, boxes), page, pages, dpi, True, tuple(boxes), cached)
    finally:
        doc.close()


class SourceMissing(PageError):
    """The ingested PDF is no longer where it was recorded, or its bytes changed since."""


def read_source(home: Path, doc: Document, recorded: str) -> bytes:
    """The bytes of the PDF `doc` was ingested from (`recorded`, or its copy under <home>/uploads).

    SourceMissing when no file is there or it is not the ingested version.
    """
    what = f"{doc.file_name} (doc {doc.doc_id})"
    path = source_file(home, recorded)
    if path is None:
        raise SourceMissing(f"{what}: no source PDF was recorded when it was ingested; pass the PDF's path instead")
    try:
        data = path.read_bytes()
    except OSError:
        raise SourceMissing(f"{what}: its source PDF {recorded} is not on this machine any more; put it back "
                            "there, or pass the PDF's path instead") from None
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise SourceMissing(f"{what}: its source PDF {path} changed since it was ingested (other bytes); "
                            "re-ingest it, or pass the PDF's path instead")
    return data
