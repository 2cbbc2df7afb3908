"""Small text helpers shared by chunking, answering and verification (pure functions)."""

from __future__ import annotations

import re

ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|Fig|No|Dr|St|al|ca|cf|max|min|Ref|Sect|incl)\.$", re.I)
_WS = re.compile(r"\s+")
_NUM_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?(?:\s*(?:-|to|–)\s*\d+(?:[.,]\d+)?)?)\s*"
    r"(mg/kg/day|mg/kg|mg/day|mg/m2|mcg|µg|micrograms?|mg|g|kg|ml|mL|L|IU|units?|mmol/L|mmol|%|hours?|h|days?|"
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
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])", text.strip())
    out: list[str] = []
    for p in parts:
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


def is_verbatim(quote: str, page_text: str) -> bool:
    """True when `quote` occurs in `page_text`, ignoring whitespace and case only.

    Example: ('2 to 5 mg once daily', 'usually 2 to 5 mg\\nonce daily.') -> True
    """
    q = squash(quote)
    return bool(q) and q in squash(page_text)


def numbers_with_units(text: str) -> list[str]:
    """Every number with its unit, normalised ('5mg', '2-4weeks').

    Example: 'Give 2 to 5 mg once daily for 3 days' -> ['2-5mg', '3days']
    """
    out = []
    for num, unit in _NUM_UNIT.findall(text):
        n = re.sub(r"\s*(?:to|–)\s*", "-", num).replace(" ", "").replace(",", "")
        u = unit.lower().rstrip("s") if unit.lower() not in {"mg/m2", "%"} else unit.lower()
        out.append(f"{n}{u}")
    return out


def content_words(text: str) -> list[str]:
    """Lower-case words of a text without stop words (numbers kept).

    Example: 'What is the dose of warfarin?' -> ['warfarin']
    """
    return [w for w in re.findall(r"[a-z0-9][a-z0-9*/.-]*[a-z0-9*]|[a-z0-9]", text.lower()) if w not in STOPWORDS]


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

