"""Page text in reading order by position: columns one after another, boxes kept whole, residue removed.

pypdf's plain text follows the content stream, which is not the reading order: a WHO recommendation
box drawn last lands in the middle of the sentence that was running when the page ended, and columns
interleave where a generator wrote them line by line. Here every text run is placed where it is
printed, and position replaces the stream's order where the stream is out of place (read_page says
when; elsewhere pypdf's text is kept, because reading whole pages by position broke the formulary's
record tables and lines pypdf misplaces):

- Runs and rectangles come from ingest.drawing (pypdf's layout-mode machinery: each run's start and
  end). pdfplumber gives the same with character boxes, but read the corpus 2.4x slower than pypdf
  (170 against 70 ms a page, both under the same load), so pypdf stays the reader.
- Boxes are filled or stroked rectangles (and frames of four thin bars, as FDA boxed warnings are
  drawn) holding two or more lines; a box is read whole, as one block, and a box that interrupts a
  sentence is read after the paragraph it interrupted.
- Columns are found by their gutter: an x band that the lines of a region leave empty while prose
  fills both sides. Lines that cross it (a title, a full-width box) split the page into sections read
  top to bottom, each section's columns left to right. Tables do not make columns: their cells are
  short, so a table's rows are read across.
- Bullets the stream writes apart from their items (every bullet first, then the items' text) are put
  back before their items: such a page is read by position.
- A table row's label centred left of a cell of several lines ('Clinical Impact:' in FDA interaction
  tables) is read before the cell, not inside its sentence, where pypdf's layout text puts it; a row
  whose framed cell holds several lines (the CYP450 table) is read cell by cell, one line a row.
- Line numbers printed down the left margin (FDA draft guidances number every line) are dropped: a
  column of bare, increasing integers standing left of all other text. pypdf's plain text splices
  them into the sentences and headings ('INTRODUCTION 16 17 The purpose of'), so such a page is read
  by position.
- Blank lines separate blocks (a paragraph gap, a box, a column change); the chunker reads them as
  paragraph ends. Lines made only of cross-reference numbers, such as '(2)' repeated down the margin
  of FDA Highlights, are dropped when repeated, and so is a cross-reference right after another.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ingest.drawing import CELL_GAP, Run, ruled_cells, runs_and_boxes

log = logging.getLogger(__name__)

# CELL_GAP (ingest.drawing): a gap wider than this many font heights between two runs on one line
# separates cells or columns.
# Runs on baselines closer than this share of the font height are one line.
SAME_LINE = 0.4
# A vertical gap larger than this many line heights between two lines ends a paragraph.
PARAGRAPH_GAP = 1.6
# A gutter: at least this wide (points), covered by at most GUTTER_CROSSING of the region's lines
# while both sides are covered by at least GUTTER_SIDES of them.
GUTTER_MIN = 6.0
GUTTER_CROSSING = 0.12
GUTTER_SIDES = 0.25
# Words a column's lines have on average: prose, not table cells.
COLUMN_WORDS = 6.0
# A box holds at least this many lines (a shaded table header cell is not a box; ingest.drawing says
# which rectangles may be boxes).
BOX_LINES = 2

XREF = r"\(\s*\d+(?:\.\d+)*(?:\s*,\s*\d+(?:\.\d+)*)*\s*\)"
_XREF_LINE = re.compile(rf"^(?:{XREF}\s*)+$")
_XREF_REPEAT = re.compile(rf"({XREF})(\s*{XREF})+")
_END = (".", "!", "?", ":", ";")
# pypdf's plain text puts each glyph of a spaced-out reference on its own line: '(\n2\n)'
_CHAR_LINES = re.compile(r"\(\n(\d+(?:\.\d+)*)\n\)")
# Position replaces the stream's order only when it keeps this share of the plain text's lines whole.
INTACT = 0.9
# A line-number margin: at least this many bare integers, right-aligned within MARGIN_ALIGN points,
# left of every other run, most of them one more than the number above.
MARGIN_NUMBERS = 8
MARGIN_ALIGN = 2.0
_BARE_NUMBER = re.compile(r"^\s*\d{1,4}\s*$")


@dataclass
class Line:
    """Runs on one baseline (within a box or outside all boxes), left to right, cut into segments at gaps."""

    runs: list[Run]
    segments: list[list[Run]] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return self.runs[0].x0

    @property
    def x1(self) -> float:
        return max(r.x1 for r in self.runs)

    @property
    def y(self) -> float:
        return self.runs[0].y

    @property
    def h(self) -> float:
        return max(r.h for r in self.runs)

    def text(self, cells: bool) -> str:
        """The line's text; with `cells`, segments are joined with ' | ' (table cells)."""
        parts = [_join_runs(s) for s in self.segments]
        return (" | " if cells else " ").join(p for p in parts if p)


