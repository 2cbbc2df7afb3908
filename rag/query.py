"""The question understood once: its terms, synonyms, named subjects, intents and values, as a frozen
Query passed down the answering chain (retrieve, rerank, answer, verify read it; none re-parses).

`Library` is what subject matching needs of the published documents, built once per generation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from rag import synonyms
from rag.text import PREFIX, content_words, stems
from rag.types import Document
from rag.values import Value, band_contains, parse_values

__all__ = ["Entry", "Library", "Query", "Value", "band_contains", "formulations", "understand"]

# A label for one formulation (extended-release, injection...) is a different product from the plain one.
# Long forms in any case; abbreviations only in capitals and not after an article or preposition
# ('go to the ER' is not extended-release).
FORMULATION = re.compile(
    r"(?i:\b(?:extended|delayed|modified|sustained|controlled|prolonged)[- ]release\b|\bchewable\b"
    r"|\borally disintegrating\b|\binject(?:ion|able)\b|\btransdermal\b|\bophthalmic\b|\btopical\b"
    r"|\binhal(?:ation|er)\b|\bintravenous\b|\bsuppositor(?:y|ies)\b)"
    r"|(?<!the )(?<!an )(?<!to )(?<!in )(?<!at )\b(?:XR|ER|SR|CR|XL|DR|ODT)\b")
# Each form's one name, so that 'XR' in a question meets 'Extended-Release' in a title.
_FORM_NAMES = (
    (re.compile(r"extended|sustained|controlled|prolonged|modified|^(?:xr|er|sr|cr|xl)$"), "extended-release"),
    (re.compile(r"delayed|^dr$"), "delayed-release"), (re.compile(r"orally|^odt$"), "orally-disintegrating"),
    (re.compile(r"inject|intravenous"), "injection"), (re.compile(r"inhal"), "inhalation"),
    (re.compile(r"suppositor"), "suppository"),
)
# The plain (immediate-release) product named as such, in a question comparing it with another form.
IMMEDIATE = re.compile(r"\bimmediate[- ]release\b|\bIR\b")

# What a question asks, by general patterns: (intent, question pattern). SECTIONS gives, per intent,
# the section titles of labels and guidelines that answer it (FDA label sections, WHO chapters).
INTENTS = tuple((name, re.compile(q, re.I)) for name, q in (
    ("dosing", r"\b(?:dos(?:e|es|ed|ing|age|ages)|start(?:ed|ing)?|titrat\w*|regimens?|how (?:much|many|often|long)"
               r"|administ\w*|missed|maximum|max|strengths?|tablets? a day)\b"),
    ("contraindication", r"\bcontraindicat\w*|\b(?:should|must|can)(?:n't| not) (?:be )?(?:take|use|give)\w*"
                         r"|\bwho should not\b|\bavoid(?:ed)?\b|\bsafe(?:ly|ty)?\b"
                         r"|\bis it (?:ok|okay|fine|all right|alright)\b"
                         r"|\b(?:can|should|may)\b[^?]{0,40}\bbe (?:given|used|taken|prescribed)\b"),
    ("adverse", r"\bside[- ]effects?\b|\badverse\b|\breactions?\b|\btoxicit\w*|\brisks?\b|\bwarn\w*"),
    ("interaction", r"\binteract\w*|\b(?:with|and) (?:other|another) (?:drugs?|medicines?)\b|\btogether\b"
                    r"|\bconcomitant\w*|\bco-?administ\w*|\bcombin(?:ed|ation) with\b|\btake \w+ with\b"),
    ("pregnancy", r"\bpregnan\w*|\bbreast-?\s?feed\w*|\blactat\w*|\bnursing\b|\btrimester\b"),
    ("overdose", r"\boverdos\w*|\btoo much\b|\bpoisoning\b"),
    ("storage", r"\bstor(?:e|ed|ing|age)\b|\breconstitut\w*|\brefrigerat\w*|\bshelf[- ]life\b|\btemperature\b"),
    ("monitoring", r"\bmonitor\w*|\bINR\b|\b(?:blood|lab(?:oratory)?) tests?\b|\bcheck(?:ed|ing)?\b|\bmeasur\w*"
                   r"|\bfollow-?up\b|\blevels?\b"),
    ("recommendation", r"\brecommend\w*|\btreat(?:ment|ed|ing)?\b|\bmanage(?:ment|d)?\b|\bfirst[- ]line\b"
                       r"|\bpreferred\b|\bguidelines?\b|\bsuggest\w*"
                       r"|\bwhich (?:treatment|drug|medicine|regimen)\b"),
    ("renal", r"\bkidneys?\b|\brenal\b|\bcreatinine\b|\bcrcl\b|\bclcr\b|\be?gfr\b|\bdialysis\b"),
    ("hepatic", r"\blivers?\b|\bhepat\w*|\bcirrho\w*|\bchild-pugh\b"),
    ("pharmacology", r"\babsor\w*|\bpharmaco\w*|\bhalf-?li(?:fe|ves)\b|\bclearance\b|\bbioavailab\w*|\btrials?\b"
                     r"|\bstud(?:y|ies)\b|\bplasma\b|\bpeak\b|\bc ?max\b|\bauc\b|\bexposure\b|\befficacy\b|\bfood\b"
                     r"|\bmetaboli[sz]\w*|\bexcret\w*|\belimination\b|\bplacebo\b|\bcompared?\b|\brates?\b"),
    ("pediatric", r"\bchild(?!-pugh)\w*|\bp(?:a)?ediatric\w*|\binfants?\b|\bneonat\w*|\bnewborns?\b|\bbab(?:y|ies)\b"
                  r"|\bkids?\b|\badolescent\w*|\b(?:son|daughter|boy|girl)\b"),  # and an age under 18 (_intents)
))
SECTIONS = {name: re.compile(s, re.I) for name, s in (
    ("dosing", r"dosage|dosing|administration|directions|how to (?:use|take)"),
    ("contraindication", r"contraindication|do not use"),
    ("adverse", r"adverse reactions|side effects|warnings|precautions"),
    ("interaction", r"interaction|ask a doctor or pharmacist before use"),
    ("pregnancy", r"pregnan|lactation|specific populations|nursing"),
    ("overdose", r"overdos"),
    ("storage", r"storage|how supplied|preparation|reconstitut"),
    ("monitoring", r"monitor|laboratory|warnings and precautions"),
    ("recommendation", r"recommendation"),
    ("definition", r"definition|glossary|description|introduction|indications"),
    ("renal", r"renal|specific populations|dosage"),
    ("hepatic", r"hepatic|specific populations"),
    ("pediatric", r"pediatric|paediatric|children|specific populations"),
    ("pharmacology", r"clinical pharmacology|pharmacokinetic|clinical studies|pharmacodynamic"),
)}
# 'Take' asks how to take a drug only when the question asks nothing else.
TAKE = re.compile(r"\btaken?\b", re.I)
# A question that asks what something means; one that asks only 'what is X?' does when it asks nothing else.
DEFINES = re.compile(r"\bdefin(?:e|es|ed|ition)\b|\bwhat does .+ (?:mean|signify|stand for)\b|\bmeaning of\b", re.I)
WHAT_IS = re.compile(r"^\s*what (?:is|are) (?:a |an |the )?[\w' -]+\??$", re.I)
AMOUNT = re.compile(r"\b(?:what|which)\b[^?]*\b(?:dose|dosage|doses|regimen|amount|strengths?)\b"
                    r"|\bhow (?:much|many)\b|\bmaximum\b"
                    r"|^\s*(?:the |usual |recommended )?(?:dose|dosage|dosing|regimen)\b"
                    r"|\bhow (?:is|are|should|do|does)\b[^?]*\bdosed\b"
                    r"|\b(?:dose|dosage|dosing|regimen)\s*\??\s*$", re.I)  # a bare 'zorblax dose'

# A question whose answer is a number of another kind: a limit, a range, a share, a duration, a count.
NUMBER = re.compile(r"\b(?:what|which)\b[^?]*\b(?:limits?|ranges?|share|percentage|proportion|cut-?offs?|concentration"
                    r"|thresholds?|rate)\b|\bhow (?:long|many|much|often|soon)\b", re.I)
# A question asking how long, or how many of something counted, is answered by a number of that kind:
# (pattern, the kind: a key of rag.extractive.COUNTED).
COUNTS = ((re.compile(r"\bhow long\b|\bhow many\s+(?:[\w-]+\s+){0,2}?(?:hours|days|weeks|months|years)\b", re.I),
           "time"),
          (re.compile(r"\bhow many\s+(?:[\w-]+\s+){0,4}?(?:tablets|caplets|capsules|pills)\b", re.I), "tablet"))
# A patient asks about their own use ('can I take', 'my son', "I'm on"); a clinician's first person does
# not make one ('my patient', 'what should I suspect').
PATIENT = re.compile(
    r"\b(?:can|could|should|may|do|must|shall) i (?:take|use|give|drink|eat|stop|keep|still|continue|start|double"
    r"|skip|breastfeed|get|have)\b|\bi (?:should|must) (?:stop|take|call|see)\b"
    r"|\bmy\b(?! (?:patients?|clients?|customers?|pharmacy|hospital|clinic|team|practice|ward|formulary))"
    r"|\bi(?:'m| am) (?:on|taking|having|pregnant|breastfeeding|allergic)\b"
    r"|\bi (?:have|take|took|missed|forgot|drank|had|might be|may be)\b|\bfor me\b", re.I)
# Words of titles that name no subject: product boilerplate, salts, dosage forms, months.
TITLE_WORDS_NAMING_NONE = frozenset(
    "tablet capsule usp label highlight prescribing information guideline guidance who fda hydrochloride hcl "
    "sodium potassium calcium oral suspension solution injection drug fact list film coated extended release "
    "delayed general consideration industry for and the of with january february march april may june july "
    "august september october november december".split())
# How a combination's name joins its components ('artemether + lumefantrine').
_COMBINATION = re.compile(r" \+ |/| and ")
# Words of the question shorter than PREFIX (rag.text) name a subject only by exact match; longer ones by
# that many first letters ('malarial' meets 'malaria', 'schistosome' 'schistosomiasis').


@dataclass(frozen=True)
class Entry:
    """One document as subject matching sees it: its title's naming words, drugs and form."""

    doc_id: str
    title: str
    family: str
    doc_type: str
    words: frozenset[str]  # stems of the title
    # the title words that name its subject (not everyday English, not boilerplate): (stem, word as printed,
    # lower-case); a word the family name repeats names it however common ('malaria' of who-guidelines-malaria)
    naming: tuple[tuple[str, str], ...]
    drugs: frozenset[str]  # canonical names of the drugs the title names
    synonyms: frozenset[str]  # every name of those drugs
    forms: frozenset[str]  # the dosage forms the title names ('extended-release')


