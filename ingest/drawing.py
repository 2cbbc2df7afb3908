"""What a page draws, by position: text runs with their start and end, and the rectangles that may be boxes.

Runs come from pypdf 7's layout-mode machinery (`text_show_operations` without its left-align step),
which knows each run's end from the font's widths; pypdf's visitor functions give only a run's start.
These are pypdf internals: pyproject pins pypdf 7, and ingest.layout falls back to pypdf's plain text
whenever this module cannot place a page's text (rotated text, text in form XObjects, any failure).
"""

from __future__ import annotations

from dataclasses import dataclass

# A rectangle is a box candidate when it is smaller than this share of the page (a page border is not
# a box) ...
BOX_MAX_AREA = 0.6
# ... and at least this share of the page wide: recommendation boxes, boxed warnings and Highlights
# columns are; the shaded cells of a formulary's record table are not (they are read in stream order).
BOX_WIDTH = 0.4
# A bar of a frame is at most this thick (points): FDA boxed warnings are framed by 3-4 point bars.
BAR = 5.0
# pypdf joins the text shows of one line of a BT block into one run, padding gaps with spaces; a gap
# wider than this many font heights (ingest.layout.CELL_GAP) parts cells, so the run is cut there.
CELL_GAP = 1.5
# A show standing at least this many font heights after the ink before it (twice a word space) may
# open a table's column (Run.starts).
STARTS_GAP = 0.5


@dataclass
class Run:
    """One piece of text where it is printed: x from x0 to x1 along baseline y, font height h."""

    x0: float
    x1: float
    y: float
    h: float
    text: str
    box: int = -1  # index of the box holding it, -1 for none
    seq: int = -1  # position in the content stream (read numbers runs in the order given)
    # (x, offset in text) where a text show starts STARTS_GAP or more after the ink before it: a table's
    # column may start there, closer to the cell before it than CELL_GAP (ingest.tables re-cuts a
    # grid's header lines at its columns)
    starts: tuple[tuple[float, int], ...] = ()


def runs_and_boxes(page) -> tuple[list[Run], list[tuple[float, float, float, float]]] | None:
    """Positioned runs and rectangles of a page, or None when layout mode cannot place its text."""
    from pypdf._text_extraction._layout_mode._fixed_width_page import recurse_to_target_op, set_font_operation
    from pypdf._text_extraction._layout_mode._text_state_manager import TextStateManager

    stream = content_stream(page)
    if stream is None:
        return [], []
    ops = stream.operations
    if _has_text_forms(page, ops):
        return None  # layout mode does not enter form XObjects; plain text does
    fonts = page._layout_mode_fonts()
    state = TextStateManager()
    groups: list = []
    it = iter(ops)
    # text_show_operations' loop, without its shift of every x by the leftmost one (boxes need page x)
    for operands, op in it:
        if op in (b"BT", b"q"):
            bts, tjs = recurse_to_target_op(it, state, b"ET" if op == b"BT" else b"Q", fonts, False)
            if any(t.rotated for t in tjs) or not all(t.font.interpretable for t in tjs):
                return None
            groups.extend(_cut_at_gaps(bts, tjs))
        elif op == b"Tf":
            set_font_operation(state, fonts, operands)
        elif op == b"cm":  # a page-level transform (layout mode ignores it: its x and y would not be the page's)
            state.add_cm(*operands)
        else:
            state.set_state_param(op, operands)
    if any(g["flip_sort"] < 0 for g in groups) and not all(g["flip_sort"] < 0 for g in groups):
        return None  # some text upside down: plain text reads it
    runs = [Run(float(g["tx"]), float(g["displaced_tx"]), float(g["ty"]), float(g["font_height"]) or 1.0,
                g["text"], starts=g.get("starts", ())) for g in groups if g["text"].strip()]
    return runs, _rectangles(ops, float(page.mediabox.width), float(page.mediabox.height))


def _cut_at_gaps(bts: list, tjs: list) -> list:
    """pypdf's runs (BTGroups) cut where two of their text shows stand further apart than CELL_GAP.

    A BTGroup starts at a text show (same tx and ty) and takes the shows after it until the next
    group's; its text is each show's text after as many spaces as its gap holds. Only a group with a
    wide gap inside is rebuilt, so every other run is pypdf's own.
    Example: one group '5 to < 8' + 50 spaces + '20 + 160' -> groups '5 to < 8 ' and '20 + 160 '
    """
    out: list = []
    k = 0
    starts: list[int] = []
    for g in bts:  # each group's first show, in order
        while k < len(tjs) and not (tjs[k].tx == g["tx"] and tjs[k].ty == g["ty"]):
            k += 1
        starts.append(k)
        k += 1
    for i, g in enumerate(bts):
        shows = tjs[starts[i]:starts[i + 1] if i + 1 < len(starts) else len(tjs)]
        out.extend(_cut_group(g, shows) if shows else [g])
    return out


