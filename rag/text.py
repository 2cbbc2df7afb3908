"""Small text helpers shared by chunking, answering and verification (pure functions)."""

from __future__ import annotations

import re

ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|Fig|No|Dr|St|al|ca|cf|max|min|Ref|Sect|incl)\.$", re.I)
_WS = re.compile(r"\s+")
_NUM_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?(?:\s*(?:-|to|–)\s*\d+(?:[.,]\d+)?)?)\s*"
    r"(mg/kg/day|mg/kg|mg/day|mg/m2|mcg|µg|micrograms?|mg|g|kg|millilit(?:er|re)s?|lit(?:er|re)s?|ml|mL|L|IU|units?"
    r"|mmol/L|mmol|%|hours?|h|days?|"
    r"weeks?|months?|years?|minutes?|min|times|doses?|tablets?|capsules?|breaths|mmHg)\b",
    re.I,
)
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i if in into is it its may my of on or "
    "should than that the their them then there these they this to was what when where which while who "
    "whom why will with would you your patient patients about please tell me any must also according "
    "recommend recommended recommends say says said label guideline document documents".split()
)


def split_sentences(text: str) -> list[str]:
    """Split prose at sentence ends, not after abbreviations or decimal numbers.

    Written by hand: NLTK's punkt (what llama-index bundles) splits after 'e.g.' and 'i.e.',
    which clinical labels use on every page.

    Example: 'Take 2.5 mg (e.g. at night). Then stop.' -> ['Take 2.5 mg (e.g. at night).', 'Then stop.']
    """
    return split_at(_SENTENCE_END, text.strip())


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


def split_at(pattern: re.Pattern, text: str) -> list[str]:
    """`text` cut where `pattern` matches, except after an abbreviation's full stop ('e.g. at night').

    Example: (_SENTENCE_END, 'Take 5 mg (e.g. at night). Then stop.') -> ['Take 5 mg (e.g. at night).', 'Then stop.']
    """
    out: list[str] = []
    for p in pattern.split(text):
        if out and ABBREV.search(out[-1]):
            out[-1] = f"{out[-1]} {p}"
        elif p:
            out.append(p)
    return out


def squash(text: str) -> str:
    """Text with all whitespace removed and lower-cased, for 'verbatim ignoring line breaks' checks.

    Example: 'Take  2 mg\\nonce' -> 'take2mgonce'
    """
    return _WS.sub("", text).lower()


# A table row as chunks write it: each cell after its column's label (ingest.tables).
PAIR, LABEL, CELL = " · ", ": ", " | "
# A label merged from header rows printed apart is found in at most this many pieces.
LABEL_PIECES = 3


def paired_row(labels: list[str], cells: list[str]) -> str:
    """A table row with each cell after its column's label.

    Example: (['Weight (kg)', 'Dose (mg)'], ['5 to < 8', '20']) -> 'Weight (kg): 5 to < 8 · Dose (mg): 20'
    """
    return PAIR.join(f"{label}{LABEL}{cell}" if label else cell for label, cell in zip(labels, cells, strict=True))


def is_verbatim(quote: str, page_text: str) -> bool:
    """True when `quote` occurs in `page_text`, ignoring whitespace and case only; a table row paired
    with its labels (paired_row) when its cells, in order, are a row of the page and each label is on it.

    Example: ('2 to 5 mg once daily', 'usually 2 to 5 mg\\nonce daily.') -> True;
        ('Weight: 5 · Dose: 20 mg', 'Weight | Dose\\n5 | 20 mg') -> True
    """
    q, page = squash(quote), squash(page_text)
    if not q:
        return False
    return q in page or (PAIR in quote and _paired_on_page(quote, page))


def quoted_on_page(quote: str, page_text: str, header: list[str] | None = None) -> bool:
    """Whether a citation's quote stands on its page: verbatim (is_verbatim), or a row of a table
    continued from the page before under its stored `header` (row_on_page)."""
    return is_verbatim(quote, page_text) or bool(header and row_on_page(quote, page_text, header))