@dataclass
class Block:
    """Something read as one unit: a line, or a box's lines in their own order."""

    lines: list[Line]
    box: bool = False

    @property
    def top(self) -> float:
        return max(ln.y + ln.h for ln in self.lines)

    @property
    def bottom(self) -> float:
        return min(ln.y for ln in self.lines)

    @property
    def x0(self) -> float:
        return min(ln.x0 for ln in self.lines)

    @property
    def x1(self) -> float:
        return max(ln.x1 for ln in self.lines)


def read_page(page, plain: str, cells: bool = False) -> tuple[str, tuple[str, ...]]:
    """The page's text, and the text of the boxed warnings printed on it.

    The text is read by position where the content stream's order is wrong, else it is `plain`
    (pypdf's text in stream order); cross-reference residue is removed from either. Position wins
    only when it moves something: columns the stream interleaves, or a box drawn out of place (then
    it must keep at least INTACT of plain's lines whole). Where pypdf misplaces runs over one another
    (after some superscript references), the stream's order is kept and no box is reported.
    `cells`: join table cells with ' | ' on every line; elsewhere only the lines of a grid (ingest.tables)
    are written cell by cell.
    """
    plain = clean_residue(_CHAR_LINES.sub(r"(\1)", plain))
    try:
        found = runs_and_boxes(page)
    except Exception as exc:  # noqa: BLE001 - pypdf internals on unusual content: plain text instead
        log.debug("layout unreadable (%s: %s); plain text", type(exc).__name__, exc)
        return plain, ()
    if found is None:
        return plain, ()
    runs, boxes = found
    margin = line_numbers(runs)
    if margin:
        runs = [r for r in runs if not any(r is m for m in margin)]
    if _misplaced(runs):  # positions cannot be trusted: the stream's order, less the line numbers
        return strip_line_numbers(plain, {int(m.text) for m in margin}), ()
    numbered = bool(margin)
    # bullets the stream writes apart from their items (all bullets first, then the items' text): the
    # page is read by position, which puts each bullet before its item
    bare = _bare_bullets(plain)
    text, moved = read(runs, boxes, cells=cells, by_position=bare >= 2)
    if bare >= 2 and _bare_bullets(text) < bare and intact(plain, text) >= INTACT:
        moved = "bullets"
    warnings = boxed_warnings(runs)
    # row labels are misplaced only in pypdf's layout-mode text (table pages: _plain_text); its stream
    # text has them in place, and a formulary's records read by position lose their order
    chosen = text if numbered or moved in ("columns", "bullets") or (moved in ("rows", "labels") and cells) or (
        moved == "box" and intact(plain, text) >= INTACT) else plain
    from ingest import tables  # it builds on this module's lines

    return tables.mark_cells(chosen, tables.page_grids(runs), tables.ruled_grids(runs, ruled_cells(page))), warnings


_BARE_BULLET = re.compile(r"^\s*[•●▪◦o−–-]\s*$", re.M)