def _cut_group(g: dict, shows: list) -> list:
    """One BTGroup as one or more groups, cut at wide gaps between its inked shows (see _cut_at_gaps)."""
    h = float(g["font_height"]) or 1.0
    pieces: list[list] = [[shows[0]]]
    last = shows[0]  # the last show with ink
    for t in shows[1:]:
        if abs(t.ty - g["ty"]) > h or t.tx < last.displaced_tx - 5 * t.space_tx:
            break  # pypdf started a new group here (or the shows ran out of this one)
        if t.text.strip() and last.text.strip() and t.tx - last.displaced_tx > CELL_GAP * h:
            pieces.append([t])
        else:
            pieces[-1].append(t)
        if t.text.strip():
            last = t
    if len(pieces) == 1:
        return [dict(g, starts=_show_text(pieces[0])[1])] if len(shows) > 1 else [g]
    # every piece keeps the group's baseline: a cell centred a little higher stays on its row's line
    return [dict(g, tx=p[0].tx, text=t, starts=st, displaced_tx=p[-1].displaced_tx)
            for p in pieces for t, st in [_show_text(p)]]


def _show_text(shows: list) -> tuple[str, tuple[tuple[float, int], ...]]:
    """Text shows joined as pypdf joins them (each after as many spaces as its gap from the last holds),
    and where each show after a space starts (Run.starts)."""
    text = shows[0].text
    starts = []
    for a, b in zip(shows, shows[1:], strict=False):
        space = b.space_tx * abs(b.transform[0])
        gap = round(b.tx - a.displaced_tx, 3)
        text += " " * (round(gap / space) if gap > 0 and space else 0)
        lead = len(b.text) - len(b.text.lstrip())
        ink = len(a.text) - len(a.text.rstrip())  # the last show's trailing spaces count as gap
        wide = gap + ink * space + lead * space >= STARTS_GAP * float(b.font_height)
        if b.text.strip() and (lead or text[-1:].isspace()) and wide:
            starts.append((float(b.tx), len(text) + lead))
        text += b.text
    return text, tuple(starts)


def content_stream(page):
    """The page's content stream, parsed once: it replaces the page's /Contents in memory, so that
    pypdf's own text extraction reuses it instead of parsing the stream again (half of the layout cost).
    None for a page without contents."""
    from pypdf.generic import ContentStream, NameObject

    contents = page.get("/Contents")
    if contents is None:
        return None
    obj = contents.get_object()
    if isinstance(obj, ContentStream):
        return obj
    stream = ContentStream(obj, page.pdf, "bytes")
    page[NameObject("/Contents")] = stream
    return stream


def _has_text_forms(page, ops) -> bool:
    """Whether the page draws a form XObject (whose text layout mode would miss)."""
    names = {o[0] for o, op in ops if op == b"Do" and o}
    if not names:
        return False
    xobjects = (page.get("/Resources") or {}).get("/XObject") or {}
    for name in names:
        xo = xobjects.get(name)
        xo = xo.get_object() if xo is not None else None
        if xo is not None and xo.get("/Subtype") == "/Form":
            return True
    return False


def _rectangles(ops, page_width: float, page_height: float) -> list[tuple[float, float, float, float]]:
    """Painted rectangles (x0, y0, x1, y1) in page space that may be boxes, frames of thin bars merged."""
    rects = _painted(ops)
    big = [r for r in rects if r[2] - r[0] >= 40 and r[3] - r[1] >= 10
           and (r[2] - r[0]) * (r[3] - r[1]) <= BOX_MAX_AREA * page_width * page_height]
    return [r for r in big + _frames(rects) if not _grid_cell(r, big) and r[2] - r[0] >= BOX_WIDTH * page_width]


