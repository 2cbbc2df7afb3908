"""Our own per-question metrics (pure functions over records) and their aggregation.

RAGAS computes faithfulness and context precision/recall (eval/ragas_run.py); everything here is what
RAGAS has no metric for: gold page ranks, decisive-term coverage, citation checks, abstention.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from eval.dataset import Item
from rag.text import quoted_on_page
from rag.types import Citation, Hit

_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_MARKER_END = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]([.;,:]?)\s*")
_HYPHENS = "-\u00ad\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
# A separator between a digit and a group of exactly three digits: 1,000 / 1 000 / 1'000 / 1\u202f000.
_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u2009\u00a0' ](?=\d{3}(?!\d))")
_DECIMAL = ".,"  # 2.5 and the decimal comma 2,5: a number goes on after one of these followed by a digit


def strip_markers(text: str) -> str:
    """Answer text without its citation markers.

    Example: 'Give 5 mg [1]. Stop [2, 3].' -> 'Give 5 mg. Stop.'
    """
    return _MARKER.sub("", text).strip()


def one_per_line(text: str) -> str:
    """Answer text with each citation marker turned into a line break: one cited unit per line.

    The judge then never reads a cited table row and the next cited sentence as one statement.
    Example: 'Drug | 5 mg [1] Give it daily [2].' -> 'Drug | 5 mg\nGive it daily.'
    """
    return _MARKER_END.sub(lambda m: f"{m.group(1)}\n", text).strip()


def fold(text: str) -> str:
    """Lower-case text with whitespace, line breaks, hyphens and thousands separators removed.

    A space or hyphen between two digits stays (one ' ' or '-'): '25 40' and '2-4' are two numbers, and
    folding them away would make '2540' or '24 weeks' match.
    Example: 'Once-\\ndaily 1,000 MG, 2 - 4 weeks' -> 'oncedaily1000mg,2-4weeks'
    """
    return _fold_map(text)[0]


def _fold_map(text: str) -> tuple[str, list[int]]:
    """fold(text) and, for each of its characters, the index in `text` it came from."""
    drop = {m.start() for m in _THOUSANDS.finditer(text)}
    out: list[str] = []
    where: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if i in drop:
            i += 1
            continue
        if ch.isspace() or ch in _HYPHENS:
            j = i
            while j < n and (text[j].isspace() or text[j] in _HYPHENS) and j not in drop:
                j += 1
            if out and out[-1].isdigit() and j < n and text[j].isdigit():
                run = text[i:j]
                out.append("-" if any(c in _HYPHENS for c in run) else " ")
                where.append(i)
            i = j
            continue
        for c in ch.lower():  # lower() of a few characters is two characters
            out.append(c)
            where.append(i)
        i += 1
    return "".join(out), where


def _number_goes_on(text: str, i: int, step: int) -> bool:
    """True when text[i] (the character next to a match, `step` -1 before it, +1 after) continues a number.

    Example: ('2,5 mg', 1, -1) -> True (the decimal comma of 2,5); ('25 40', 2, -1) -> False
    """
    if not 0 <= i < len(text):
        return False
    if text[i].isdigit():
        return True
    k = i + step
    return text[i] in _DECIMAL + "'\u202f\u2009\u00a0" and 0 <= k < len(text) and text[k].isdigit()


def contains_term(text: str, term: str) -> bool:
    """True when `term` occurs in `text` after folding both, a number in it not part of a longer number.

    The number boundary is checked on the text before folding: '40' is in '15 to < 25 40 + 240' (a
    space ends a number), '5 mg' is not in '25 mg' nor in '2,5 mg' (a decimal comma); thousands
    separators fold ('1,000 mg' is in '1 000 mg'). Known limit: a plain space before three digits is
    read as a thousands separator inside the match ('1,000' in '1 000') but as a boundary beside it.
    Example: ('usually 2 to 5 mg once daily', '5 mg') -> True; ('25 mg', '5 mg') -> False
    """
    t = fold(term)
    if not t:
        return False
    hay, where = _fold_map(text)
    start = hay.find(t)
    while start >= 0:
        first, last = where[start], where[start + len(t) - 1]
        ok_before = not (t[0].isdigit() and _number_goes_on(text, first - 1, -1))
        ok_after = not (t[-1].isdigit() and _number_goes_on(text, last + 1, 1))
        if ok_before and ok_after:
            return True
        start = hay.find(t, start + 1)
    return False


def must_include_coverage(answer_text: str, terms: Iterable[str]) -> float | None:
    """Share of the decisive terms found in the answer; None when the item lists none.

    Example: ('Amoxicillin 500 mg three times daily [1]', ['amoxicillin', '500 mg', '5 days']) -> 0.666...
    """
    terms = list(terms)
    if not terms:
        return None
    text = strip_markers(answer_text)
    return sum(contains_term(text, t) for t in terms) / len(terms)


def on_gold_page(file_name: str, page: int, page_end: int, gold: set[tuple[str, int]]) -> bool:
    """True when the span of pages [page, page_end] of `file_name` touches a gold page.

    A passage that runs over a page break counts for both of its pages.
    Example: ('a.pdf', 5, 6, {('a.pdf', 6)}) -> True
    """
    return any((file_name, p) in gold for p in range(page, max(page, page_end) + 1))


def gold_rank(hits: Iterable[Hit], item: Item) -> int | None:
    """1-based rank of the first retrieved passage on a gold page, or None when none is."""
    gold = item.gold_pages()
    for h in hits:
        if on_gold_page(h.doc.file_name, h.chunk.page, h.chunk.page_end, gold):
            return h.rank
    return None


def gold_at(rank: int | None, k: int, item: Item) -> float | None:
    """1.0 when a gold page is within the top k, 0.0 when not, None for items without gold pages.

    Example: (3, 5, item with sources) -> 1.0; (None, 5, unanswerable item) -> None
    """
    if not item.sources:
        return None
    return 1.0 if rank is not None and rank <= k else 0.0


def citation_precision(citations: Iterable[Citation], item: Item) -> float | None:
    """Share of citations on a gold page; None without citations or without gold pages."""
    cites = list(citations)
    if not cites or not item.sources:
        return None
    gold = item.gold_pages()
    good = sum(on_gold_page(c.hit.doc.file_name, c.hit.chunk.page, c.hit.chunk.page, gold) for c in cites)
    return good / len(cites)


def citation_validity(citations: Iterable[Citation], page_text: Callable[[str, int], str | None]) -> float | None:
    """Share of citations whose quote is verbatim (ignoring whitespace and case) on the cited page; a row
    of a table continued from the page before counts when its cells are on the page under the table's
    header (rag.text.quoted_on_page)."""
    cites = list(citations)
    if not cites:
        return None

    ok = sum(quoted_on_page(c.quote, page_text(c.hit.chunk.doc_id, c.hit.chunk.page) or "",
                            (c.hit.chunk.table or {}).get("header")) for c in cites)
    return ok / len(cites)


def abstention_scores(pairs: Iterable[tuple[bool, bool]]) -> tuple[float | None, float | None]:
    """(precision, recall) of abstaining, from (answerable, abstained) pairs; None where undefined.

    Precision: of the abstentions, the share on unanswerable items. Recall: of the unanswerable items,
    the share abstained on.
    Example: [(False, True), (False, False), (True, True), (True, False)] -> (0.5, 0.5)
    """
    pairs = list(pairs)
    abstained = [a for a, ab in pairs if ab]
    unanswerable = [ab for a, ab in pairs if not a]
    precision = sum(not a for a in abstained) / len(abstained) if abstained else None
    recall = sum(unanswerable) / len(unanswerable) if unanswerable else None
    return precision, recall


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values (None and NaN skipped); None when there are none.

    Example: [1.0, None, float('nan'), 0.0] -> 0.5
    """
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100, nearest rank) of the values; None when empty.

    Example: ([10, 20, 30, 40], 50) -> 20
    """
    vals = sorted(values)
    if not vals:
        return None
    rank = max(1, math.ceil(q / 100 * len(vals)))
    return vals[rank - 1]


def defined(value: float | None) -> bool:
    """True for a real number (not None, not NaN)."""
    return value is not None and not math.isnan(float(value))