@dataclass(frozen=True)
class Library:
    """What understand() needs of the published documents: one Entry each, built once per generation."""

    entries: tuple[Entry, ...]

    @classmethod
    def build(cls, docs: Iterable[Document], common: Callable[[str], bool] = lambda t: False) -> Library:
        """Entries for `docs` (the generation's current documents). `common`: whether a word is everyday
        English (rag/qa.py: one word piece of the embedder's vocabulary), so names no subject."""
        entries = []
        for d in docs:
            mentions = synonyms.drug_mentions(d.title)
            words = frozenset(stems(d.title))
            family = frozenset(d.family.lower().split("-"))
            naming = tuple(sorted({(_stem(w), w) for w in content_words(d.title)
                                   if _names(w, d.title, common, family)}))
            entries.append(Entry(
                d.doc_id, d.title, d.family, d.doc_type, words, naming,
                frozenset(m.canonical for m in mentions), frozenset(n for m in mentions for n in m.names),
                formulations(d.title)))
        return cls(tuple(entries))


@dataclass(frozen=True)
class Query:
    """A question as understood once, passed down the chain."""

    text: str  # the question, whitespace collapsed
    terms: tuple[str, ...]  # rag.text.stems of the question, in order, deduplicated
    expansions: tuple[str, ...]  # extra stemmed terms from synonyms (acetaminophen for paracetamol), not in terms
    names: tuple[str, ...]  # the drug / disease names the question contains, canonical, lower-case
    subjects: frozenset[str]  # doc_ids of the library's documents about what the question names
    preferred: frozenset[str]  # of subjects, those for the product form asked about
    intents: frozenset[str]  # keys of SECTIONS
    values: tuple[Value, ...]
    patient: bool  # phrased as a patient's question ('can I', 'my', 'should I')
    asks_amount: bool  # asks for a dose, amount or regimen (so an answer must state one)
    asks_number: bool = False  # asks for an amount or another number (limit, range, share, duration...)
    forms: frozenset[str] = frozenset()  # the dosage forms the question names
    counts: str = ""  # the kind of number asked for, when one is (COUNTS: 'time' for 'how long')