def _painted(ops) -> list[tuple[float, float, float, float]]:
    """Every painted rectangle (x0, y0, x1, y1) of a page in page space; clipping paths left out."""
    ctm, stack, pending, rects = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [], [], []
    for operands, op in ops:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop() if stack else ctm
        elif op == b"cm" and len(operands) == 6:
            ctm = _multiply([float(v) for v in operands], ctm)
        elif op == b"re" and len(operands) == 4:
            x, y, w, h = (float(v) for v in operands)
            (ax, ay), (bx, by) = (_apply(ctm, x, y), _apply(ctm, x + w, y + h))
            pending.append((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
        elif op in (b"f", b"F", b"f*", b"S", b"s", b"B", b"B*", b"b", b"b*"):
            rects += pending
            pending = []
        elif op == b"n":
            pending = []  # a clipping path: nothing is painted
    return rects


def _grid_cell(r: tuple[float, float, float, float], rects: list[tuple[float, float, float, float]]) -> bool:
    """A shaded table cell: another rectangle of the same height touches it side by side, or one of the
    same width above or below (a column of cells)."""
    return any(o is not r and (
        abs(o[1] - r[1]) <= 2 and abs(o[3] - r[3]) <= 2 and (abs(o[0] - r[2]) <= 2 or abs(r[0] - o[2]) <= 2)
        or abs(o[0] - r[0]) <= 2 and abs(o[2] - r[2]) <= 2 and (abs(o[1] - r[3]) <= 2 or abs(r[1] - o[3]) <= 2))
        for o in rects)


def _frames(rects: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Boxes drawn as four thin bars: two horizontal bars of one width joined by vertical bars at both ends."""
    flat = [r for r in rects if r[3] - r[1] <= BAR and r[2] - r[0] >= 40]
    tall = [r for r in rects if r[2] - r[0] <= BAR and r[3] - r[1] >= 10]
    out = []
    for top in flat:
        for bottom in flat:
            if bottom[1] >= top[1] or abs(bottom[0] - top[0]) > 3 or abs(bottom[2] - top[2]) > 3:
                continue
            height = top[3] - bottom[1]
            sides = [t for t in tall if t[1] <= bottom[3] + 3 and t[3] >= top[1] - 3 and t[3] - t[1] >= 0.8 * height
                     and (abs(t[0] - top[0]) <= 4 or abs(t[2] - top[2]) <= 4)]
            if len(sides) >= 2:
                out.append((top[0], bottom[1], top[2], top[3]))
    return out


def _multiply(m: list[float], n: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return [a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F]


def _apply(m: list[float], x: float, y: float) -> tuple[float, float]:
    return x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]


# ---- ruled tables ----

# A rule is a painted rectangle of no thickness at least RULE_MIN long (points): FDA labels draw each
# cell's four edges so. Thin bars and stroked lines are left to the gap reader: in the WHO guidelines
# they shade rows and underline headings as often as they rule cells.
RULE = 0.0
RULE_MIN = 4.0
# Rules this close (points) are one line of the grid.
RULE_TOL = 1.5

Cell = tuple[float, float, float, float, tuple[int, int, int, int]]  # x0, y0, x1, y1, (col0, col1, row0, row1)


def ruled_cells(page) -> list[Cell]:
    """The cells of the tables a page draws with rules (FDA labels draw each cell's four edges), merged
    cells included: the grid's smallest boxes joined across every side no rule covers, kept where the
    joined box is a rectangle with rules on all four sides. Columns and rows count from the left and the top.

    Example: a page drawing a 2 x 2 grid of rules around '1 | 2' over '3 | 4' -> four cells
    """
    stream = content_stream(page)
    if stream is None:
        return []
    across, down = _rules(stream.operations)
    if len(across) < 3 or len(down) < 3:
        return []
    xs = _clustered([x for x, _, _ in down])
    ys = sorted(_clustered([y for y, _, _ in across]), reverse=True)  # top first
    parent = {(i, j): (i, j) for i in range(len(xs) - 1) for j in range(len(ys) - 1)}

    def root(a: tuple[int, int]) -> tuple[int, int]:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in list(parent):
        if i + 2 < len(xs) and not _ruled(down, xs[i + 1], ys[j + 1], ys[j]):
            parent[root((i, j))] = root((i + 1, j))
        if j + 2 < len(ys) and not _ruled(across, ys[j + 1], xs[i], xs[i + 1]):
            parent[root((i, j))] = root((i, j + 1))
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a in parent:
        groups.setdefault(root(a), []).append(a)
    out = []
    for g in groups.values():
        i0, i1 = min(a[0] for a in g), max(a[0] for a in g) + 1
        j0, j1 = min(a[1] for a in g), max(a[1] for a in g) + 1
        if len(g) != (i1 - i0) * (j1 - j0):
            continue
        x0, x1, top, bottom = xs[i0], xs[i1], ys[j0], ys[j1]
        if _ruled(across, top, x0, x1) and _ruled(across, bottom, x0, x1) and _ruled(down, x0, bottom, top) \
                and _ruled(down, x1, bottom, top):
            out.append((x0, bottom, x1, top, (i0, i1, j0, j1)))
    return out


def _rules(ops) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """The painted rules of a page in page space: horizontal ones as (y, x0, x1), vertical ones as (x, y0, y1)."""
    across, down = [], []
    for x0, y0, x1, y1 in _painted(ops):
        if y1 - y0 <= RULE and x1 - x0 >= RULE_MIN:
            across.append(((y0 + y1) / 2, x0, x1))
        elif x1 - x0 <= RULE and y1 - y0 >= RULE_MIN:
            down.append(((x0 + x1) / 2, y0, y1))
    return across, down


def _clustered(values: list[float]) -> list[float]:
    """Values within RULE_TOL of the one before merged into their mean, ascending."""
    groups: list[list[float]] = []
    for v in sorted(values):
        if groups and v - groups[-1][-1] <= RULE_TOL:
            groups[-1].append(v)
        else:
            groups.append([v])
    return [sum(g) / len(g) for g in groups]


def _ruled(rules: list[tuple[float, float, float]], at: float, lo: float, hi: float) -> bool:
    """Whether rules at `at` cover the stretch lo..hi (gaps of RULE_TOL allowed)."""
    spans = sorted((a, b) for c, a, b in rules if abs(c - at) <= RULE_TOL and b > lo + RULE_TOL and a < hi - RULE_TOL)
    reach = lo
    for a, b in spans:
        if a > reach + RULE_TOL:
            return False
        reach = max(reach, b)
    return reach >= hi - RULE_TOL
