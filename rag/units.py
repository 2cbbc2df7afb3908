"""The quotable units of a passage: whole sentences, list items, table rows and recommendation records.

An answer quotes units, never headings, the questions a Medication Guide asks itself ("What is type 2
diabetes?") or fragments, so what counts as a unit is decided here once, for the answerer, for the
vectors made at ingest (ingest.pipeline embeds every unit's `context`) and for the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import split_at, split_sentences
from rag.types import Chunk
from rag.verify import cut_units, looks_like_instruction, table_parts

# FDA Highlights end each item with its cross-reference: '... with meals (2.1) Increase the dose ...'.
_ITEM_END = re.compile(r"\(\d{1,2}(?:\.\d{1,2})?(?:,\s*\d{1,2}(?:\.\d{1,2})?)*\)(?=\s+[A-Z])")
_BULLET = re.compile(r"\s*[•●▪◦]\s+")
# A full stop, then an entry in lower case (a symbol font's box before it: the EML's therapeutic alternative).
_ENTRY = re.compile(r"(?<=[a-z0-9)\]]\.)\s+(?=[\uf06f□]?\s*[a-z]{2,})")
# A contents entry ('INTRODUCTION ........ 1') and a bibliography entry ('Steinmann P, Keiser J, Bos R.',
# 'Loebstein R, Addis A, Ho E, et al. Pregnancy ... 1996;69:83-89', '... 2015, ..., AAPS J, 17(4):891-901')
# say where things are, not what they say.
_LEADER_DOTS = re.compile(r"(?:\.\s?){5,}|…{2,}")
AUTHORS = re.compile(r"(?:\b[A-Z][a-z'’-]+ [A-Z]{1,3}[,.]\s+){2,}|\bet al\.|\b(?:19|20)\d\d;\s?\d+(?:\(\d+\))?:\d+"
                      r"|\b\d{1,4}\(\d{1,3}\):\s?\d+(?:[-–]\d+)?\b")  # a journal's volume(issue):pages
# A reporting or distributor line ('To report SUSPECTED ADVERSE REACTIONS, contact ... at 1-800-FDA-1088 or
# www.fda.gov/medwatch') gives an address, not a clinical statement: a web address and a phone number.
_WEB = re.compile(r"\bwww\.\S+|\bhttps?://\S+", re.I)
_PHONE = re.compile(r"\b1-\s?\d{3}-[\dA-Z]{3}-[\dA-Z]{4}\b|\(\d{3}\)\s?\d{3}-\d{4}|\b\d{3}-\d{3}-\d{4}\b")
# A section of cited works says where things are said, not what ('15 REFERENCES', 'References').
_REFERENCES = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?\s+)?(?:references|bibliography)$", re.I)
# A title with the number of the section it names ('Seasonal malaria chemoprevention (4.2.3)'): an entry
# of a list of contents or recommendations, not a statement.
_CONTENTS_ENTRY = re.compile(r"^[^.;:!?]{3,90}\(\d{1,2}(?:\.\d{1,2}){2,}\)$")
# A numbered section title's start ('2.1 Dosing', '5.12 Serious').
_SECTION_NUMBER = re.compile(r"(?<![\d.,])\b\d{1,2}\.\d{1,2}\s+[A-Z][a-z]")
# Words a unit needs to say something by itself ('Adults | 10 mg' is a row; 'See below.' is not).
MIN_WORDS = 3
_FUNCTION_WORDS = frozenset("a an and at by for from in of on or the to with without into versus vs".split())
# A longer unit without closing punctuation whose words are capitalised at least this share is a title
# block, not a statement.
TITLE_BLOCK = 0.9
# A statement does not end on these words: one that does was broken off (by a page, a table, a footnote).
_DANGLING = _FUNCTION_WORDS | frozenset(
    "between than as that which whose if is are was were be been its their your".split())
_CLOSING = re.compile(r"^[\"”’)\]]")
# The last words of a list's stem ('Do not take metformin if you:', 'contraindicated in patients with:').
_STEM_ENDS = _DANGLING | frozenset("you who include includes including used following".split())
# A unit longer than this many words is a list run together, cut by _run_together.
LONG_UNIT = 60
_RUN_ON = re.compile(r"(?<=[a-z0-9)\]])\s(?=[A-Z][a-z]+\b)")
# A heading is short, ends without punctuation, and capitalises (nearly) every word.
_HEADING_WORDS = 14


@dataclass(frozen=True)
class Unit:
    """One quotable unit of a chunk: its verbatim text and what kind of statement it is."""

    text: str
    position: int  # order within the chunk
    kind: str  # "sentence", "item", "row", "recommendation", "warning"
    head: str = ""  # a table row's caption and header lines, joined by newlines; a list item's stem
    # a piece of a sentence the chunker cut at words: "end" when the sentence began in the chunk before,
    # "start" when it runs on into the next; the answer marks the missing part with an ellipsis
    piece: str = ""


def units(chunk: Chunk) -> list[Unit]:
    """The chunk's quotable units in reading order.

    A recommendation record is one unit (its statement with strength and certainty); a table gives one
    unit per row (the caption and header travel in `head`); prose gives its sentences, cut further at
    list bullets and at FDA Highlights items. A piece of a sentence that reads as an instruction whole
    (Chunk.cut_instruction) is left out, as is anything addressed to a language model, and a section of
    references gives none.
    Example: a chunk 'Dosage • Take 5 mg daily with food. • Stop if a rash appears.' ->
        [Unit('Take 5 mg daily with food.', 0, 'item'), Unit('Stop if a rash appears.', 1, 'item')]
    """
    if _REFERENCES.match(chunk.section.split(">")[-1].strip()):
        return []  # a list of cited works: 'Testing for G6PD deficiency for safe use of primaquine (Policy brief).'
    if chunk.kind == "recommendation":
        raw, kinds, heads = [chunk.text], ["recommendation"], [""]
    elif chunk.kind == "table":
        head_lines, rows = table_parts(chunk.text)
        raw, kinds, heads = rows, ["row"] * len(rows), ["\n".join(head_lines)] * len(rows)
    else:
        # a list item says what it says after its stem, which travels with it (and is no unit itself)
        raw, kinds, heads = _prose(chunk.text)
        if chunk.kind == "boxed_warning":
            kinds = ["warning"] * len(raw)
    cut = cut_units(chunk, len(raw))
    out: list[Unit] = []
    for i, (text, kind) in enumerate(zip(raw, kinds, strict=True)):
        if i in cut and chunk.cut_instruction:
            continue
        text = _without_heading(" ".join(text.split()), chunk.section) if kind != "row" else text.strip()
        piece = "" if i not in cut else ("end" if i == 0 and chunk.starts_mid else "start")
        if not quotable(text, kind, piece) or looks_like_instruction(text):
            continue
        out.append(Unit(text, i, kind, heads[i], piece))
    return out


def context(title: str, section: str, unit: Unit) -> str:
    """What is embedded for a unit: the title and section give it its subject, a row its header.

    Example: ('WARFARIN TABLETS', '2 DOSAGE', Unit('Give 5 mg.', 0, 'sentence')) ->
        'WARFARIN TABLETS | 2 DOSAGE\\nGive 5 mg.'
    """
    head = f"{title} | {section}" if section else title
    body = f"{unit.head}\n{unit.text}" if unit.head else unit.text
    return f"{head}\n{body}"


def quotable(text: str, kind: str, piece: str = "") -> bool:
    """Whether a unit says something by itself: not a heading, a question line, a fragment, a contents
    entry or a bibliography entry. `piece` (Unit.piece): the end of a sentence the chunker cut at words
    ("end") may begin mid-sentence.

    Example: 'What is type 2 diabetes?' -> False; 'DOSAGE AND ADMINISTRATION' -> False; '( 2.1 , 2.2 )' -> False;
        '2.1 Dosing for Adults 2.2 Dosing in Neonates' -> False;
        'Steinmann P, Keiser J, Bos R. Schistosomiasis and water resources.' -> False;
        'To report SUSPECTED ADVERSE REACTIONS, contact FDA at 1-800-FDA-1088 or www.fda.gov/medwatch.' -> False;
        'Applications for original BLAs received between' -> False;
        'Take 500 mg twice daily with meals.' -> True
    """
    words = text.split()
    if _LEADER_DOTS.search(text) or AUTHORS.search(text) or (_WEB.search(text) and _PHONE.search(text)) \
            or _CONTENTS_ENTRY.match(text.strip()):
        return False
    if kind == "row":
        return len(words) >= 2 and any(ch.isalnum() for ch in text)
    if sum(any(ch.isalpha() for ch in w) for w in words) < MIN_WORDS or text.endswith("?"):
        return False
    if words[-1].lower() in _DANGLING or text.rstrip().endswith(":"):
        return False  # a sentence broken off ('... received between'), or a list's stem without its items
    # (the end of a sentence the chunker cut at words is shown after an ellipsis)
    if kind == "sentence" and piece != "end" and (words[0] in _DANGLING or _CLOSING.match(text)):
        return False  # the rest of one ('or within 1 year ...', '" for more information about side effects.')
    if len(_SECTION_NUMBER.findall(text)) >= 2 and text.rstrip()[-1:] not in ".;:":
        return False  # section titles run together: a list of contents ('2.1 Dosing for ... 2.2 Dosing in ...')
    return not heading(text)


def heading(text: str) -> bool:
    """A short line without closing punctuation whose words are (nearly) all capitalised.

    Example: 'Dosing Recommendations without Consideration of Genotype' -> True
    """
    words = [w for w in text.split() if w[:1].isalpha() and w.lower() not in _FUNCTION_WORDS]
    if not words or text.rstrip()[-1:] in ".;:)%":
        return False
    capital = sum(w[0].isupper() for w in words)
    if len(text.split()) > _HEADING_WORDS:  # a title page's block of names ('Department of Health ... (CDER)')
        return capital >= TITLE_BLOCK * len(words)
    return capital >= 0.75 * len(words) or text.isupper()


def _prose(text: str) -> tuple[list[str], list[str], list[str]]:
    """Sentences, cut further into list items at bullets and Highlights cross-references; with each its
    list's stem ('Lisinopril tablets are contraindicated in patients with:'), '' for none."""
    raw: list[str] = []
    kinds: list[str] = []
    stems: list[str] = []
    for sentence in split_sentences(text):
        # a list printed without bullets, each entry in lower case after the one before ('if you: have
        # liver problems. drink a lot of alcohol.'; a formulary's 'ampoule. warfarin Tablet: 1 mg')
        entries = _entries(sentence)
        lead = entries[0].rpartition(": ")[0].split()
        # its stem, when the first entry's words before a colon break off mid-sentence ('... if you:'), not a
        # label ('Powder for injection:')
        listed = f"{' '.join(lead)}:" if len(entries) > 1 and lead and lead[-1].lower() in _STEM_ENDS else ""
        start = len(raw)
        for e, entry in enumerate(entries):
            bullets = _BULLET.split(entry)
            stem = " ".join(bullets[0].split()) if len(bullets) > 1 and bullets[0].rstrip().endswith(":") else ""
            for n, b in enumerate(bullets):
                parts = [p.strip() for p in _after_references(b) for p in _run_together(p) if p.strip()]
                raw.extend(parts)
                stems.extend([stem if n else (listed if e else "")] * len(parts))
        kinds.extend(["sentence"] if len(raw) - start == 1 else ["item"] * (len(raw) - start))
    return raw, kinds, stems