def understand(question: str, library: Library) -> Query:
    """The question parsed once: terms, synonym expansions, named subjects, intents, values.

    Example: ('What is the maximum daily dose of paracetamol?', Library with the acetaminophen label) ->
    Query(terms=('maximum', 'daily', 'dose', 'paracetamol'), expansions=('acetaminophen', ...),
    names=('acetaminophen',), subjects={its doc_id}, intents={'dosing'}, asks_amount=True, ...)
    """
    text = " ".join(question.split())
    terms = tuple(dict.fromkeys(stems(text)))
    drugs = [m for m in synonyms.drug_mentions(text) if not measured(text, m)]
    values = parse_values(text)
    forms = formulations(text)
    groups = _subject_groups(terms, stems(text), drugs, library)
    subjects, preferred = _choose_products(groups, forms, bool(IMMEDIATE.search(text)))
    names = tuple(dict.fromkeys([m.canonical for m in drugs] + [n for n in groups if n not in _all_names(drugs)]))
    return Query(
        text=text, terms=terms, expansions=_expansions(text, terms, drugs), names=names,
        subjects=subjects, preferred=preferred, intents=_intents(text, values, drugs), values=values,
        patient=bool(PATIENT.search(text)), asks_amount=bool(AMOUNT.search(text)),
        asks_number=bool(AMOUNT.search(text) or NUMBER.search(text)), forms=forms,
        counts=next((kind for pattern, kind in COUNTS if pattern.search(text)), ""))