def row_on_page(quote: str, page_text: str, header: list[str]) -> bool:
    """A paired row of a table continued from the page before, whose header that page does not reprint:
    its cells, in order, are a row of this page, and its labels are the table's header (Chunk.table).

    Example: ('Weight: 5 · Dose: 20 mg', '5 | 20 mg', ['Weight', 'Dose']) -> True
    """
    if PAIR not in quote:
        return False
    labels, cells = _pairs(quote)
    known = {squash(h) for h in header}
    return squash(CELL.join(cells)) in squash(page_text) and all(squash(x) in known for x in labels if x)


def printed_row(quote: str) -> str | None:
    """A paired row (paired_row) as the page prints it, its cells joined by ' | '; None for other text.

    Example: 'Weight (kg): 5 to < 8 · Dose (mg): 20' -> '5 to < 8 | 20'
    """
    return CELL.join(_pairs(quote)[1]) if PAIR in quote else None


def _pairs(quote: str) -> tuple[list[str], list[str]]:
    labels, cells = [], []
    for part in quote.split(PAIR):
        label, sep, cell = part.partition(LABEL)
        labels.append(label if sep else "")
        cells.append(cell if sep else label)
    return labels, cells


def _paired_on_page(quote: str, page: str) -> bool:
    """A paired row's cells joined as the page prints a row ('a | b'), and each label, on the squashed page.

    A label merged from header rows (ingest.tables) may be printed in pieces: up to LABEL_PIECES of
    its words' runs, each on the page.
    """
    labels, cells = _pairs(quote)
    if squash(CELL.join(cells)) not in page:
        return False
    return all(_in_pieces(label.split(), page, LABEL_PIECES) for label in labels if label)


def _in_pieces(words: list[str], page: str, pieces: int) -> bool:
    """Whether `words` split into at most `pieces` runs, each found (squashed) on the squashed page.

    Example: (['Age', '(years)'], 'age|weight(years)|(kg)', 2) -> True
    """
    if squash("".join(words)) in page:
        return True
    return pieces > 1 and any(squash("".join(words[:k])) in page and _in_pieces(words[k:], page, pieces - 1)
                              for k in range(1, len(words)))


def numbers_with_units(text: str) -> list[str]:
    """Every number with its unit, normalised ('5mg', '2-4weeks').

    Example: 'Give 2 to 5 mg once daily for 3 days' -> ['2-5mg', '3days']
    """
    out = []
    for num, unit in _NUM_UNIT.findall(text):
        n = re.sub(r"\s*(?:to|–)\s*", "-", num).replace(" ", "").replace(",", "")
        u = unit.lower().rstrip("s") if unit.lower() not in {"mg/m2", "%"} else unit.lower()
        u = _SPELLED_UNIT.get(u, u)
        out.append(f"{n}{u}")
    return out


# Units spelled out, as numbers_with_units writes them ('1.2 liters' -> '1.2l').
_SPELLED_UNIT = {"liter": "l", "litre": "l", "milliliter": "ml", "millilitre": "ml"}
_MARK = re.compile(r"(?<=[a-z])\*+$")


def content_words(text: str) -> list[str]:
    """Lower-case words of a text without stop words (numbers kept).

    Example: 'What is the dose of warfarin?' -> ['warfarin']
    """
    words = re.findall(r"[a-z0-9][a-z0-9*/.-]*[a-z0-9*]|[a-z0-9]", text.lower())
    # a formulary's footnote mark is not part of the name: 'ceftriaxone*' is ceftriaxone
    return [w for w in (_MARK.sub("", w) for w in words) if w not in STOPWORDS]


# Terms are compared by their first letters, so 'titrated' meets 'titration', 'malarial' 'malaria' (subject
# matching, term coverage, the library's prefix frequencies).
PREFIX = 6


def stems(text: str) -> list[str]:
    """Content words with a light plural fold, for term-coverage checks.

    Example: 'Doses of tablets' -> ['dose', 'tablet']
    """
    out = []
    for w in content_words(text):
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out