def _entries(sentence: str) -> list[str]:
    """A sentence cut where a lower-case entry follows a full stop, unless the stop ends an abbreviation.

    Example: 'in 5 mL ampoule. warfarin Tablet: 1 mg; 2 mg.' -> ['in 5 mL ampoule.', 'warfarin Tablet: 1 mg; 2 mg.']
    """
    return split_at(_ENTRY, sentence.strip())


def _after_references(text: str) -> list[str]:
    """Text cut after each Highlights cross-reference that a capitalised item follows.

    Example: 'Start 500 mg (2.1) Increase weekly (2.1)' -> ['Start 500 mg (2.1)', 'Increase weekly (2.1)']
    """
    parts, start = [], 0
    for m in _ITEM_END.finditer(text):
        parts.append(text[start:m.end()])
        start = m.end()
    return parts + [text[start:]]


def _run_together(text: str) -> list[str]:
    """A long unit cut where its lines ran together: a capitalised word right after a word that closes
    nothing ('... longer time than directed Feedback Do not use if ...'), as the lines of a Drug Facts
    list come out of extraction. Short units are left whole (names and titles capitalise too).

    Example: 'Do not use if allergic ' * 10 + 'Ask a doctor before use if you have ulcers' -> two parts
    """
    if len(text.split()) <= LONG_UNIT:
        return [text]
    parts, start = [], 0
    for m in _RUN_ON.finditer(text):
        before = text[:m.start()].rsplit(None, 1)[-1].lower()
        if before in _FUNCTION_WORDS:  # 'with Warfarin', 'of Pediatrics': a name inside a sentence
            continue
        parts.append(text[start:m.start() + 1].strip())
        start = m.start() + 1
    return [p for p in parts + [text[start:].strip()] if p]


def _without_heading(text: str, section: str) -> str:
    """A unit without the heading printed in front of it (the section's own title), when one is.

    The chunk's section path names the heading; a sentence that starts with it, then goes on with a
    capital, carries the heading glued on by extraction.
    Example: ('Dosing Recommendations Give 5 mg daily.', '2 DOSAGE > 2.2 Dosing Recommendations')
        -> 'Give 5 mg daily.'
    """
    last = section.split(">")[-1].strip()
    last = re.sub(r"^\d+(?:\.\d+)*\s+", "", last)  # '2.2 Dosing' -> 'Dosing'
    if len(last) >= 6 and text.lower().startswith(last.lower()):
        rest = text[len(last):].lstrip(" :.-–")
        if rest[:1].isupper() and len(rest.split()) >= MIN_WORDS:
            return rest
    return text
