"""Tables as rows and columns: grids found by position on any page, and a table's header merged into one
label per column so that each row's cells can be paired with their column's label.

Written by hand: pdfplumber's table finder reads ruled tables, but the corpus's dosing tables are
mostly unruled (the malaria guideline's weight bands), and pypdf is the reader (ingest.layout says why).

- A grid is three or more lines one below another that each print two or more cells (segments apart
  by more than CELL_GAP font heights, ingest.layout), with few words a cell (prose columns side by side
  have many). Where the page's text prints such a line as plain words, its cells are parted with ' | '
  (the page text stays the page's words: the chunker and the citation checks read the same text).
- A table drawn with rules of no thickness (FDA labels draw each cell's edges) whose cells wrap over lines
  is read by its cells instead (ruled_grids): the gaps would part a wrapped cell's lines into rows.
- Header rows: the first row, then rows that only continue it (units in parentheses and words in lower
  case, or fewer cells than the table's rows, with no number among them); a table whose first column
  names drugs in lower case has its first row taken for header (a known limit). Labels are merged
  column by column; a row with fewer cells fills the rightmost columns (a wrapped last header cell).
"""

from __future__ import annotations

import re

from ingest.drawing import Cell, Run
from ingest.layout import Block, Line, _gutter, _join_runs, _lines, _split
from ingest.sections import GAP
from rag.text import LABEL, paired_row, squash

# A grid has at least this many lines of two or more cells, half of them with a number opening a cell
# (a dose, a band: a formulary's name-and-form lines and an index's two columns are not tables, nor is
# a table of contents, every line ending in a page number) ...
GRID_LINES = 3
# ... with at most this many words a cell on average (a line of two prose columns has more).
GRID_WORDS = 5.0
# At most this many lines just above a grid are read as its header (a header cell wrapped over lines).
ABOVE_LINES = 4
# At most this many rows make a table's header, and a label has at most this many words (longer, the
# first rows are not a header: pairing them with every cell would multiply the table's text).
HEADER_ROWS = 3
LABEL_WORDS = 16
_DATA = re.compile(r"^[\d<>≤≥±.+\-–]")  # a cell that opens with a number or a bound is data
_UNIT = re.compile(r"^\(.*\)$")
_PAGE_NUMBER = re.compile(r"^\d{1,3}$")
_ROMAN = re.compile(r"^[ivxlc]{1,6}$")


# A table drawn with rules is read by its cells (ruled_grids) when it has at least this many columns.
RULED_COLUMNS = 3

Grid = tuple[list[list[str]], list[str]]  # rows of cells to write, and the pieces the page prints
Piece = tuple[float, float, str]  # a cell's x0, x1 and text


def page_grids(runs: list[Run]) -> list[Grid]:
    """The page's grids (`grids`), found in each prose column apart (a table in one column shares its
    baselines with the other column's prose), as the rows to write and the pieces they print.

    Header lines are cut again at the columns where the grid's fullest rows start (a header cell may
    stand closer than CELL_GAP to the next); header lines just above the grid are taken in; the header
    is read column by column, top to bottom, into one row (a header cell wrapped over lines, or centred
    a little higher than its neighbours, is one label).
    """
    lines = _lines(runs)
    gutter = _gutter([Block([ln]) for ln in lines])
    sides: list[list[Line]] = [lines]
    if gutter is not None:
        sides = [[], []]
        for ln in lines:
            parts = _split(Block([ln]), *gutter)
            for side, part in zip(sides, parts or (Block([ln]), Block([ln])), strict=True):
                if part is not None:
                    side.append(part.lines[0])
    out = []
    for side in sides:
        for a, b in grids([[_join_runs(s) for s in ln.segments] for ln in side]):
            width = max(len(ln.segments) for ln in side[a:b])
            cols = [min(ln.segments[k][0].x0 for ln in side[a:b] if len(ln.segments) == width)
                    for k in range(width)]
            inside = [_cut_at(ln, cols) for ln in side[a:b]]
            above = [_cut_at(ln, cols) for ln in side[max(0, a - ABOVE_LINES):a]]
            opens = not data_row([t for _, _, t in inside[0]])
            # a line across a column's start (a title above the table) is no header cell
            heads = [[] if any(x0 + ln_h < c < x1 - ln_h for x0, x1, _ in r for c in cols) else [t for _, _, t in r]
                     for r, ln_h in zip(above, (ln.h for ln in side[max(0, a - ABOVE_LINES):a]), strict=True)]
            out.append(_read_header(above[header_start(heads, opens):] + inside))
    return out


