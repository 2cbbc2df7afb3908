"""Abbreviations a document defines ('heterozygous familial hypercholesterolemia (HeFH)'), so that a
passage saying 'HeFH' is known to say what the question spells out.

Found the usual way (Schwartz and Hearst, 2003): a parenthesised short form whose letters are, in
order, the initials of the words just before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.text import stems

_DEFINED = re.compile(r"((?:[A-Za-z][\w'-]*\s+){1,8})\(\s*([A-Za-z][A-Za-z0-9-]{1,9})\s*\)")
_SMALL = frozenset("of and the for with in on to a an or by".split())


def definitions(texts: Iterable[str]) -> dict[str, frozenset[str]]:
    """Lower-cased short form -> the stems of its long form, for every abbreviation the texts define.

    Example: ['... with heterozygous familial hypercholesterolemia (HeFH).'] ->
        {'hefh': frozenset({'heterozygou', 'familial', 'hypercholesterolemia'})}
    """
    out: dict[str, frozenset[str]] = {}
    for text in texts:
        if "(" not in text:
            continue
        for m in _DEFINED.finditer(text):
            short = m.group(2)
            long_form = _long_form(m.group(1).split(), short)
            if long_form:
                out.setdefault(short.lower(), frozenset(stems(" ".join(long_form))))
    return out


def _long_form(words: list[str], short: str) -> list[str] | None:
    """The words before a short form whose initials spell its capitals ('HeFH': H, F, H), small words
    allowed between them; None when they do not."""
    letters = [ch.lower() for ch in short if ch.isupper() or ch.isdigit()] or [short[0].lower()]
    if len(letters) < 2 or len(letters) > len(words):
        return None
    picked: list[str] = []
    i = len(words) - 1
    for letter in reversed(letters):
        while i >= 0 and words[i].lower() in _SMALL:
            i -= 1
        if i < 0 or words[i][0].lower() != letter:
            return None
        picked.insert(0, words[i])
        i -= 1
    return picked