def measured(text: str, m: synonyms.Mention) -> bool:
    """Whether a substance the drug dictionary knows is named as what a test measures, not as a drug
    taken: 'creatinine clearance', 'serum potassium', 'blood glucose levels'.

    Example: ('dose for a creatinine clearance of 40', Mention('creatinine', ...)) -> True
    """
    return bool(_MEASURED_BEFORE.search(text[:m.start]) or _MEASURED_AFTER.match(text[m.end:]))


# Words around a substance that make it a laboratory value ('serum potassium', 'creatinine clearance').
_MEASURED_BEFORE = re.compile(r"\b(?:serum|plasma|blood|urine|urinary|fasting)\s+$", re.I)
_MEASURED_AFTER = re.compile(r"^\s+(?:clearance|levels?|concentrations?|tests?|values?)\b", re.I)


def formulations(text: str) -> frozenset[str]:
    """The dosage forms a text names, each by one name.

    Example: 'METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS' -> {'extended-release'}; 'Cipro XR' -> the same
    """
    out = set()
    for m in FORMULATION.finditer(text):
        w = m.group(0).lower()
        out.add(next((name for p, name in _FORM_NAMES if p.search(w)), w.replace(" ", "-")))
    return frozenset(out)


def _names(word: str, title: str, common: Callable[[str], bool], family: frozenset[str]) -> bool:
    """Whether a title word (as written, lower-cased) names the document's subject: 4+ letters (3 when
    the title prints it in capitals, an acronym such as EML), no digit, not boilerplate, and neither it
    nor its stem everyday English ('studies': 'studie' is no word piece, 'studies' is)."""
    stem = _stem(word)
    if any(ch.isdigit() for ch in word) or stem in TITLE_WORDS_NAMING_NONE or FORMULATION.fullmatch(word):
        return False
    if len(stem) < 3 or (len(stem) == 3 and not re.search(rf"\b{re.escape(stem.upper())}S?\b", title)):
        return False
    return word in family or stem in family or not (common(word) or common(stem))


def _stem(word: str) -> str:
    """rag.text.stems of one word ('' for a stop word)."""
    out = stems(word)
    return out[0] if out else ""


def _subject_groups(terms: tuple[str, ...], words: list[str], drugs: list[synonyms.Mention],
                    library: Library) -> dict[str, list[Entry]]:
    """Per thing named (a drug's canonical name, or a title's naming word), the entries about it."""
    groups: dict[str, list[Entry]] = {}
    for m in drugs:
        hit = [e for e in library.entries if m.canonical in e.drugs or any(w in m.names for _, w in e.naming)]
        if hit:
            groups[m.canonical] = hit
    named_by_drug = _all_names(drugs)
    exact = set(terms)
    prefixes = {t[:PREFIX] for t in terms if len(t) >= PREFIX}
    # an acronym of a title ('EML') is also named by the initials of consecutive question words
    # ('Essential Medicines List')
    initials = "".join(w[0] for w in words if w[0].isalpha())
    for e in library.entries:
        for stem, word in e.naming:
            if stem in named_by_drug:
                continue  # matched through the drug above
            acronym = len(word) <= 4 and re.search(rf"\b{re.escape(word.upper())}S?\b", e.title) is not None
            # short words by exact match, longer ones by PREFIX letters ('malarial' meets 'malaria')
            same = stem in exact or (len(stem) >= PREFIX and stem[:PREFIX] in prefixes)
            if same or (acronym and word in initials):
                groups.setdefault(word, []).append(e)
    return groups