def _read_header(rows: list[list[Piece]]) -> Grid:
    """A grid's rows with its header rows (those above the first data row) read column by column into one."""
    first = next((i for i, r in enumerate(rows) if data_row([t for _, _, t in r])), len(rows))
    pieces = [t for r in rows for _, _, t in r]
    body = [[t for _, _, t in r] for r in rows[first:]]
    full = [r for r in rows[first:] if len(r) == max(len(x) for x in rows[first:])] if body else rows
    width = len(full[0]) if full else 0
    spans = [(min(r[k][0] for r in full), max(r[k][1] for r in full)) for k in range(width)]

    def column(x0: float, x1: float) -> int:  # the column it overlaps most, else the nearest
        return max(range(width), key=lambda k: (min(x1, spans[k][1]) - max(x0, spans[k][0]),
                                                -abs((x0 + x1) - sum(spans[k]))))

    if first == 0 or not width:
        return body or [[t for _, _, t in r] for r in rows], pieces
    labels = [" ".join(t for r in rows[:first] for x0, x1, t in r if column(x0, x1) == k) for k in range(width)]
    return [[x for x in labels if x], *body], pieces


def _cut_at(ln: Line, cols: list[float]) -> list[Piece]:
    """A line's cells (x0, x1, text): its segments, each cut again where a run or a text show starts at
    one of the columns (from a third of the font height before it to one after: a header cell may be
    indented)."""

    def at_col(x: float) -> bool:
        return any(-0.3 * ln.h <= x - c <= ln.h for c in cols)

    cells: list[Piece] = []
    for seg in ln.segments:
        parts: list[list] = []  # [x0, x1, text]
        prev: Run | None = None
        for r in seg:
            cuts = [(x, off) for x, off in r.starts if at_col(x)]
            xs = [r.x0] + [x for x, _ in cuts] + [r.x1]
            offs = [0] + [off for _, off in cuts] + [len(r.text)]
            pieces = [[xs[i], xs[i + 1], r.text[offs[i]:offs[i + 1]]] for i in range(len(offs) - 1)]
            if not parts or at_col(r.x0):
                parts.append(pieces[0])
            else:  # as _join_runs joins the runs of a segment
                apart = prev is not None and r.x0 - prev.x1 > 0.15 * r.h
                parts[-1][1:] = [pieces[0][1], parts[-1][2] + (" " if apart else "") + pieces[0][2]]
            parts += pieces[1:]
            prev = r
        cells += [(p[0], p[1], " ".join(p[2].split())) for p in parts if p[2].strip()]
    return cells


def grids(lines: list[list[str]]) -> list[tuple[int, int]]:
    """Of positioned lines (each its cells, left to right, top to bottom), the grids as [start, end) spans:
    runs of lines of two or more cells (GRID_LINES at least, GRID_WORDS a cell at most); a short
    single-cell line between them (a wrapped cell) stays in the grid.

    Example: [['Weight', 'Dose'], ['(kg)'], ['5 to < 8', '20'], ['8 to < 11', '30'], ['Give with food.']]
        -> [(0, 4)]
    """
    out: list[tuple[int, int]] = []
    start = 0

    def close(end: int) -> None:
        while end > start and len(lines[end - 1]) < 2:
            end -= 1
        multi = [c for c in lines[start:end] if len(c) >= 2]
        words = [len(x.split()) for c in multi for x in c]
        contents = all(_PAGE_NUMBER.match(c[-1]) or _ROMAN.match(c[-1]) for c in multi)  # page numbers last
        if len(multi) >= GRID_LINES and sum(words) / len(words) <= GRID_WORDS and not contents \
                and 2 * sum(data_row(c) for c in multi) >= len(multi):
            out.append((start, end))

    for i, cells in enumerate(lines + [[]]):
        if len(cells) >= 2 or (i > start and len(" ".join(cells)) < 40 and i < len(lines)):
            continue
        close(i)
        start = i + 1
    return out


