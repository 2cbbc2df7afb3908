"""Stage 2: cleaned pages -> section-aware chunks that fit the embedder's window, tables kept whole.

Written by hand because no library splitter knows pages, section headings and table rows at once:
llama-index's SentenceSplitter counts GPT tokens (not the embedder's word pieces) and cuts tables
mid-row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest import records, tables
from ingest.sections import (
    GAP,
    RUN_ON_WORDS,
    Outline,
    SectionPath,
    clause_open,
    heading_of,
    only_labels,
    repeated_labels,
    run_on,
    section_number,
)
from rag.text import split_sentences, squash
from rag.types import Chunk, Page, sha256_hex
from rag.verify import TABLE_HEAD_END, looks_like_instruction

CAPTION = re.compile(r"^(Table|TABLE)\s+[A-Z]?\d+[A-Za-z]?(?:[.:]|\s)")
END_PUNCT = (".", "!", "?", ":", ";", ")", "]")
# A list item: a dash or bullet, then a space ('− Otitis media', '• Pregnancy').
LIST_ITEM = re.compile(r"^[−–\-•·▪◦]\s")

# Which cutting rules made a document's chunks; raise it with any change that cuts an existing document
# differently. Stored per document at ingest: identical bytes are never cut again, so `ingest` reports
# documents cut by an older release (README, "Versions"). 0: not recorded (before 2026-11-27).
# 1: record lists kept whole, unnumbered headings nested under numbered sections, table-head marker.
# 2: the pieces of a cut sentence record the cut and whether the whole sentence reads as an instruction
#    (same text and chunk ids; chunks cut before carry no such record, so an injection split across two
#    of them is judged piece by piece until the document is re-cut).
# 3: page text read in reading order by position (ingest.layout): boxes whole, columns in turn,
#    cross-reference residue dropped.
# 4: WHO recommendations are records of their own (kind "recommendation") with strength, certainty
#    and year (ingest.records).
# 5: the sentences of an FDA boxed warning are chunks of their own, of kind "boxed_warning".
# 6: table chunks carry their caption, header cells and each row's cells as fields.
# 7: tables found by position wherever they stand (uncaptioned ones too), a row's cells paired with their
#    column's label (a multi-row header merged), a table continued on the next page keeps its header
#    there, and a table's chunk never spans pages.
# 8: line numbers in the left margin (FDA draft guidances) are not read into the text; roman-numbered
#    chapters and their lettered sections ("III. PROCESS AND PROCEDURES", "A. Filing Review") are headings.
# 9: a page whose stream writes its bullets apart from their items is read by position; a sub-list
#    bullet printed as the letter o is read as one; a table row's label ('Clinical Impact:') is read
#    before the cell it names, and a row with a framed cell of several lines is read cell by cell.
# 10: a numbered line whose number the document's outline gives to another title is a list item, not
#    a heading (the WHO malaria guideline's '4. Appropriate weight-based dosing').
# 11: a page counter that a reading by position put mid-page ('180 of 451') is dropped with the running
#    lines.
# 12: a capitals title wrapped over lines is one heading ('WARNING: SERIOUS ADVERSE REACTIONS ... TENDON' /
#    'RUPTURE, ...'), a label's boxed warning holds no numbered section, a subsection's number after left-out
#    chapters is no leap ('12.1' after '8.7'), and a numbered reference ('8. Ruberanziza E, ...') no heading.
# 13: a guideline's annex ('Annex 4.2 Safety of praziquantel ...') is a heading.
# 14: a grid of numbers printed without frames or column gaps (a guideline annex's conversion table) is
#    read as rows under its header line and group label ('Single', 'Duplicate').
# 15: a table drawn with rules whose cells wrap over lines is read by its cells (ingest.drawing.ruled_cells,
#    ingest.tables.ruled_grids), its rows apart by blank lines; a caption wrapped over lines goes on; a table
#    continued on the next page keeps its header though a row there has an empty cell.
CHUNKER_VERSION = 15

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class Unit:
    """A piece that is never split: a sentence or a table row (with its table's caption/header)."""

    kind: str  # "text", "table"
    text: str
    page: int
    page_end: int
    section: str
    table_head: str = ""  # caption and header rows, repeated on every chunk of the table
    # a piece of a sentence or row cut at words (rag.types.Chunk says why these are recorded)
    starts_mid: bool = False
    ends_mid: bool = False
    cut_instruction: bool = False
    fields: str = ""  # a recommendation record's strength, certainty and year (ingest.records)
    cells: tuple[str, ...] = ()  # a table row's cells
    caption: str = ""  # its table's caption ('Table 2. ...', or the line naming an uncaptioned table)
    header: tuple[str, ...] = ()  # its table's labels, one per column (ingest.tables.split_header)


def page_units(pages: list[Page]) -> list[Unit]:
    """Walk the pages in order, tracking the section path, and emit sentences and table rows."""
    units: list[Unit] = []
    path = SectionPath(units)
    labels = repeated_labels(pages)
    numbered = Outline(pages)
    pending = ""  # a sentence cut by a page break, carried onto the next page
    pending_page = 0
    for page in pages:
        # a table that ended the page before, which an uncaptioned grid opening this page continues
        carried = units[-1] if units and units[-1].kind == "table" and units[-1].header else None
        outline = {" ".join(t.split()).lower() for _, t in page.outline}
        boxed = [squash(b) for b in page.boxed]  # the page's boxed warnings, to mark their sentences
        para: list[str] = []
        table: list[str] | None = None
        title = ""  # the line naming an uncaptioned table

        def flush_para() -> None:
            nonlocal pending, pending_page
            record = any(only_labels(ln, labels) for ln in para)
            text = _join_lines(para)
            para.clear()
            if pending:
                text = f"{pending} {text}".strip()
            start = pending_page or page.number
            pending, pending_page = "", 0
            if record:  # a row of a table, one unit, so that a chunk never parts its name from its lists
                units.append(Unit("table", text, start, page.number, path.text()))
                return
            for i, sent in enumerate(split_sentences(text)):
                kind = "boxed_warning" if _in_box(sent, boxed) else "text"
                units.append(Unit(kind, sent, start if i == 0 else page.number, page.number, path.text()))

        def flush_table() -> None:
            nonlocal table, title
            if table:
                opens = carried is not None and not CAPTION.match(table[0]) and not title and not any(
                    u.page == page.number for u in units[-1:])
                units.extend(_table_units(table, page.number, path.text(), carried if opens else None, title))
            table, title = None, ""

        def flush_record(lines: list[str]) -> None:
            units.append(Unit("recommendation", _join_lines(lines), page.number, page.number, path.text(),
                              fields=records.fields(lines)))

        lines = _mark_records([ln.strip() for ln in page.text.splitlines()], labels, outline)
        skip = False
        title_at = -1  # the line that ended a capitals title wrapped over lines, which the next may go on
        record: list[str] | None = None  # the lines of a recommendation box being read
        skip_to = 0  # the line after a number grid already read (_number_grid)
        for i, line in enumerate(lines):
            if skip:  # the second line of a wrapped heading, already taken
                skip = False
                continue
            if i < skip_to:
                continue
            if record is not None:
                if line and not records.box_head(line) and not heading_of(line, outline, labels) \
                        and len(record) < records.MAX_LINES:
                    record.append(line)
                    continue
                flush_record(record)
                record = None
            if records.box_head(line):
                flush_table()
                flush_para()
                record = [line]
                continue
            start = records.statement_start(para) if i + 1 < len(lines) and table is None else None
            if start is not None and records.strength_below(line, lines[i + 1]):
                statement = para[start:]  # 'Recommendation 3 ...' up to here, then strength and certainty
                del para[start:]
                flush_para()
                flush_record([*statement, line, lines[i + 1]])
                skip = True
                continue
            if not line:  # a blank line ends a paragraph, and separates rows inside a table
                if table is not None:
                    table.append("")
                elif para:
                    flush_para()
                continue
            head = heading_of(line, outline, labels)
            if head and not numbered.allows(head[1]):
                head = None  # a numbered list's item where the outline numbers the sections
            caps_goes_on = head is not None and i > 0 and section_number(head[1]) is None \
                and _caps_title_goes_on(lines[i - 1])
            if caps_goes_on and i - 1 == title_at:
                path.extend(line)  # the third line of a capitals title ('EXACERBATION OF MYASTHENIA GRAVIS')
                title_at = i
                continue
            joined = caps_goes_on and bool(para) and para[-1] == lines[i - 1]
            if joined and head:
                # a capitals title that began on the line before, read as text for its colon: 'WARNING:
                # SERIOUS ADVERSE REACTIONS INCLUDING TENDINITIS, TENDON' / 'RUPTURE, ...'
                head = (head[0], _joined(para.pop(), line))
            if head and line.lower() not in outline:  # outline titles are headings wherever they stand
                if table is None and clause_open(para):
                    head = None  # '(See CLINICAL PHARMACOLOGY, ... DOSAGE AND ADMINISTRATION, and ...)'
                elif i + 1 < len(lines) and (lines[i + 1][:1].islower()
                                             or line.split()[-1].lower() in RUN_ON_WORDS):
                    # the line runs on: a heading wrapped over two lines, or a numbered list item's sentence
                    head, skip = run_on(head, lines[i + 1])
            if head and line.lower() not in outline and path.leaps(head[1]):
                head = None  # a line that starts with a number, not the next chapter
            if head:
                flush_table()
                flush_para()
                path.enter(*head, outline_title=line.lower() in outline)
                title_at = i if joined else -1
                continue
            if CAPTION.match(line):
                flush_table()
                flush_para()
                table = [line]
                continue
            following = " ".join(ln for ln in lines[i + 1:i + 4] if ln)  # a wrapped cell may come between
            if table is not None:
                # an uncaptioned grid is its gapped lines and the wrapped cells between them
                inside = GAP in following if not CAPTION.match(table[0]) else not _prose_after_grid(table, line)
                if GAP in line or (len(line) < 60 and inside):
                    table.append(line)
                    continue
                flush_table()
            if table is None and GAP not in line and (grid := _number_grid(lines, i)):
                # a table printed without frames or column gaps: rows of numbers under a header line
                end, rows = grid
                header = para.pop() if para and not _numbers_row(para[-1]) else ""
                caption = _join_lines(para)
                if len(caption.split()) > GRID_CAPTION_WORDS:
                    caption = ""  # prose before the grid, not its title
                    flush_para()
                else:
                    para.clear()
                    if pending:  # the sentence carried from the page before stays text
                        units.append(Unit("text", pending, pending_page, pending_page, path.text()))
                        pending, pending_page = "", 0
                for group, row in rows:
                    grid_head = "\n".join(x for x in (caption, header, group) if x)
                    units.append(Unit("table", row, page.number, page.number, path.text(), table_head=grid_head,
                                      caption=caption))
                skip_to = end
                continue
            if GAP in line and (line.count(GAP) >= 2 or GAP in following and any(
                    tables.data_row(ln.split(GAP)) for ln in (line, *lines[i + 1:i + 4]))):
                # an uncaptioned grid (cells by position, ingest.tables): consecutive gapped lines, under
                # the short line that names it, if one stands alone above ('Warfarin Sodium Tablets, USP')
                alone = len(para) == 1 and not pending or len(para) >= 2 and para[-2].endswith(END_PUNCT[:3])
                title = para.pop() if alone and _names_table(para[-1]) else ""
                flush_para()
                table = [line]
                continue
            para.append(line)
        if record is not None:
            flush_record(record)
        flush_table()
        # carry an unfinished sentence over the page break (not a record: it ends where its page does)
        text = _join_lines(para)
        sents = split_sentences(text) if text and not any(only_labels(ln, labels) for ln in para) else []
        if sents and not sents[-1].endswith(END_PUNCT) and page is not pages[-1]:
            tail = sents.pop()
            para[:] = [" ".join(sents)]
            flush_para()
            pending, pending_page = tail, page.number
        else:
            flush_para()
    path.close()
    if pending:
        units.append(Unit("text", pending, pending_page, pending_page, path.text()))
    return [u for u in units if u.text.strip()]


# A cell of a number grid: '25%', '35-70%', '> 60%', '0.5', '≥ 35' (a comparison sign stands alone too).
_NUMBER_CELL = re.compile(r"^(?:[<>≤≥]=?|[<>≤≥]?\d[\d.,]*%?(?:[-–]\d[\d.,]*%?)?)$")
# A grid has at least this many rows of numbers; the paragraph above it is its title up to this many words.
GRID_ROWS = 3
GRID_CAPTION_WORDS = 40


def _numbers_row(line: str) -> bool:
    """A line of three or more cells, (nearly) all numbers: '25% 35-70% 50% 30-50% 25%'."""
    cells = line.split()
    return len(cells) >= 3 and sum(bool(_NUMBER_CELL.match(c)) for c in cells) >= 0.8 * len(cells) \
        and sum(c[:1].isdigit() for c in cells) >= 3


def _number_grid(lines: list[str], start: int) -> tuple[int, list[tuple[str, str]]] | None:
    """The rows of a grid of numbers that starts at `start`, each with the group label above it ('Single',
    'Duplicate'), and the index after the grid; None when fewer than GRID_ROWS rows of numbers follow.

    Example: ['Single', '1% 5-30% 10%', '5% 10-30% 20%', 'Duplicate', '1% 5-25% 10%', 'Source: ...'], 0 ->
        (5, [('Single', '1% 5-30% 10%'), ('Single', '5% 10-30% 20%'), ('Duplicate', '1% 5-25% 10%')])
    """
    rows: list[tuple[str, str]] = []
    group, i = "", start
    while i < len(lines):
        line = lines[i]
        if _numbers_row(line):
            rows.append((group, line))
        elif _group_label(line) and i + 1 < len(lines) and _numbers_row(lines[i + 1]):
            group = line
        else:
            break
        i += 1
    return (i, rows) if len(rows) >= GRID_ROWS else None


def _group_label(line: str) -> bool:
    # a short label over some rows of a grid ('Single', 'Duplicate slide'), no number in it
    return 0 < len(line.split()) <= 3 and not any(ch.isdigit() for ch in line) and line[:1].isupper()


def _caps_title_goes_on(before: str) -> bool:
    """Whether a line in capitals leaves a title open that the next capitals line goes on with: a
    boxed warning's or an appendix's title wraps over several lines, the first no heading by itself
    (its colon), and the others were each taken for one ('RUPTURE, PERIPHERAL NEUROPATHY, ...')."""
    return before.isupper() and len(before.split()) >= 4 and not before.rstrip().endswith((".", ";", ")", "]"))


def _joined(first: str, second: str) -> str:
    """Two lines of one title: a word broken at its hyphen ('DOSE-' / 'DUMPING') stays one."""
    return f"{first}{second}" if first.endswith("-") else f"{first} {second}"


def _mark_records(lines: list[str], labels: frozenset[str], outline: set[str]) -> list[str]:
    """Make each record of labelled lists one paragraph: blank lines inside it dropped, one before it.

    A record is a name and its details, then its labels, each with a list ('amoxicillin', 'Powder for
    injection: ...', 'FIRST CHOICE', '- Otitis media', 'SECOND CHOICE', '- Acute bacterial meningitis').
    pypdf gives no blank line between one record's last list item and the next record's name, and
    blank lines inside records; so after a label, a plain line starts the next record unless it
    continues the item above (the item is left open, or the next filled line is an item or a label).
    Example: (['A', 'x', 'FIRST', '- p', 'B', '', 'y', 'FIRST', '- q'], {'FIRST'}, set())
        -> ['A', 'x', 'FIRST', '- p', '', 'B', 'y', 'FIRST', '- q']
    """
    if not any(only_labels(ln, labels) for ln in lines):
        return lines
    out: list[str] = []
    state = ""  # "lists": after a record's label; "name": after a record's first line, before its label
    for i, line in enumerate(lines):
        if not line:
            if not state and not (out and out[-1] and not out[-1].endswith(END_PUNCT)):
                out.append(line)  # kept where it ends a sentence ('azithromycin', '', 'Tablet: ...' is one)
            continue
        if only_labels(line, labels):
            state = "lists"
        elif heading_of(line, outline, labels):
            state = ""
            out.append("")
        elif state == "lists" and not LIST_ITEM.match(line) and not _continues_item(out, lines[i:], labels):
            state = "name"
            out.append("")
        out.append(line)
    return out


def _continues_item(before: list[str], after: list[str], labels: frozenset[str]) -> bool:
    """Whether a plain line (`after[0]`) after a labelled list is the wrapped end of its last item.

    It is when it opens with a parenthesis, when the item is left open ('- Infection due to',
    '- Pneumonia (mild to') or when the next filled line is another item, a label or nothing.
    """
    start = next((k for k in range(len(before) - 1, -1, -1)
                  if LIST_ITEM.match(before[k]) or only_labels(before[k], labels)), len(before))
    item = " ".join(before[start:])  # the last item with its wrapped lines so far
    if after and after[0].startswith("("):  # '(mild to moderate)'
        return True
    if LIST_ITEM.match(item) and (clause_open([item]) or item.endswith(("/", "-"))
                                   or item.split()[-1].lower() in RUN_ON_WORDS):
        return True
    following = next((ln for ln in after[1:] if ln), "")
    return not following or bool(LIST_ITEM.match(following)) or only_labels(following, labels)


def _table_fields(head: str, rows: list[Unit]) -> str:
    """A table chunk's caption, header (one label per column, merged from its header rows) and each
    row's cells as Chunk.fields JSON ('' for a record list, which has no header).

    Example: ('Table 1. Doses\nGroup | Dose', [Unit('table', 'Group: Adults · Dose: 10 mg', ...,
              cells=('Adults', '10 mg'), header=('Group', 'Dose'))])
        -> '{"table":{"caption":"Table 1. Doses","cells":[["Adults","10 mg"]],"header":["Group","Dose"]}}'
    """
    lines = [ln for ln in head.split("\n") if ln.strip()]
    caption = rows[0].caption if rows and rows[0].caption else lines[0] if lines and CAPTION.match(lines[0]) else ""
    header = list(rows[0].header) if rows else []
    if not caption and not header:
        return ""
    cells = [list(u.cells) or [c.strip() for c in u.text.split(GAP)] for u in rows]
    return json.dumps({"table": {"caption": caption, "header": header, "cells": cells}}, sort_keys=True,
                      separators=(",", ":"))


def _names_table(line: str) -> bool:
    """Whether a line standing alone above a grid names it: short, not a sentence, not a cell row.

    Example: 'Warfarin Sodium Single-Scored Tablets, USP' -> True; 'Give the dose by weight.' -> False
    """
    return len(line.split()) <= 12 and not line.endswith(END_PUNCT) and GAP not in line and line[:1].isupper()


def _in_box(sentence: str, boxed: list[str]) -> bool:
    """Whether a sentence (of three words or more) is printed inside one of the page's boxed warnings.

    Example: ('Warfarin can cause major bleeding.', [squash('WARNING: ... Warfarin can cause major
    bleeding. ...')]) -> True
    """
    if not boxed or len(sentence.split()) < 3:
        return False
    s = squash(sentence)
    return any(s in b for b in boxed)


def _prose_after_grid(table: list[str], line: str) -> bool:
    """True for a sentence after a blank line below a gridded table: the text that follows the table.

    Wrapped cells continue their row without a blank line, so they are not mistaken for it.
    Example: (['Table 1. X', 'A | B', '', '1 | 2', ''], 'Review the patient after three days.') -> True
    """
    return (
        bool(table) and table[-1] == "" and GAP not in line and any(GAP in r for r in table)
        and line[:1].isupper() and line.endswith((".", "!", "?")) and len(line.split()) >= 4
    )


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines; a line ending in a hyphen joins the next without a space."""
    out = ""
    for ln in lines:
        if not out:
            out = ln
        elif out.endswith("-") and ln[:1].islower():
            out += ln
        else:
            out += " " + ln
    return out.strip()


def _table_units(lines: list[str], page: int, section: str, carried: Unit | None = None,
                 title: str = "") -> list[Unit]:
    """A table's rows as units, each cell paired with its column's label (ingest.tables); the caption
    and header rows travel with every part. `carried`: the last row of the table this one continues
    from the page before (its caption, header and labels go on; a header printed again is dropped).
    `title`: the line naming an uncaptioned table, its caption."""
    caption = title or (lines[0] if CAPTION.match(lines[0]) else "")
    body = lines[1:] if caption and not title else lines
    # a caption wrapped over lines goes on in the lines without column gaps right after it
    while caption and not title and body and body[0] and GAP not in body[0] and len(body) > 1 \
            and (not body[1] or GAP in body[1]) and not caption.endswith((".", ":")):
        caption = f"{caption}\n{body.pop(0)}"
    while body and not body[-1]:
        body.pop()
    rows: list[str] = []
    filled = sum(1 for ln in body if ln)
    if body.count("") * 3 >= filled:
        # Layout text separates the rows of a grid with blank lines (at least one per three lines):
        # each group is one row, its wrapped cell lines joined, so a row is never cut in half.
        group: list[str] = []
        for ln in body + [""]:
            if ln:
                group.append(ln)
            elif group:
                rows.append(" ".join(group))  # a space: the row stays verbatim page text
                group = []
    else:
        # One line per row; a line without column gaps continues the row above (a wrapped cell).
        for ln in (x for x in body if x):
            if rows and GAP not in ln and any(GAP in r for r in rows) and len(ln) < 40:
                rows[-1] += " " + ln
            else:
                rows.append(ln)
    if not rows:
        return [Unit("table", caption, page, page, section)]
    cells = [[c.strip() for c in r.split(GAP)] for r in rows]
    n, labels = tables.split_header(cells)
    head = "\n".join(x for x in (caption, *rows[:n]) if x)
    if carried is not None:
        width = len(carried.header)
        if [c for r in cells[:n] for c in r] == [c for r in _head_cells(carried.table_head) for c in r]:
            rows, cells = rows[n:], cells[n:]  # the header printed again
        elif any(len(r) > width for r in cells) or not any(len(r) == width for r in cells):
            carried = None  # not the same columns: a table of its own (a row with an empty cell has fewer)
        if carried is not None:
            head, labels, n = carried.table_head, list(carried.header), 0
    if n and len(rows) <= n:
        return [Unit("table", "\n".join(rows), page, page, section, table_head=caption)]
    return [Unit("table", tables.pair(labels, c), page, page, section, table_head=head, cells=tuple(c),
                 header=tuple(labels), caption=caption) for c in cells[n:]]


def _head_cells(head: str) -> list[list[str]]:
    """The cells of a table head's header rows (its caption left out)."""
    return [[c.strip() for c in ln.split(GAP)] for ln in head.split("\n") if ln.strip() and not CAPTION.match(ln)]


def chunk_pages(
    doc_id: str, title: str, pages: list[Page], count_tokens: TokenCounter, max_tokens: int, body_tokens: int,
    overlap: int = 1,
) -> list[Chunk]:
    """Pack units into chunks of at most `body_tokens` word pieces (prefix included: `max_tokens`).

    A chunk never crosses a section or (except for one carried sentence) a page, and a table's rows
    stay with their caption and header.
    """
    units = page_units(pages)
    if not units:
        return []
    texts = [u.text for u in units] + sorted({u.table_head for u in units if u.table_head})
    sizes = dict(zip(texts, count_tokens(texts), strict=True))
    labels = {p.number: p.label for p in pages}
    prefix_cost = {s: n for s, n in zip(*_prefixes(title, units, count_tokens), strict=True)}
    chunks: list[Chunk] = []
    group: list[Unit] = []

    def emit() -> None:
        if not group:
            return
        first = group[0]
        kind = first.kind if first.kind in ("table", "recommendation", "boxed_warning") else "text"
        text = ("\n" if kind == "table" else " ").join(u.text for u in group)
        if first.table_head:  # a blank line parts the caption and header rows from the rows (rag.verify reads it)
            text = f"{first.table_head}{TABLE_HEAD_END}{text}"
        ordinal = len(chunks)
        cid = sha256_hex(f"{doc_id}|{ordinal}|{first.page}|{first.section}|{text}", 20)
        chunks.append(Chunk(cid, doc_id, ordinal, first.page, max(u.page_end for u in group),
                            labels.get(first.page, str(first.page)), first.section, text, kind,
                            starts_mid=first.starts_mid, ends_mid=group[-1].ends_mid,
                            cut_instruction=any(u.cut_instruction for u in group),
                            fields=_table_fields(first.table_head, group) if kind == "table" else first.fields))

    used = 0
    for u in units:
        budget = min(body_tokens, max_tokens - 2 - prefix_cost[u.section])
        cost = sizes[u.text] + 1
        head_cost = sizes.get(u.table_head, 0) + 1 if u.table_head else 0
        same = group and group[-1].section == u.section and group[-1].kind == u.kind != "recommendation" and (
            group[-1].table_head == u.table_head) and (
            # a record list runs on over pages; a table's chunk keeps to one page (its header repeated)
            group[-1].page_end >= u.page - (u.kind == "table" and not u.table_head))
        if same and used + cost <= budget:
            group.append(u)
            used += cost
            continue
        carry = group[-overlap:] if (same and overlap and u.kind == "text") else []
        emit()
        carry = [c for c in carry if sizes[c.text] + 1 + cost <= budget // 3]
        group = carry + [u]
        used = head_cost + sum(sizes[c.text] + 1 for c in group)
        if used > budget:  # one sentence or row longer than the window: cut it at words
            group = []
            pieces = _split_words(u.text, budget - head_cost, count_tokens)
            # judged whole, before the cut: each piece alone may read as plain text
            injected = len(pieces) > 1 and looks_like_instruction(u.text)
            for i, piece in enumerate(pieces):
                group = [Unit(u.kind, piece, u.page, u.page_end, u.section, u.table_head, starts_mid=i > 0,
                              ends_mid=i < len(pieces) - 1, cut_instruction=injected, fields=u.fields,
                              cells=u.cells, header=u.header, caption=u.caption)]
                emit()
            group, used = [], 0
    emit()
    return chunks


def _prefixes(title: str, units: list[Unit], count_tokens: TokenCounter) -> tuple[list[str], list[int]]:
    sections = sorted({u.section for u in units})
    heads = [f"{title} | {s}" if s else title for s in sections]
    return sections, [n + 1 for n in count_tokens(heads)]


def _split_words(text: str, budget: int, count_tokens: TokenCounter) -> list[str]:
    """Cut an over-long unit at word boundaries into pieces that fit `budget` word pieces.

    A piece ends before the first word that makes it overflow (a single over-long word is a piece of
    its own). Counting the growing piece after every word was quadratic (half of all chunking time on
    the corpus), so each cut is guessed from per-word counts and confirmed with two exact counts.
    Example: ('a b c d e', 4, one token per word) -> ['a b c d', 'e']
    """
    words = text.split()
    sizes = count_tokens(words) if words else []
    pieces: list[str] = []
    start = 0
    while start < len(words):
        end = _piece_end(words, sizes, start, budget, count_tokens)
        pieces.append(" ".join(words[start:end]))
        start = end
    return pieces


def _piece_end(words: list[str], sizes: list[int], start: int, budget: int, count_tokens: TokenCounter) -> int:
    """Index after the last word of the piece that starts at `start` (see _split_words).

    The guess sums per-word counts, which is exact for WordPiece (words are tokenized independently).
    It is confirmed by counting the guessed piece and the piece one word longer; if either disagrees
    (another tokenizer), the piece is found word by word. Assumes a longer text never has fewer pieces.
    """
    n = len(words)
    end, total = n, sizes[start]
    for k in range(start + 1, n):
        total += sizes[k]
        if total > budget:
            end = k
            break
    probes = [" ".join(words[start:end])] if end - start >= 2 else []
    if end < n:
        probes.append(" ".join(words[start : end + 1]))
    counts = count_tokens(probes) if probes else []
    fits = end - start < 2 or counts[0] <= budget
    if fits and (end == n or counts[-1] > budget):
        return end
    for k in range(start + 1, n):  # the guess was wrong: the original word-by-word scan
        if count_tokens([" ".join(words[start : k + 1])])[0] > budget:
            return k
    return n
