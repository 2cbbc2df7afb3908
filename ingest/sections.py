"""Section headings: which lines are headings, at what level, and the section path while reading a document.

Split from ingest/chunk.py, which calls it while walking the pages.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.types import Page
from rag.units import AUTHORS

if TYPE_CHECKING:
    from ingest.chunk import Unit

# "2.3 Dosage in renal impairment", "5 WARNINGS AND PRECAUTIONS", "3. Treatment" (not "5 mg daily").
NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+([A-Z][A-Za-z0-9 ,;:'()/&\-]{2,90})$")
# FDA guidance chapters and their lettered sections: "III. PROCESS AND PROCEDURES", "A. Filing Review and
# Assessment" (every word of four letters or more capitalised, so "A. Testing for infection" is no heading).
ROMAN = re.compile(r"^([IVX]{1,5})\.\s+([A-Z][A-Z0-9 ,&/()\-]{3,70})$")
LETTERED = re.compile(r"^([A-H])\.\s+([A-Z][A-Za-z0-9 ,&/()\-]{2,80})$")
# Label-style headings: "WARNINGS AND PRECAUTIONS", "CONTRAINDICATIONS".
UPPER = re.compile(r"^[A-Z][A-Z ,&/()\-]{5,70}$")
# The number that opens a numbered heading (as NUMBERED and outline titles write it).
SECTION_NUMBER = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s")
# A table-of-contents line: a heading followed by its page number (or dot leaders), not a heading here.
TOC_ENTRY = re.compile(r"(?:\.{3,}|…)\s*\d*$|[A-Za-z)]\s+\d{1,3}$")
# A guideline's annex: 'Annex 4.2 Safety of praziquantel for treatment of schistosomiasis'.
ANNEX = re.compile(r"^(?:Annex|ANNEX)\s+\d{1,2}(?:\.\d{1,2})*\.?\s+[A-Z]")
# A heading line that ends in one of these words goes on on the next line.
RUN_ON_WORDS = {"a", "all", "an", "and", "any", "are", "as", "at", "be", "by", "each", "for", "from", "has", "have",
                "in", "into", "is", "of", "on", "or", "than", "that", "the", "to", "when", "which", "who", "with"}
GAP = " | "  # column separator written into table rows (from runs of 2+ spaces in layout text)


def heading_of(line: str, outline_titles: set[str], labels: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """(level, heading text) when `line` is a section heading, else None; `labels` (repeated_labels)
    are never headings.

    Example: '2.3 Dosage in renal impairment' -> (2, '2.3 Dosage in renal impairment')
    """
    norm = " ".join(line.split())
    if norm.lower() in outline_titles:
        return (1 + _number_depth(norm), norm)
    m = NUMBERED.match(norm)
    # (a numbered reference, '8. Ruberanziza E, Wittmann U, ...', is no heading: rag.units.AUTHORS)
    if m and not norm.endswith((".", ",")) and len(m.group(2).split()) <= 14 and not TOC_ENTRY.search(norm) \
            and not AUTHORS.search(norm):
        return (m.group(1).count(".") + 1, norm)
    if ROMAN.match(norm) and not TOC_ENTRY.search(norm):
        return (1, norm)
    if ANNEX.match(norm) and len(norm.split()) <= 16 and not TOC_ENTRY.search(norm) and not norm.endswith("."):
        return (1, norm)
    m = LETTERED.match(norm)
    if m and len(m.group(2).split()) <= 10 and not TOC_ENTRY.search(norm) and all(
            w[0].isupper() for w in m.group(2).replace("-", " ").split() if len(w) >= 4):
        return (2, norm)
    if _label_form(norm) and not only_labels(norm, labels):
        return (1, norm)
    return None


def _label_form(norm: str) -> bool:
    """Whether a line looks like a label-style heading ('WARNINGS AND PRECAUTIONS')."""
    return bool(UPPER.match(norm)) and sum(c.isalpha() for c in norm) >= 6 and GAP not in norm


def repeated_labels(pages: list[Page], min_pages: int = 3) -> frozenset[str]:
    """Label-style lines that stand twice or more on one page, on most of the pages where they stand
    (and on `min_pages` or more): the field or column labels of a list of records, not section headings.

    In a list of medicines each entry has its 'FIRST CHOICE' and 'SECOND CHOICE' columns; taken as
    headings they would file every entry under the last label read, away from the medicine's name and
    its real section. A real heading stands once on its page; one cited in running text ('(see
    WARNINGS)') may stand twice, but not on most of its pages.
    Example: three pages of 'FIRST CHOICE\n- Otitis media\nFIRST CHOICE\n- Sepsis' -> {'FIRST CHOICE'}
    """
    on_page: dict[str, list[int]] = {}  # label -> its count on each page where it stands
    for page in pages:
        outline = {" ".join(t.split()).lower() for _, t in page.outline}
        counts: dict[str, int] = {}
        for line in page.text.splitlines():
            norm = " ".join(line.split())
            if _label_form(norm) and norm.lower() not in outline:
                counts[norm] = counts.get(norm, 0) + 1
        for label, n in counts.items():
            on_page.setdefault(label, []).append(n)
    return frozenset(label for label, ns in on_page.items()
                     if (twice := sum(n >= 2 for n in ns)) >= min_pages and 2 * twice > len(ns))


def only_labels(norm: str, labels: frozenset[str]) -> bool:
    """Whether a line is made of repeated labels only ('FIRST CHOICE SECOND CHOICE', both labels).

    Example: ('FIRST CHOICE SECOND CHOICE', {'FIRST CHOICE', 'SECOND CHOICE'}) -> True
    """
    return bool(labels) and _labels_pattern(labels).fullmatch(norm) is not None


@lru_cache(maxsize=8)
def _labels_pattern(labels: frozenset[str]) -> re.Pattern:
    one = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    return re.compile(f"(?:{one})(?: (?:{one}))*")


def run_on(head: tuple[int, str], following: str) -> tuple[tuple[int, str] | None, bool]:
    """A heading line that runs on (the next line starts in lower case, or it ends in a RUN_ON_WORDS word):
    (heading, consumed the next line?).

    '4. Safety of praziquantel for' + 'treatment of schistosomiasis' is one heading; '1. Testing for
    infection with a test that has high' + 'sensitivity and specificity. This may ...' is a numbered
    list item (its sentence ends on the next line), so no heading at all.
    """
    level, text = head
    if re.search(r"[.;:!?](\s|$)", following) or len(following.split()) > 10 or TOC_ENTRY.search(following):
        return None, False  # a sentence, or a table-of-contents entry wrapped over two lines
    if text.split()[-1].lower() in RUN_ON_WORDS:
        return (level, f"{text} {following}"), True
    return head, False  # 'DENTAL MEDICINES' then 'fluoride': a heading, then a list of lower-case names


def clause_open(para: list[str]) -> bool:
    """Whether the paragraph so far stops inside a parenthesis or after a comma, so that the next
    line continues it (a heading cannot start there)."""
    if not para:
        return False
    text = " ".join(para)
    return text.count("(") > text.count(")") or text.endswith((",", "("))


def _number_depth(title: str) -> int:
    m = re.match(r"^(\d+(?:\.\d+)*)", title)
    return m.group(1).count(".") if m else 0


class SectionPath:
    """The section path while walking a document, and the levels of headings that carry no number.

    An unnumbered heading read inside a numbered section ('RESERVE GROUP ANTIBIOTICS' under '6.2
    Antibacterials') is a sub-heading of its deepest numbered heading, so the next numbered heading
    at that level or above ends it ('6.2.1 Access group antibiotics', '6.3 Antifungal medicines').
    That holds only while the numbering goes on: when the next numbered heading does not follow the
    path's number (the document ends first, or numbering restarts: the product tables, package label
    and medication guide after section 17 of a label), the unnumbered headings since were top-level
    parts after all, and the units emitted under them lose the numbered prefix. With no numbered
    heading in the path (labels laid out with capitals headings only) a heading keeps its own level.
    """

    def __init__(self, units: list[Unit]) -> None:
        self.heads: list[tuple[int, str]] = []
        self.units = units  # the walk's output, whose sections are rewritten if a nesting is undone
        # Unnumbered headings nested but not yet confirmed: (first unit under them, numbered headings
        # kept above them, the deepest one's number, the last one's own level)
        self.open: tuple[int, int, tuple[int, ...], int] | None = None

    def text(self) -> str:
        """The path as a section string ('6. ANTI-INFECTIVE MEDICINES > 6.2 Antibacterials')."""
        return " > ".join(h for _, h in self.heads)

    def enter(self, level: int, text: str, outline_title: bool) -> None:
        """Read a heading (level and text from heading_of)."""
        number = section_number(text)
        if self.open and (number or outline_title):
            self._settle(number is not None and _continues(self.open[2], number))
        if number and self.heads and self.heads[-1][1].startswith("WARNING"):
            self.heads.pop()  # a label's boxed warning comes before section 1, it does not hold it
        if number is None and not outline_title:
            numbered = [(k, n) for k, (_, t) in enumerate(self.heads) if (n := section_number(t))]
            if numbered:
                k, deepest = numbered[-1]
                start = self.open[0] if self.open else len(self.units)
                self.open = (start, k + 1, deepest, level)
                level = self.heads[k][0] + 1
        while self.heads and self.heads[-1][0] >= level:
            self.heads.pop()
        self.heads.append((level, text))

    def extend(self, line: str) -> None:
        """The heading just entered goes on with this line (a title wrapped over lines)."""
        level, text = self.heads[-1]
        self.heads[-1] = (level, f"{text} {line}")

    def leaps(self, text: str) -> bool:
        """Whether a numbered heading jumps far ahead of the path's numbering: '29 Comparing metformin ...'
        inside '14 CLINICAL STUDIES' is a line of a study ('29-week'), not chapter 29. Restarts
        (an annex's '1 ...') and the next chapters stay headings.

        A subsection's number ('12.1 Mechanism of Action' after '8.7 Hepatic Impairment') is no count:
        labels leave out chapters without subsections, and their chapter titles may not be read.

        Example: path '14 CLINICAL STUDIES', '29 Comparing Metformin' -> True; '16 HOW SUPPLIED' -> False
        """
        number = section_number(text)
        deepest = next((n for _, t in reversed(self.heads) if (n := section_number(t))), None)
        return bool(number and len(number) == 1 and deepest and number[0] > deepest[0] + 2)

    def close(self) -> None:
        """The document has ended: no numbered heading follows."""
        self._settle(False)

    def _settle(self, continued: bool) -> None:
        """Keep the open nesting (the numbering went on), or undo it: the headings become top-level."""
        if self.open is None:
            return
        start, kept, _, own_level = self.open
        self.open = None
        if continued:
            return
        cut = len(" > ".join(h for _, h in self.heads[:kept])) + len(" > ")
        for k in range(start, len(self.units)):
            self.units[k] = replace(self.units[k], section=self.units[k].section[cut:])
        self.heads = [(own_level, h) for _, h in self.heads[kept:]]


class Outline:
    """The numbered titles of a document's outline (its bookmarks), by number.

    A numbered line whose number the outline gives to another title is an item of a numbered list, not
    a heading: in the WHO malaria guideline '4. Appropriate weight-based dosing' and '2. Modifications
    to existing house designs:' had filed every later page under them, away from '5. Case management'.
    Numbers the outline lacks are left to heading_of (an outline may hold only some of its entries:
    pypdf cannot resolve every destination).
    """

    def __init__(self, pages: list[Page]) -> None:
        self.titles: dict[tuple[int, ...], list[str]] = {}
        for page in pages:
            for _, title in page.outline:
                number = section_number(" ".join(title.split()))
                if number:
                    self.titles.setdefault(number, []).append(_letters(title))

    def allows(self, heading: str) -> bool:
        """Whether a heading (from heading_of) may stand: unnumbered, numbered as no outline title is,
        or one of the titles of its number (a title wrapped over two lines starts one).

        Example: with an outline '4. Prevention': '4. Prevention' -> True;
            '4. Appropriate weight-based dosing' -> False; '5.1 Hemorrhage' -> True; 'WARNINGS' -> True
        """
        number = section_number(heading)
        if number is None or number not in self.titles:
            return True
        text = _letters(heading)
        return any(t.startswith(text) or text.startswith(t) for t in self.titles[number])


def _letters(text: str) -> str:
    # outline titles and page lines space words differently ('S afety of praziquantel')
    return re.sub(r"[^a-z0-9]", "", text.lower())


def section_number(heading: str) -> tuple[int, ...] | None:
    """The number of a numbered heading, else None.

    Example: '6.2.1 Access group antibiotics' -> (6, 2, 1); 'RESERVE GROUP ANTIBIOTICS' -> None
    """
    m = SECTION_NUMBER.match(heading)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _continues(before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    """Whether a numbered heading follows on from an earlier one in the same numbering: after it, in
    its chapter or the next but one (a label may leave out a chapter: '14 CLINICAL STUDIES', then
    '16 HOW SUPPLIED'). A count ('60 Capsules' on a package label) or a restart does not follow on.

    Example: ((6, 2), (6, 2, 1)) -> True; ((14,), (16,)) -> True; ((17,), (60,)) -> False
    """
    return after > before and after[0] <= before[0] + 2