def header_start(above: list[list[str]], opens_with_header: bool = False) -> int:
    """Of the lines just above a grid (cut at its columns), where its header starts: at the highest line
    of two or more cells (or of any, when the grid opens with header rows) below which every line reads
    as header (few words a cell, no full stop); len(above) when none does.

    Example: [['is recommended.'], ['Body weight', 'Dose (mg)'], ['given daily']] -> 1
    """
    start = len(above)
    for k in range(len(above) - 1, -1, -1):
        cells = above[k]
        words = [len(c.split()) for c in cells]
        if not cells or cells[-1].endswith(".") or sum(words) / len(words) > GRID_WORDS + 1:
            break
        if len(cells) >= 2 or opens_with_header:
            start = k
    return start


def mark_cells(text: str, found: list[Grid], ruled: list[Grid] | None = None) -> str:
    """A page's text with each grid's lines replaced by its rows written cell by cell (' | ').

    The lines replaced are consecutive (blank lines among them dropped) and together print exactly the
    grid's cells, each line whole cells (in whatever order the reader wrote them: pypdf's plain text
    gives a header cell by cell); so the page keeps its words. Lines already cut into cells (pypdf's
    layout mode on a captioned table's page) are kept.
    Example: ('Dose\\nWeight\\n5 20\\n8 30', [([['Weight', 'Dose'], ['5', '20'], ['8', '30']],
              ['Weight', 'Dose', '5', '20', '8', '30'])]) -> 'Weight | Dose\\n5 | 20\\n8 | 30'
    `ruled`: the grids of tables drawn with rules (ruled_grids), written first, over lines already cut too
    (their rules say which lines make a cell).
    """
    lines = text.split("\n")
    for grids, recut in ((ruled or [], True), (found, False)):
        for rows, pieces in grids:
            span = _window(lines, pieces, recut)
            if span is not None:
                # a ruled table's rows apart by blank lines, as layout text parts rows (each row is one)
                written = [GAP.join(c) for c in rows]
                lines[span[0]:span[1]] = "\n\n".join(written).split("\n") if recut else written
    return "\n".join(lines)


def _window(lines: list[str], pieces: list[str], recut: bool = False) -> tuple[int, int] | None:
    """The lines [i, j) that print exactly the grid's pieces, each line whole pieces, or None.
    `recut`: a line already cut into cells (' | ') may be read again."""
    cells = [squash(c) for c in pieces if squash(c)]

    def line_at(k: int) -> str:
        return squash(lines[k].replace(GAP, " ")) if recut else squash(lines[k])

    for i, first in enumerate(lines):
        left = list(cells)
        if not first.strip() or not _take(line_at(i), left):
            continue
        j = i + 1
        while left and j < len(lines) and (not lines[j].strip() or _take(line_at(j), left)):
            j += 1
        if not left:
            return i, j
    return None


def _take(line: str, cells: list[str]) -> bool:
    """Remove from `cells` the cells that make up `line` (squashed) whole, in order; False (and `cells`
    untouched) when it is not made of them.

    Example: ('5to<820', ['20', '5to<8', '30']) -> True, cells ['30']
    """
    if GAP.strip() in line:
        return False
    rest, used = line, []
    pool = list(cells)
    while rest:
        c = max((c for c in pool if rest.startswith(c)), key=len, default=None)
        if c is None:
            return False
        pool.remove(c)
        used.append(c)
        rest = rest[len(c):]
    cells[:] = pool
    return True


def split_header(rows: list[list[str]]) -> tuple[int, list[str]]:
    """How many of a table's first rows are its header, and the header merged into one label per column.

    Example: [['Age', 'Weight'], ['(years)', '(kg)'], ['2 to 5', '10']] -> (2, ['Age (years)', 'Weight (kg)'])
    """
    if not rows or any(_DATA.match(c) for c in rows[0]):
        return 0, []  # the first row is data: no header
    width = max((len(r) for r in rows[1:]), default=len(rows[0]))
    n = 1
    while n < min(len(rows) - 1, HEADER_ROWS) and _continues_header(rows[n], width):
        n += 1
    labels = list(rows[0])
    for row in rows[1:n]:
        if len(row) > len(labels):
            labels = [""] * (len(row) - len(labels)) + labels
        for k, cell in enumerate(row):  # fills the rightmost columns
            j = len(labels) - len(row) + k
            labels[j] = f"{labels[j]} {cell}".strip()
    if any(len(x.split()) > LABEL_WORDS or "..." in x or LABEL in x or x.endswith(".") for x in labels):
        return 0, []  # not a header: an index's leaders, a sentence, a labelled value ('Injection: 4 mg/mL')
    return n, labels