def _choose_products(groups: dict[str, list[Entry]], forms: frozenset[str],
                     immediate: bool) -> tuple[frozenset[str], frozenset[str]]:
    """Subjects and preferred documents: per thing named, the products of the form asked about ('metformin
    extended-release' -> the ER label only); with no form asked, all of them, preferring the plain one."""
    subjects: set[str] = set()
    preferred: set[str] = set()
    for entries in groups.values():
        if forms or immediate:
            chosen = [e for e in entries if (e.forms & forms) or (immediate and not e.forms)]
            if chosen:
                subjects.update(e.doc_id for e in chosen)
                preferred.update(e.doc_id for e in chosen)
                continue
        subjects.update(e.doc_id for e in entries)
        plain = [e for e in entries if not e.forms] or entries
        preferred.update(e.doc_id for e in plain)
    return frozenset(subjects), frozenset(preferred)


def _all_names(drugs: list[synonyms.Mention]) -> frozenset[str]:
    """Every name of every drug mentioned (stemmed as title words are)."""
    return frozenset().union(*(_name_stems(m.canonical) for m in drugs))


@lru_cache(maxsize=4096)
def _name_stems(canonical: str) -> frozenset[str]:
    """The stems of every name of a drug (the dictionary does not change while a process runs)."""
    return frozenset(s for n in synonyms.names_of(canonical) for s in stems(n))


@lru_cache(maxsize=4096)
def _drug_expansions(canonical: str) -> tuple[str, ...]:
    """A drug's names as expansion terms: its one-word names (the canonical first) and the components of
    a combination's names ('artemether + lumefantrine'); salt names ('warfarin sodium') add nothing."""
    out: list[str] = []
    for name in sorted(synonyms.names_of(canonical), key=lambda n: (n != canonical, n)):
        if len(content_words(name)) == 1 or (
                _COMBINATION.search(name) and all(synonyms.canonical(w) for w in _COMBINATION.split(name))):
            out.extend(stems(name))
    return tuple(dict.fromkeys(out))


def _expansions(text: str, terms: tuple[str, ...], drugs: list[synonyms.Mention]) -> tuple[str, ...]:
    """Stemmed synonyms of the drugs (_drug_expansions) and clinical terms named (every word of a
    clinical equivalent: 'renal' for 'kidney'), less the question's own terms."""
    seen = set(terms)
    out: list[str] = []

    def add(words: Iterable[str]) -> None:
        for w in words:
            if w not in seen:
                seen.add(w)
                out.append(w)

    for m in drugs:
        add(_drug_expansions(m.canonical))
    for m in synonyms.clinical_mentions(text):
        for name in sorted(m.names):
            add(stems(name))
    return tuple(out)


def _intents(text: str, values: tuple[Value, ...], drugs: list[synonyms.Mention]) -> frozenset[str]:
    """The kinds of statement the question asks for (keys of SECTIONS)."""
    found = {name for name, pattern in INTENTS if pattern.search(text)}
    if not found and TAKE.search(text):
        found.add("dosing")  # 'how do I take it?'; but 'can I take ibuprofen with lisinopril?' asks about both
    if len({m.canonical for m in drugs}) >= 2 and re.search(r"\b(?:with|while|on|plus)\b", text, re.I):
        found.add("interaction")  # two drugs taken together
    if DEFINES.search(text):
        found.add("definition")
    if any(v.kind == "renal" for v in values):
        found.add("renal")
    if any(v.kind == "age" and v.number * {"years": 1, "months": 1 / 12, "weeks": 1 / 52, "days": 1 / 365}.get(
            v.unit, 1) < 18 for v in values):
        found.add("pediatric")
    if not found and WHAT_IS.search(text):
        found.add("definition")
    return frozenset(found)
