"""Recommendation records: a WHO recommendation kept whole, with its strength, certainty and year as fields.

WHO guidelines print each recommendation in a set form. MAGICapp-made ones (the malaria guideline)
open a box with 'Strong recommendation for , High certainty evidence', then a title with its year
('Pyrethroid-only nets (2019)'), then the statement, and mark unrated ones '*Not evaluated using the
GRADE framework'. Others (the schistosomiasis guideline) print the statement, then 'Strong
recommendation' and 'Certainty of evidence: moderate' below the numbered statement ('Recommendation 3
...'). Either way the record is one unit,
never parted from its strength, so that an answer quoting it can say how strong it is.
"""

from __future__ import annotations

import json
import re

# The head of a MAGICapp recommendation box.
BOX_HEAD = re.compile(r"^(Strong|Conditional) recommendation (for|against)\b\s*(?:,\s*(High|Moderate|Low|Very low)"
                      r" certainty evidence)?", re.I)
# The strength line printed under a statement, and the certainty line under it.
STRENGTH = re.compile(r"^(Strong|Conditional) recommendation(?: (for|against))?$", re.I)
CERTAINTY = re.compile(r"^Certainty of evidence:\s*(high|moderate|low|very low)\b", re.I)
NOT_GRADED = re.compile(r"Not evaluated using the GRADE framework", re.I)
YEAR = re.compile(r"\(((?:19|20)\d\d)\)")
# A numbered statement ('Recommendation 3 WHO recommends ...'): where a strength printed below begins.
NUMBERED = re.compile(r"^Recommendation \d+\b")
# A box holds a head, a title and a statement of a few sentences; a record is closed after this many
# lines even without a blank line or heading (boxes the layout did not set apart).
MAX_LINES = 12


def box_head(line: str) -> bool:
    """Whether a line opens a MAGICapp recommendation box.

    Example: 'Conditional recommendation against , Low certainty evidence Updated' -> True
    """
    return bool(BOX_HEAD.match(line))


def strength_below(line: str, following: str) -> bool:
    """Whether `line` is a strength printed under its statement, with the certainty on the next line.

    Example: ('Strong recommendation', 'Certainty of evidence: moderate') -> True
    """
    return bool(STRENGTH.match(line.strip()) and CERTAINTY.match(following.strip()))


def statement_start(para: list[str]) -> int | None:
    """Where the numbered statement a strength line closes begins in the paragraph read so far, or None.

    Example: ['See annex 2.', 'Recommendation 3 WHO recommends ...', 'treatment.'] -> 1
    """
    starts = [i for i, ln in enumerate(para) if NUMBERED.match(ln)]
    return starts[-1] if starts else None


def fields(lines: list[str]) -> str:
    """The record's fields as Chunk.fields JSON: strength (strong/conditional, for/against), certainty
    (high, moderate, low, very low or not GRADE-evaluated) and year, each only where the text states it.

    Example: ['Strong recommendation for , High certainty evidence', 'Pyrethroid-only nets (2019)', '...']
        -> '{"recommendation":{"certainty":"high","strength":"strong for","year":"2019"}}'
    """
    rec: dict[str, str] = {}
    for line in lines:
        m = BOX_HEAD.match(line) or STRENGTH.match(line.strip())
        if m and "strength" not in rec:
            rec["strength"] = " ".join(g.lower() for g in m.groups()[:2] if g)
            if m.re is BOX_HEAD and m.group(3):
                rec["certainty"] = m.group(3).lower()
        c = CERTAINTY.match(line.strip())
        if c:
            rec["certainty"] = c.group(1).lower()
        if NOT_GRADED.search(line) and "certainty" not in rec:
            rec["certainty"] = "not GRADE-evaluated"
        y = YEAR.search(line)
        if y and "year" not in rec:
            rec["year"] = y.group(1)
    return json.dumps({"recommendation": rec}, sort_keys=True, separators=(",", ":"))