def data_row(cells: list[str]) -> bool:
    """Whether a row holds a number opening a cell (a dose, a weight band, a clearance).

    Example: ['5 to < 8', '20 + 160'] -> True; ['atropine', 'Injection: 1 mg in 1 mL ampoule.'] -> False;
        ['Glossary', '12'] -> False
    """
    # a bare number standing last is a page number (a table of contents), not data
    return any(_DATA.match(c) and not (k == len(cells) - 1 and _PAGE_NUMBER.match(c)) for k, c in enumerate(cells))


def _continues_header(row: list[str], width: int) -> bool:
    """Whether a row below the header's first row is more of the header (see the module docstring)."""
    if any(_DATA.match(c) for c in row):
        return False
    return all(_UNIT.match(c) or c[:1].islower() for c in row) or len(row) < width


def pair(labels: list[str], cells: list[str]) -> str:
    """A row's text with each cell after its column's label, or the row as printed (' | ') when its
    cells do not match the labels one to one.

    Example: (['Weight (kg)', 'Dose (mg)'], ['5 to < 8', '20']) -> 'Weight (kg): 5 to < 8 · Dose (mg): 20'
    """
    if len(cells) != len(labels) or len(cells) < 2:
        return GAP.join(cells)
    return paired_row(labels, cells)


def ruled_grids(runs: list[Run], cells: list[Cell]) -> list[Grid]:
    """The grids of the tables a page draws with rules (ingest.drawing.ruled_cells), each cell's text its
    runs read line by line; a cell spanning rows is given in each row it spans. A table whose text runs
    across a rule, or that has fewer than two rows or columns, is left to page_grids.
    """
    out = []
    for table in _tables(cells):
        texts: dict[int, list[Run]] = {k: [] for k in range(len(table))}
        x0, y0 = min(c[0] for c in table), min(c[1] for c in table)
        x1, y1 = max(c[2] for c in table), max(c[3] for c in table)
        crossing = False
        for r in runs:
            if not (x0 - 1 <= r.x0 and r.x1 <= x1 + 1 and y0 - 1 <= r.y <= y1 + 1):
                continue
            home = [k for k, c in enumerate(table) if c[0] - 1 <= r.x0 and r.x1 <= c[2] + 1 and c[1] - 1 <= r.y <= c[3]]
            if not home:
                crossing = True  # text across a rule: not this reader's grid
                break
            texts[home[0]].append(r)
        rows_at = sorted({j for c in table for j in range(c[4][2], c[4][3])})
        cols = sorted({c[4][0] for c in table})
        lines = {k: [ln.runs for ln in _lines(rs)] for k, rs in texts.items()}
        # only where cells wrap over lines (page_grids reads one-line cells by their gaps) and the table
        # has columns enough to be one (two columns are a glossary's or a formulary's records)
        if crossing or len(rows_at) < 2 or len(cols) < RULED_COLUMNS or not any(len(x) > 1 for x in lines.values()):
            continue
        rows = []
        for j in rows_at:
            row = sorted((c[4][0], " ".join(_join_runs(ln) for ln in lines[k]))
                         for k, c in enumerate(table) if c[4][2] <= j < c[4][3])
            if any(t for _, t in row):
                rows.append([t for _, t in row if t])  # an empty cell is not written: the row is the page's words
        pieces = [" ".join(r.text.split()) for rs in texts.values() for r in rs if r.text.strip()]
        out.append((rows, pieces))
    return out


def _tables(cells: list[Cell]) -> list[list[Cell]]:
    """Cells grouped into tables: cells that share a side are one table."""
    parent = list(range(len(cells)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, (_, _, _, _, (i0, i1, j0, j1)) in enumerate(cells):
        for b, (_, _, _, _, (k0, k1, m0, m1)) in enumerate(cells[:a]):
            beside = (i1 == k0 or k1 == i0) and j0 < m1 and m0 < j1
            above = (j1 == m0 or m1 == j0) and i0 < k1 and k0 < i1
            if beside or above:
                parent[root(a)] = root(b)
    groups: dict[int, list[Cell]] = {}
    for a, c in enumerate(cells):
        groups.setdefault(root(a), []).append(c)
    return list(groups.values())