def _bare_bullets(text: str) -> int:
    """Lines that are only a bullet (its item's text elsewhere in the stream)."""
    return len(_BARE_BULLET.findall(text))


def line_numbers(runs: list[Run]) -> list[Run]:
    """The runs of a line-number margin (MARGIN_NUMBERS...), or [] when the page has none."""
    numbers = [r for r in runs if _BARE_NUMBER.match(r.text)]
    if len(numbers) < MARGIN_NUMBERS:
        return []
    right = sorted(r.x1 for r in numbers)[len(numbers) // 2]
    column = [r for r in numbers if abs(r.x1 - right) <= MARGIN_ALIGN]
    others = [r for r in runs if r.text.strip() and not any(r is c for c in column)]
    if len(column) < MARGIN_NUMBERS or (others and min(r.x0 for r in others) < right):
        return []
    column.sort(key=lambda r: -r.y)  # top of the page first
    values = [int(r.text) for r in column]
    steps = sum(b == a + 1 for a, b in zip(values, values[1:], strict=False))
    return column if steps >= 0.8 * (len(values) - 1) else []


def without_line_numbers(runs: list[Run]) -> list[Run]:
    """The runs less a line-number margin, when the page has one."""
    margin = line_numbers(runs)
    return [r for r in runs if not any(r is m for m in margin)]


_LINE_END_NUMBER = re.compile(r"(?:^|\s+)(\d{1,4})\s*$")


def strip_line_numbers(plain: str, values: set[int]) -> str:
    """pypdf's plain text less the margin's line numbers, which it writes at the end of each line (a
    line holding only one is a blank line between paragraphs)."""
    if not values:
        return plain
    out = []
    for line in plain.splitlines():
        m = _LINE_END_NUMBER.search(line)
        out.append(line[:m.start()] if m and int(m.group(1)) in values else line)
    return "\n".join(out)


# A box holding an FDA boxed warning: it opens with 'WARNING: ...' (or 'BOXED WARNING'), or points to
# the complete one ('See full prescribing information for complete boxed warning').
WARNING = re.compile(r"^(?:BOXED\s+)?WARNING\b|complete boxed warning", re.M)


def boxed_warnings(runs: list[Run]) -> tuple[str, ...]:
    """The text of each box (runs already assigned by read) that holds a boxed warning, lines joined.

    Example: a framed box reading 'WARNING: BLEEDING RISK' / 'Warfarin can cause major bleeding.'
    -> ('WARNING: BLEEDING RISK Warfarin can cause major bleeding.',)
    """
    by_box: dict[int, list[Run]] = {}
    for r in runs:
        if r.box >= 0:
            by_box.setdefault(r.box, []).append(r)
    out = []
    for box_runs in by_box.values():
        lines = [ln.text(False) for ln in _lines(box_runs)]
        if len(lines) >= BOX_LINES and WARNING.search("\n".join(lines)):
            out.append(" ".join(lines))
    return tuple(out)


def _misplaced(runs: list[Run]) -> bool:
    """Whether pypdf placed runs over one another on a baseline (it does after some superscripts):
    then positions cannot be trusted, and the stream's order is kept."""
    by_line: dict[int, list[Run]] = {}
    for r in runs:
        by_line.setdefault(round(r.y), []).append(r)
    over = 0
    for line in by_line.values():
        line.sort(key=lambda r: r.x0)
        over += sum(b.x0 < a.x1 - max(1.0, 0.3 * a.h) for a, b in zip(line, line[1:], strict=False))
    return over > max(1, 0.02 * len(runs))


def intact(plain: str, text: str) -> float:
    """Share of plain's lines of four or more words found whole in `text` (whitespace ignored).

    Example: ('a b c d\ne f g h', 'e f g h\na b c d') -> 1.0
    """
    lines = [" ".join(ln.split()) for ln in plain.splitlines() if len(ln.split()) >= 4]
    if not lines:
        return 1.0
    flat = " ".join(text.split())
    return sum(ln in flat for ln in lines) / len(lines)


def read(runs: list[Run], boxes: list[tuple[float, float, float, float]], cells: bool = False,
         by_position: bool = False) -> tuple[str, str]:
    """Text of positioned runs (given in content-stream order) in reading order.

    The content stream's order is kept where nothing says it is wrong: a generator writes a page's
    text in reading order, except for what it draws apart (a box drawn last, columns written line by
    line). So boxes are placed by position, prose columns are read one after another, and otherwise
    lines follow the stream. With `cells` (a page with a table caption) every line is placed by
    position and a row's cells are joined with ' | ', as pypdf's layout mode prints tables.
    `by_position`: every line placed by position, cells not joined (bullets the stream wrote apart).
    `boxes`: (x0, y0, x1, y1) rectangles; a box holding BOX_LINES or more lines is read whole.
    Returns the text and what position moved: "columns" (the stream interleaves them), "box" (one was
    drawn out of place) or "" (the stream's order was right).
    Example: runs of a right column given before the left one -> (the left column's text first, 'columns')
    """
    if not runs:
        return "", ""
    _assign_boxes(runs, boxes)
    counts: dict[int, int] = {}
    for ln in _lines(runs):
        counts[ln.runs[0].box] = counts.get(ln.runs[0].box, 0) + 1
    for r in runs:  # a rectangle behind fewer lines is shading (a table row), not a box
        if r.box >= 0 and counts[r.box] < BOX_LINES:
            r.box = -1
    lines = _lines(runs) if cells or by_position else _stream_lines(runs)
    flow: list[Block] = []
    in_box: dict[int, list[Line]] = {}
    for ln in lines:
        if ln.runs[0].box >= 0:
            in_box.setdefault(ln.runs[0].box, []).append(ln)
        else:
            flow.append(Block([ln]))
    held = [Block([ln for blk in _order([Block([ln]) for ln in box_lines]) for ln in blk.lines], box=True)
            for box_lines in in_box.values()]
    # (not on a page of two prose columns: there what stands beside a framed table is the other column)
    rows = _cell_rows(flow, held, [boxes[i] for i in in_box]) if cells and _gutter(flow + held) is None else 0
    labelled = _attach_labels(flow, held)
    for i, r in enumerate(runs):
        r.seq = i if r.seq < 0 else r.seq
    gutter = _gutter(flow + held)
    if cells or by_position or gutter is not None:
        ordered = _order(flow + held)
    else:
        ordered = _insert_boxes(flow, held)
    moved = "columns" if gutter is not None and _interleaved(flow, gutter) else \
        "box" if any(_drawn_late(box, flow) for box in held) else "rows" if rows else \
        "labels" if labelled else ""
    return clean_residue(_render(_defer_boxes(ordered), cells)), moved


def _cell_rows(flow: list[Block], held: list[Block], rects: list[tuple[float, float, float, float]]) -> int:
    """Make each table row that has a framed cell of several lines one line, cell by cell; returns how
    many rows were made.

    A matrix table (FDA's CYP450 table: enzyme | inhibitors | inducers) frames a long cell and prints
    the cells beside it line by line, the row label centred: by baseline its rows are lost ('CYP1A2'
    lands among the fourth lines). The row is the framed cell's height: what stands left of the cell
    within it is the first cell(s), what stands right of it the last; a cell's lines are read top to
    bottom. A label ending in a colon and one cell are left to _attach_labels.
    `rects`: the rectangle of each of `held`, in order.
    """
    made = 0
    for box, (x0, y0, x1, y1) in zip(list(held), rects, strict=True):
        inside = [b for b in flow if len(b.lines) == 1 and y0 - 1 <= b.lines[0].y <= y1 + 1]
        pieces = [(seg, ln.y) for b in inside for ln in b.lines for seg in ln.segments]
        left = [p for p in pieces if max(r.x1 for r in p[0]) <= x0 + 1]
        right = [p for p in pieces if min(r.x0 for r in p[0]) >= x1 - 1]
        labelled = any(_label(_join_runs(p[0])) for p in left)
        if not (right or left and not labelled) or len(left) + len(right) < len(pieces):
            continue
        cells = [*_columns(left), [r for ln in box.lines for r in ln.runs], *_columns(right)]
        for b in inside:
            flow.remove(b)
        held.remove(box)
        row = Line([r for c in cells for r in c])
        row.segments = cells
        flow.append(Block([row]))
        made += 1
    return made


def _columns(pieces: list[tuple[list[Run], float]]) -> list[list[Run]]:
    """Pieces of lines on one side of a row (runs, baseline) as cells: grouped into columns by
    overlapping x, left to right, each column's pieces top to bottom."""
    cols: list[list[tuple[list[Run], float]]] = []
    for p in sorted(pieces, key=lambda p: p[0][0].x0):
        lo, hi = p[0][0].x0, max(r.x1 for r in p[0])
        col = next((c for c in cols if lo < max(r.x1 for q in c for r in q[0])
                    and min(q[0][0].x0 for q in c) < hi), None)
        if col is None:
            cols.append([p])
        else:
            col.append(p)
    return [[r for q in sorted(c, key=lambda q: -q[1]) for r in q[0]] for c in cols]


# A row label left of a value cell has at most this many words and ends with a colon ('Clinical Impact:');
# a formulary's medicine names, left of their forms, are no labels (its records are read in stream order).
LABEL_WORDS = 4


def _label(text: str) -> bool:
    return text.endswith(":")


def _attach_labels(flow: list[Block], held: list[Block]) -> int:
    """Put each row label in front of the value cell it names; returns how many were moved.

    FDA interaction tables print 'Clinical Impact:' left of a cell of several lines, centred on it, so
    by baseline (and in pypdf's text) the label lands inside the cell's sentence ('... hyperchloremic
    Clinical Impact: metabolic acidosis.'). A label (_label) is a line wholly left of a box whose lines
    span its baseline; it is read first, as the cell's first line.
    """
    moved = 0
    for box in held:
        lo, hi = min(ln.y for ln in box.lines), max(ln.y for ln in box.lines)
        left = [b for b in flow if len(b.lines) == 1 and b.x1 <= box.x0 + 1 and lo - 1 <= b.lines[0].y <= hi + 1]
        # a label wrapped over two lines ('Clinical' over 'Impact:') comes with its colon line
        labels = left if any(_label(b.lines[0].text(False)) for b in left) and \
            sum(len(b.lines[0].text(False).split()) for b in left) <= LABEL_WORDS else []
        if labels:
            for b in labels:
                flow.remove(b)
            box.lines[:0] = [b.lines[0] for b in sorted(labels, key=lambda b: -b.lines[0].y)]
            moved += len(labels)
    return moved


# A box is out of place in the stream when at least this many lines printed below it come before it.
LATE_LINES = 3


def _drawn_late(box: Block, flow: list[Block]) -> bool:
    """Whether the stream writes a box after lines printed below it (a box drawn last, as MAGICapp does).

    A running footer written first is one or two lines, so LATE_LINES are needed.
    """
    first = min(r.seq for ln in box.lines for r in ln.runs)
    below = [b for b in flow if b.top <= box.bottom + 1 and b.x0 < box.x1 and box.x0 < b.x1
             and min(r.seq for r in b.lines[0].runs) < first]
    return len(below) >= LATE_LINES


def _interleaved(flow: list[Block], gutter: tuple[float, float]) -> bool:
    """Whether the stream alternates between the two sides of a gutter (columns written line by line)."""
    mid = (gutter[0] + gutter[1]) / 2
    sides = [r.x0 + r.x1 < 2 * mid for b in flow for r in sorted(b.lines[0].runs, key=lambda r: r.seq)]
    return sum(a != b for a, b in zip(sides, sides[1:], strict=False)) > 3


def _insert_boxes(flow: list[Block], held: list[Block]) -> list[Block]:
    """The stream's lines with each box put just before the line printed nearest below it (under it).

    A box with no line below it follows the last line printed above it.
    """
    out = list(flow)
    for box in sorted(held, key=lambda b: -b.top):
        under = [(i, b) for i, b in enumerate(out) if not b.box and b.top <= box.bottom + 1
                 and b.x0 < box.x1 and box.x0 < b.x1]
        if under:
            out.insert(max(under, key=lambda ib: (ib[1].top, -ib[0]))[0], box)
            continue
        above = [i for i, b in enumerate(out) if not b.box and b.bottom >= box.top - 1]
        out.insert(max(above) + 1 if above else len(out), box)
    return out


def _assign_boxes(runs: list[Run], boxes: list[tuple[float, float, float, float]]) -> None:
    """Each run to the outermost box holding its middle (nested rectangles: cells inside a table frame)."""
    order = sorted(range(len(boxes)), key=lambda i: -(boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
    for r in runs:
        mx, my = (r.x0 + r.x1) / 2, r.y + r.h / 3
        r.box = next((i for i in order if boxes[i][0] - 1 <= mx <= boxes[i][2] + 1
                      and boxes[i][1] - 1 <= my <= boxes[i][3] + 1), -1)


def _lines(runs: list[Run]) -> list[Line]:
    """Group runs into lines (same box, baselines within SAME_LINE of the font height), top to bottom."""
    lines: list[Line] = []
    for r in sorted(runs, key=lambda r: (-r.y, r.x0)):
        for ln in reversed(lines[-8:]):  # the lines just above: runs arrive top to bottom
            if ln.runs[0].box == r.box and abs(ln.y - r.y) <= SAME_LINE * max(ln.h, r.h) and not _overlaps(ln, r):
                ln.runs.append(r)
                break
        else:
            lines.append(Line([r]))
    for ln in lines:
        _cut_segments(ln)
    return lines


def _cut_segments(ln: Line) -> None:
    """Sort a line's runs left to right and cut them into segments at gaps wider than CELL_GAP."""
    ln.runs.sort(key=lambda r: r.x0)
    ln.segments = []
    seg: list[Run] = []
    for r in ln.runs:
        if seg and r.x0 - max(s.x1 for s in seg) > CELL_GAP * max(r.h, seg[-1].h):
            ln.segments.append(seg)
            seg = []
        seg.append(r)
    ln.segments.append(seg)


def _stream_lines(runs: list[Run]) -> list[Line]:
    """Group runs into lines in content-stream order: a run joins the line being written when it is
    on its baseline, in the same box, and does not overlap it."""
    lines: list[Line] = []
    for r in runs:
        # the line being written, or the one before it (a superscript reference came in between)
        ln = next((ln for ln in reversed(lines[-2:]) if ln.runs[0].box == r.box
                   and abs(ln.y - r.y) <= SAME_LINE * max(ln.h, r.h) and not _overlaps(ln, r)), None)
        if ln is not None:
            ln.runs.append(r)
        else:
            lines.append(Line([r]))
    for ln in lines:
        _cut_segments(ln)
    return lines


def _overlaps(ln: Line, r: Run) -> bool:
    """True when a run lies over text already in the line (another line printed at the same height).

    A run's end includes its trailing space, so a third of the font height of overlap is allowed.
    """
    slack = max(1.0, 0.3 * r.h)
    return any(r.x0 < o.x1 - slack and o.x0 < r.x1 - slack for o in ln.runs)


def _join_runs(runs: list[Run]) -> str:
    """Runs of one segment joined; a space where the runs are apart and neither brings one."""
    out = ""
    prev: Run | None = None
    for r in runs:
        t = r.text.replace("\n", " ")
        if prev is not None and out and not out.endswith(" ") and not t.startswith(" ") \
                and (r.x0 - prev.x1 > 0.15 * r.h or abs(r.y - prev.y) > SAME_LINE * r.h):  # or a cell's next line
            out += " "
        out += t
        prev = r
    return " ".join(out.split())


def _order(blocks: list[Block]) -> list[Block]:
    """Blocks in reading order: sections split by what crosses the gutter, each section's columns in turn."""
    if len(blocks) <= 1:
        return blocks
    blocks = sorted(blocks, key=lambda b: (-b.top, b.x0))
    gutter = _gutter(blocks)
    if gutter is None:
        return blocks
    g0, g1 = gutter
    out: list[Block] = []
    left: list[Block] = []
    right: list[Block] = []
    for b in blocks:
        parts = _split(b, g0, g1)
        if parts is None:  # crosses the gutter: ends the section above it
            out += _order(left) + _order(right) + [b]
            left, right = [], []
            continue
        lo, hi = parts
        if lo is not None:
            left.append(lo)
        if hi is not None:
            right.append(hi)
    return out + _order(left) + _order(right)


def _split(b: Block, g0: float, g1: float) -> tuple[Block | None, Block | None] | None:
    """A block's parts left and right of a gutter, or None when it crosses the gutter.

    A line whose runs stand on both sides (two columns printed on one baseline) is parted in two.
    """
    if b.box or len(b.lines) != 1:
        if b.x0 <= g0 and b.x1 >= g1:
            return None
        return (b, None) if (b.x0 + b.x1) / 2 < (g0 + g1) / 2 else (None, b)
    runs = b.lines[0].runs
    if any(r.x0 <= g0 and r.x1 >= g1 for r in runs):  # spans the gutter (a run's end may poke into it)
        return None
    mid = (g0 + g1) / 2
    lo = [r for r in runs if (r.x0 + r.x1) / 2 < mid]
    hi = [r for r in runs if (r.x0 + r.x1) / 2 >= mid]
    return (_block_of(lo), _block_of(hi))


def _block_of(runs: list[Run]) -> Block | None:
    """A one-line block of runs (segments cut again at gaps), or None for no runs."""
    return Block(_lines(runs)[:1]) if runs else None


def _spans(b: Block) -> list[tuple[float, float, str]]:
    """(x0, x1, text) of what a block prints: each run of a line, or a box as one whole."""
    if b.box or len(b.lines) != 1:
        return [(b.x0, b.x1, "")]
    return [(r.x0, r.x1, r.text) for r in b.lines[0].runs]


def _gutter(blocks: list[Block]) -> tuple[float, float] | None:
    """The widest x band the blocks leave (almost) empty, with prose on both sides, as (x0, x1), or None."""
    if not blocks:
        return None
    x0, x1 = min(b.x0 for b in blocks), max(b.x1 for b in blocks)
    if x1 - x0 < 4 * GUTTER_MIN:
        return None
    width = int((x1 - x0) // 2) + 1  # 2-point bins
    cover = [0] * width
    for b in blocks:
        bins: set[int] = set()
        for lo, hi, _ in _spans(b):
            bins.update(range(int((lo - x0) // 2), min(width, int((hi - x0) // 2) + 1)))
        for i in bins:
            cover[i] += 1
    n = len(blocks)
    best: tuple[float, float] | None = None
    i = 0
    while i < width:
        if cover[i] > GUTTER_CROSSING * n:
            i += 1
            continue
        j = i
        while j < width and cover[j] <= GUTTER_CROSSING * n:
            j += 1
        lo, hi = x0 + 2 * i, x0 + 2 * j
        if hi - lo >= GUTTER_MIN and max(cover[:i] or [0]) >= GUTTER_SIDES * n \
                and max(cover[j:] or [0]) >= GUTTER_SIDES * n and _prose_sides(blocks, lo, hi) \
                and (best is None or hi - lo > best[1] - best[0]):
            best = (lo, hi)
        i = j
    return best


def _prose_sides(blocks: list[Block], lo: float, hi: float) -> bool:
    """Both sides of a band hold prose (COLUMN_WORDS words a line on average), not table cells."""
    sides: list[list[int]] = [[], []]
    for b in blocks:
        spans = _spans(b)
        left = sum(len(t.split()) for x0, x1, t in spans if t and x1 <= lo + 1)
        right = sum(len(t.split()) for x0, x1, t in spans if t and x0 >= hi - 1)
        if left:
            sides[0].append(left)
        if right:
            sides[1].append(right)
    return all(s and sum(s) / len(s) >= COLUMN_WORDS for s in sides)


def _defer_boxes(blocks: list[Block]) -> list[Block]:
    """A box between a sentence and its continuation is read after that paragraph ends."""
    out = list(blocks)
    i = 1
    while i < len(out) - 1:
        b = out[i]
        before, after = out[i - 1], out[i + 1]
        if b.box and not before.box and not after.box and not _line_text(before).rstrip().endswith(_END) \
                and _line_text(after)[:1].islower():
            j = i + 1
            while j + 1 < len(out) and not out[j + 1].box and not _line_text(out[j]).rstrip().endswith(_END) \
                    and not _gap_between(out[j], out[j + 1]):
                j += 1
            out.insert(j, out.pop(i))
            continue
        i += 1
    return out


def _line_text(b: Block) -> str:
    return " ".join(ln.text(False) for ln in b.lines)


def _gap_between(a: Block, b: Block) -> bool:
    """A paragraph gap between two consecutive blocks of one column."""
    h = max(ln.h for ln in a.lines + b.lines)
    return a.bottom - b.top > (PARAGRAPH_GAP - 1) * h or b.top > a.top


def _render(blocks: list[Block], cells: bool) -> str:
    """Lines one per line; a blank line around boxes and at paragraph gaps and column changes."""
    out: list[str] = []
    prev: Block | None = None
    for b in blocks:
        if prev is not None and (b.box or prev.box or _gap_between(prev, b) or b.x0 > prev.x1 or b.x1 < prev.x0):
            out.append("")
        out += [t for t in (ln.text(cells) for ln in b.lines) if t]
        prev = b
    return "\n".join(out)


def clean_residue(text: str) -> str:
    """Drop a cross-reference repeated on lines of its own, and one repeated right after another.

    A single '(3.1)' line stays: in a table it is a value, not residue.
    Example: 'DOSAGE\\n(2)\\n(2)\\nGive 2.5 mg (2.4) (2)' -> 'DOSAGE\\nGive 2.5 mg (2.4)'
    """
    lines = text.split("\n")
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    drop = set()
    for a, b in zip(filled, filled[1:], strict=False):  # neighbours, blank lines between them skipped
        if lines[a].strip() == lines[b].strip() and _XREF_LINE.match(lines[a].strip()):
            drop |= {a, b}
    return "\n".join(_XREF_REPEAT.sub(_first_unless_new, ln) for i, ln in enumerate(lines) if i not in drop)


def _first_unless_new(m: re.Match) -> str:
    """Of cross-references in a row, drop those that only repeat a section of the first: '(2.4) (2)' -> '(2.4)'.

    Example: '(2.4) (2)' -> '(2.4)'; '(3.1) (2.3)' (two table values) -> unchanged
    """
    refs = re.findall(XREF, m.group(0))
    first = re.sub(r"[()\s]", "", refs[0])
    kept = [refs[0]] + [r for r in refs[1:] if not (first + ".").startswith(re.sub(r"[()\s]", "", r) + ".")]
    return " ".join(kept) if len(kept) < len(refs) else m.group(0)
