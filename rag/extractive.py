"""The default answerer: picks the source units (sentences, list items, table rows, recommendation records)
that answer the question, and cites each.

It adds no clinical words of its own; every statement of the answer is a verbatim quote of a passage.
It reads the question once understood (rag.query.Query); its constants are an AnswerConfig
(rag/answer_config.py), chosen by cross-validation (bench/cv.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from rag import synonyms
from rag.answer_config import DEFAULT, AnswerConfig
from rag.bm25 import stemmer
from rag.embedder import Embedder
from rag.query import SECTIONS, Query, band_contains
from rag.text import LABEL, PAIR, PREFIX, numbers_with_units, split_sentences, squash, stems
from rag.types import Hit
from rag.units import Unit, context, units
from rag.values import row_key

VERB_ENDINGS = ("ed", "ing", "en", "ly")
# English prefixes that make a word about the same thing as its rest ('reassess', 'pretreatment', 'nonadherence').
DERIVATIONAL = ("re", "pre", "non", "un", "dis", "mis", "co")
STOP_TERMS = re.compile(r"^(year|month|week|day|old|first|second|third)$")
# Openings that refer back to the sentence before ('Thus, amoxicillin should not be given ...'), and a
# list of examples, which names instances of what the unit before says ('Examples: topiramate, ...').
_ANAPHOR = re.compile(r"(?:(?:thus|therefore|hence|consequently|however|this|these|those|such|it|they|both|in these"
                      r"|in such|for example)\b|examples?\s*:|e\.g\.)", re.I)
# The units of an amount given (a dose, a volume, a count of tablets), as rag.text.numbers_with_units writes them.
_DOSE_UNIT = re.compile(r"(?:mg|mcg|µg|microgram|g|ml|l|iu|unit|mmol|tablet|capsule|dose)(?:/.*)?$")
# A cross-reference: '(5.1)', '(2.1, 2.3)', '[see Warnings and Precautions (5.4)]'.
_REFERENCE = re.compile(r"\[see [^\]]*\]|\(\d+(?:\.\d+)*(?:,\s*\d+(?:\.\d+)*)*\)"
                        # a date names a document or an event, not a value asked for ('(February 2001)')
                        r"|\b(?:January|February|March|April|May|June|July|August|September|October"
                        r"|November|December)\s+(?:\d{1,2},\s*)?(?:19|20)\d\d\b|\((?:19|20)\d\d\)"
                        # a footnote mark glued after a word's punctuation ('... might need to be narrowed.62')
                        r"|(?<=[a-z)\]][.,;:])\d{1,3}(?=\s|$)")
# A number stated in words or as a share, besides numbers_with_units ('one-third', 'twice', '75%').
_NUMBER = re.compile(r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twice|half|third|quarter)\b|\d\s*%",
                     re.I)
# Text written for patients (FDA Medication Guides, patient information, Drug Facts' questions) restates
# the prescribing sections in lay terms; a clinician's question is answered from the prescribing text.
PATIENT_TEXT = re.compile(r"medication guide|patient (?:information|counsel)|instructions for use"
                          r"|what is the most important information|information for patients", re.I)
# The headings of an OTC Drug Facts label (21 CFR 201.66), which print them inline at the start of the
# statement they head ('Do not use if you have ever had an allergic reaction ...'): the unit's own section.
DRUG_FACTS_HEADING = re.compile(r"^(?:Do not use|Ask a doctor or pharmacist before use|Ask a doctor before use"
                                r"|When using this product|Stop use and ask a doctor|Directions|Other information"
                                r"|Warnings|Uses|Purpose|(?:In)?active ingredients?)\b", re.I)

Idf = Callable[[str], float]


@dataclass(frozen=True)
class Candidate:
    """One quotable unit (sentence, list item, table row, recommendation) of a passage, with its score."""

    hit: Hit
    text: str
    position: int
    score: float = 0.0
    terms: frozenset[str] = frozenset()  # the question terms it covers (directly or through a synonym)
    head: str = ""  # a table row's caption and header rows
    piece: str = ""  # rag.units.Unit.piece: "end" / "start" for a piece of a sentence cut at words
    kind: str = "sentence"  # rag.units.Unit.kind

    def shown(self) -> str:
        """The text as the answer shows it: a piece of a sentence says so ('…the dose is 10 mg.').

        Example: Candidate(hit, 'the dose is 10 mg.', 0, piece='end').shown() -> '…the dose is 10 mg.'
        """
        return f"{'…' if self.piece == 'end' else ''}{self.text}{'…' if self.piece == 'start' else ''}"


def candidates(hits: list[Hit]) -> list[Candidate]:
    """The quotable units (rag.units) of the passages read, in reading order."""
    return [Candidate(hit, u.text, u.position, head=u.head, piece=u.piece, kind=u.kind)
            for hit in hits for u in units(hit.chunk)]


def aliases(query: Query, known: Callable[[str], bool] = lambda t: True) -> dict[str, frozenset[str]]:
    """Per question term, the stems that count as it in a passage: itself, and its synonyms that the
    library uses (`known`; aliases_of), so 'paracetamol' is found as 'acetaminophen', 'kidney' as 'renal'.

    Example: a query with terms ('paracetamol', 'dose') -> {'paracetamol': {'paracetamol', 'acetaminophen'},
        'dose': {'dose'}}
    """
    return {t: frozenset({t} | {s for s in aliases_of(t) if known(s)}) if len(t) >= 4 and not t.isdigit()
            else frozenset({t}) for t in query.terms}


def score_candidates(query: Query, cands: list[Candidate], embedder: Embedder, idf: Idf,
                     query_vec: np.ndarray | None = None, cfg: AnswerConfig = DEFAULT,
                     made: Callable[[list[str]], dict[str, np.ndarray]] | None = None,
                     known: Callable[[str], bool] = lambda t: True,
                     spelled_out: Callable[[str, frozenset[str]], frozenset[str]] = lambda d, w: frozenset()
                     ) -> list[Candidate]:
    """Evidence score of each unit: w_cosine * similarity to the question (the unit in its title and
    section) + w_terms * idf share of the question's terms in its context (title, section, table head,
    text), plus the general priors of `_prior`.

    `made(contexts)`: the unit vectors made at ingest (by rag.units.context). Embedding the others is the
    cost of answering (about 25 ms a unit on 2 cores), so of those only the max_embedded with the best
    term share and prior (then passage rank) are embedded; the rest are dropped.
    """
    if not cands:
        return []
    alias = aliases(query, known)
    combos = {t: parts for t in alias if (parts := _combination(t))}
    total = sum(idf(t) for t in alias) or 1.0
    lexical = []
    for c in cands:
        words = _context_words(c)
        words |= spelled_out(c.hit.doc.doc_id, words)
        # inflections by their Snowball stem: 'characterize' is in 'IMNM is characterized by'
        roots = _roots(words)
        present = frozenset(t for t, names in alias.items() if names & words or _roots(names) & roots
                            or t in combos and combos[t] <= words)
        share = sum(idf(t) for t in present) / total
        lexical.append(replace(c, score=cfg.w_terms * share + _prior(query, c, cfg), terms=present))
    ctx = [_context(c) for c in lexical]
    vectors = made(ctx) if made else {}
    fresh = [i for i in range(len(lexical)) if ctx[i] not in vectors]
    fresh.sort(key=lambda i: (-lexical[i].score, lexical[i].hit.rank, lexical[i].position))
    fresh = fresh[:cfg.max_embedded]
    if fresh:
        vectors = {**vectors, **dict(zip([ctx[i] for i in fresh], embedder.embed([ctx[i] for i in fresh]),
                                         strict=True))}
    q = embedder.embed([query.text])[0] if query_vec is None else query_vec.reshape(-1)
    return [replace(c, score=c.score + cfg.w_cosine * float(vectors[x] @ q))
            for c, x in zip(lexical, ctx, strict=True) if x in vectors]


def _prior(query: Query, c: Candidate, cfg: AnswerConfig) -> float:
    """What the unit's place says, whatever the question's words: a section that answers this kind of
    question (or a recommendation record, for what is recommended); the product form asked about;
    prescribing text before patient text; a label's clinical studies and pharmacology, which restate
    doses as they were studied, below its prescribing sections unless the question asks about them; a
    table row whose band (weight, renal function, age) holds the value the question gives."""
    section = c.hit.chunk.section
    if inline := DRUG_FACTS_HEADING.match(c.text):
        section = f"{section} > {inline.group(0)}"
    # a recommendation record answers a question asking what is recommended, wherever it is filed
    answers = any(SECTIONS[i].search(section) for i in query.intents if i in SECTIONS) or (
        c.kind == "recommendation" and "recommendation" in query.intents)
    prior = cfg.section_bonus if answers else 0.0
    if query.subjects and c.hit.doc.doc_id in query.subjects and c.hit.doc.doc_id not in query.preferred:
        prior -= cfg.formulation_penalty
    if not query.patient and PATIENT_TEXT.search(section):
        prior -= cfg.patient_penalty
    if "pharmacology" not in query.intents and SECTIONS["pharmacology"].search(section):
        prior -= cfg.study_penalty
    for v in query.values:
        inside = band_contains(c.text, v, (c.head or None) if c.kind == "row" else None)
        if inside is None and c.kind == "row":
            inside = row_key(c.text, v)  # a row keyed by one value ('25%'), not a band
        if inside is not None:
            prior += cfg.band_bonus if inside else -cfg.band_bonus
            break
    return prior


def _context(c: Candidate) -> str:
    """What is embedded for a candidate (rag.units.context)."""
    return context(c.hit.doc.title, c.hit.chunk.section, Unit(c.text, c.position, c.kind, c.head, c.piece))


def rerank(hits: list[Hit], scored: list[Candidate], query: Query, cfg: AnswerConfig = DEFAULT) -> list[Hit]:
    """Order the passages read (`hits`: rag.qa.QA._ranked gives the first passages_read fused) by their best
    unit (with subject_bonus when it is about what the question names: `about`), plus w_fusion times their
    fused score relative to the best.
    """
    named = named_prefixes(query)
    best: dict[str, float] = {}
    for c in scored:
        value = c.score + (cfg.subject_bonus if about(c, query, named) else 0.0)
        best[c.hit.chunk.chunk_id] = max(best.get(c.hit.chunk.chunk_id, -1.0), value)
    head = list(hits)
    top = max((h.score for h in head), default=0.0) or 1.0

    def score(h: Hit) -> float:
        return best.get(h.chunk.chunk_id, -1.0) + cfg.w_fusion * h.score / top

    ordered = sorted(head, key=lambda h: (-score(h), h.rank))
    # a question naming two documents (two labelled drugs, a label and the EML) is shown the best passage of each
    firsts = list({h.doc.doc_id: h for h in reversed(ordered) if h.doc.doc_id in query.subjects}.values())
    if len(firsts) > 1:
        firsts.sort(key=ordered.index)
        ordered = firsts + [h for h in ordered if h not in firsts]
    # fusion's own first passage stays in sight: re-ranking may lower it, never out of the first few
    if head and cfg.keep_fused and ordered.index(head[0]) >= cfg.keep_fused:
        ordered.remove(head[0])
        ordered.insert(cfg.keep_fused - 1, head[0])
    return [replace(h, rank=i + 1) for i, h in enumerate(ordered)]


def select(query: Query, scored: list[Candidate], idf: Idf, common: Callable[[str], bool] = lambda t: False,
           cfg: AnswerConfig = DEFAULT) -> tuple[list[Candidate], bool]:
    """The lead (the one unit that answers) and at most max_quotes - 1 supports, or abstain.

    A support is quoted only for what the lead lacks: question terms it does not cover (another part
    of a multi-part question, a population, a limit), or the amount an amount question asks for. Supports
    come within keep_margin of the lead's score, at most max_per_passage from one passage.
    When the question names what documents of the library are about (Query.subjects: 'warfarin',
    'Lipitor'), only units `about` it are quoted: a warfarin question is not answered from the
    ciprofloxacin label. A drug that no document is about is quoted from the units that name it.
    """
    named = named_prefixes(query)
    last = _last_positions(scored)

    def _step(a: Candidate, b: Candidate) -> int | None:
        """1 when b is the unit right after a in reading order, the next passage's first one included."""
        ka, kb = a.hit.chunk, b.hit.chunk
        if ka.chunk_id == kb.chunk_id:
            return b.position - a.position
        if (ka.doc_id, ka.cut, ka.ordinal + 1) == (kb.doc_id, kb.cut, kb.ordinal) and b.position == 0 \
                and a.position == last.get(ka.chunk_id):
            return 1
        return None

    if query.subjects:
        pool = [c for c in scored if about(c, query, named)]
    else:
        # a drug no document is about (a regimen in a guideline): the units that name it, where some do;
        # 'artemether-lumefantrine for a child of 20 kg' is not answered by the dihydroartemisinin dose
        pool = [c for c in scored if named and _mentions(c, named)] or scored
    if not pool:
        return [], True
    best = max(pool, key=lambda c: c.score)
    if best.score < cfg.abstain_below:
        return [], True
    # an amount question is led by a unit that states an amount, when one is about as good as the best
    close = [c for c in pool if c.score >= best.score - cfg.keep_margin]
    lead = max(close, key=lambda c: c.score + (cfg.amount_gain if query.asks_amount and doses(c.text) else 0.0))
    total = sum(idf(t) for t in query.terms) or 1.0
    chosen, covered = [lead], set(lead.terms)
    per_hit = {lead.hit.chunk.chunk_id: 1}
    asked = set(numbers_with_units(query.text))  # 'the 325 mg tablets' asked about is no new amount
    # a support adds what is asked and the drugs named, not the other words of the scenario before it
    # ('Our pharmacy moved from ...')
    asking = set(stems(asked_part(query.text))) | {t for t in query.terms if t[:PREFIX] in named}

    def gain(c: Candidate) -> float:
        """What a support adds: question terms the quotes lack, an amount they do not state (or the kind
        of number asked for: a duration for 'how long'), the statement right before or after the lead, or
        the first word of another document the question names."""
        share = sum(idf(t) for t in (c.terms - covered) & asking) / total
        stated = {a for x in chosen for a in _amounts(x.text)} | asked
        amounts = query.asks_number and bool(_amounts(c.text) - stated)
        # the kind of number asked for ('how long'), which no quote so far states
        kind = bool(query.counts) and counts(c.text, query.counts) and not any(counts(x.text, query.counts)
                                                                              for x in chosen)
        # the statement right after the lead often finishes it (the limit, the exception), the one right
        # before states its condition ('in patients with an eGFR between 30 and 60 ...') or what a lead
        # starting 'Thus, ...' or 'These patients ...' refers to
        beside = _step(lead, c) == 1 or _step(c, lead) == 1
        # another document the question names, by a unit that also says something the quotes do not
        # (another version of a quoted document, which a question about what changed compares, needs no new term)
        # (nor does one of two documents the question asks about: 'IR versus ER', 'the EML and the label')
        other = c.hit.doc.doc_id in query.subjects and c.hit.doc.doc_id not in {x.hit.doc.doc_id for x in chosen} \
            and (share > 0 or c.hit.doc.family in {x.hit.doc.family for x in chosen}
                 or (len(query.preferred) > 1 and c.hit.doc.doc_id in query.preferred))
        return (share + cfg.amount_gain * (amounts + kind) + (cfg.next_gain if beside else 0.0)
                + (cfg.other_subject_gain if other else 0.0))

    def orphaned(c: Candidate) -> bool:
        """A support that refers back ('These patients ...', 'Both meals ...') without the unit it refers to."""
        return bool(_ANAPHOR.match(c.text)) and not any(_step(x, c) == 1 for x in chosen)

    # supports come from the lead's document or another the question names, never a third that mentions it
    near = {lead.hit.doc.doc_id} | set(query.subjects)
    while len(chosen) < cfg.max_quotes:
        options = [c for c in pool if c.score >= lead.score - cfg.keep_margin and c not in chosen
                   and (not query.subjects or c.hit.doc.doc_id in near)
                   and per_hit.get(c.hit.chunk.chunk_id, 0) < cfg.max_per_passage and not _duplicate(c, chosen)
                   and not orphaned(c) and gain(c) >= cfg.support_gain]
        if not options:
            break
        pick = max(options, key=lambda c: c.score + gain(c))
        chosen.append(pick)
        covered |= pick.terms
        per_hit[pick.hit.chunk.chunk_id] = per_hit.get(pick.hit.chunk.chunk_id, 0) + 1
    numbered = [subject_cover(c, query, idf, common) for c in chosen if states_number(c.text)]
    if query.asks_number and max(numbered, default=-1.0) < cfg.number_cover:
        # a question asking for a number is answered only by a quoted number for what it asks about
        return [], True
    if query.counts and not any(counts(c.text, query.counts) for c in chosen):
        # 'how long' is answered by a duration, 'how many tablets' by a count of tablets: the best unit that
        # states one is quoted for that part of the question; where none does, the documents do not say
        stating = [c for c in pool if c.score >= cfg.abstain_below and counts(c.text, query.counts)
                   and (not query.subjects or c.hit.doc.doc_id in near) and not _duplicate(c, chosen)]
        if not stating:
            return [], True
        if len(chosen) < cfg.max_quotes:
            chosen.append(max(stating, key=lambda c: c.score))
    return [lead] + sorted(chosen[1:], key=lambda c: (c.hit.rank, c.position)), False


# A number of what it counts, one word between allowed, per kind a question asks for (rag.query.COUNTS).
_COUNT_NUMBER = r"(?:\d+(?:[.,]\d+)?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|a few|several))"
COUNTED = {kind: re.compile(rf"{_COUNT_NUMBER}[\s-]*(?:[a-z]+\s+)?{unit}\b", re.I) for kind, unit in (
    ("time", r"(?:seconds?|minutes?|hours?|hrs?|h|days?|weeks?|months?|years?)"),
    ("tablet", r"(?:tablets?|caplets?|capsules?|pills?)"))}


def counts(text: str, kind: str) -> bool:
    """Whether a text states a number of `kind` (COUNTED).

    Example: ('treat for 3 consecutive years', 'time') -> True; ('Tablet: 100 mg to 500 mg', 'tablet') -> False
    """
    return COUNTED[kind].search(text) is not None


def _amounts(text: str) -> set[str]:
    """The numbers a text states with their units, shares among them ('headache (13.2%, ...').

    Example: 'headache (13.2%, 25 986 participants)' -> {'13.2%'} (with what numbers_with_units finds)
    """
    return set(numbers_with_units(text)) | {m.replace(" ", "") for m in _SHARE.findall(text)}


_SHARE = re.compile(r"\d+(?:\.\d+)?\s?%")


def _last_positions(scored: list[Candidate]) -> dict[str, int]:
    """The position of each passage's last unit among the candidates (all of a read passage's units)."""
    last: dict[str, int] = {}
    for c in scored:
        last[c.hit.chunk.chunk_id] = max(c.position, last.get(c.hit.chunk.chunk_id, -1))
    return last


def states_number(text: str) -> bool:
    """Whether a text states a number (a dose, an INR range, a share, 'twice'), cross-references aside.

    Example: 'Maintain an INR of 2.0 to 3.0.' -> True; 'See Warnings (5.1) [see Use in (8.6)].' -> False
    """
    bare = _REFERENCE.sub(" ", text)
    return bool(re.search(r"\d", bare) or _NUMBER.search(bare))


def doses(text: str) -> list[str]:
    """The amounts a text gives (doses, volumes, tablet counts), not ages or durations; in a table row,
    also a cell of numbers under a column whose label names the unit ('Dose (mg) ...: 40 + 240').

    Example: 'Children 10 years and older: 10 mg once daily' -> ['10mg'];
        'Body weight (kg): 15 to < 25 · Dose (mg) of artemether + lumefantrine: 40 + 240' -> ['40+240mg']
    """
    found = [a for a in numbers_with_units(text) if _DOSE_UNIT.search(a.lstrip("0123456789.-"))]
    for pair in text.split(PAIR):
        label, sep, cell = pair.rpartition(LABEL)
        unit = _LABEL_UNIT.search(label) if sep else None
        if unit and _DOSE_UNIT.fullmatch(unit.group(1).lower()) and re.search(r"\d", cell):
            found.append(f"{cell.replace(' ', '')}{unit.group(1).lower()}")
    return found


# A column label's unit: 'Dose (mg) of artemether + lumefantrine', 'Volume (mL)'.
_LABEL_UNIT = re.compile(r"\((mg|mcg|µg|g|mL|ml|L|IU|units?|tablets?)\)")


def named_prefixes(query: Query) -> frozenset[str]:
    """PREFIX letters of every name (and drug synonym) of what the question names (Query.names).

    Example: a query naming 'atorvastatin' (asked as 'Lipitor') -> {'atorva', 'lipito', ...}
    """
    return frozenset(s[:PREFIX] for n in query.names for w in stems(n) for s in aliases_of(w))


def about(c: Candidate, query: Query, named: frozenset[str]) -> bool:
    """Whether a unit is about what the question names: it is in a document about it (Query.subjects),
    or it names it (a formulary's record of a drug, a guideline's sentence on it)."""
    return c.hit.doc.doc_id in query.subjects or _mentions(c, named)


def _mentions(c: Candidate, prefixes: AbstractSet[str]) -> bool:
    """Whether the candidate's sentence, table caption and header, section or title has a word
    starting with one of `prefixes` (PREFIX letters each)."""
    return any(w[:PREFIX] in prefixes for w in _context_words(c))


def _context_words(c: Candidate) -> frozenset[str]:
    """The stemmed words of a candidate's title, section, table head and text: what its terms and
    subject are looked for in (by the score, select and the amount check)."""
    return _stemmed(f"{c.hit.doc.title} {c.hit.chunk.section} {c.head} {c.text}")


def _combination(term: str) -> frozenset[str]:
    """The drugs of a combination the question writes with hyphens or slashes, which a passage names
    one by one ('Dose (mg) of artemether + lumefantrine'); empty for any other term.

    Example: 'artemether-lumefantrine' -> {'artemether', 'lumefantrine'}; 'contrast-enhanced' -> frozenset()
    """
    parts = re.split(r"[-/]", term)
    return frozenset(parts) if len(parts) > 1 and all(synonyms.canonical(p) for p in parts) else frozenset()


@lru_cache(maxsize=8192)
def _roots(words: frozenset[str]) -> frozenset[str]:
    """Snowball stems of some words ('titrated', 'titration' -> 'titrat'; 'started' -> 'start')."""
    return frozenset(stemmer().stemWords(sorted(words)))


@lru_cache(maxsize=8192)
def _stemmed(text: str) -> frozenset[str]:
    # one answer looks at a candidate's words several times; ~100 candidates per question
    return frozenset(stems(text))


def subject_cover(c: Candidate, query: Query, idf: Idf, common: Callable[[str], bool]) -> float:
    """The idf share of the question's technical terms (not everyday English) that the unit names, in its
    text, table caption and header, section or title (by PREFIX letters, a drug synonym, or an
    abbreviation its document defines: Candidate.terms).

    Example: 'What dose of oxamniquine ...' -> 0.0 for 'Patients with neurocysticercosis are treated with
    praziquantel 50 mg/kg per day' in a schistosomiasis guideline: it does not state an amount for
    oxamniquine.
    """
    subject = technical_terms(query, common)
    if not subject:
        return 1.0
    words = {w[:PREFIX] for w in _context_words(c)}
    named = [t for t in subject if t in c.terms or any(s[:PREFIX] in words for s in aliases_of(t))]
    return sum(idf(t) for t in named) / (sum(idf(t) for t in subject) or 1.0)


# The asker's own verb ('what should I prescribe', 'can we give'): what they do, not what they ask about.
_ASKER_VERB = re.compile(r"\b(?:should|can|could|may|must|do|does|did|would|will|shall)\s+"
                         r"(?:i|we|you|they|he|she|one)\s+([a-z]+)", re.I)


def technical_terms(query: Query, common: Callable[[str], bool]) -> set[str]:
    """The question's words that name things: four letters or more, not numbers, not everyday English.

    Example: 'What dose of oxamniquine should be used when praziquantel fails?' ->
        {'oxamniquine', 'praziquantel'} (with a `common` that knows 'dose', 'used', 'fails')
    """
    acts = set(stems(" ".join(_ASKER_VERB.findall(query.text))))
    return {p for t in query.terms for p in t.split("-") if len(p) >= 4 and not p.isdigit()
            and not STOP_TERMS.match(p) and not _everyday(p, common) and p not in acts}


def _everyday(term: str, common: Callable[[str], bool]) -> bool:
    # the plural fold of rag.text.stems turns 'versus' into 'versu': ask about the word as written too;
    # an inflected everyday verb is split into word pieces ('reconciling'): ask about its base form
    if common(term) or common(term + "s"):
        return True
    for end in ("ing", "ed"):
        base = term[: -len(end)]
        if term.endswith(end) and len(base) >= 3:
            forms = {base, base + "e"} | ({base[:-1]} if base[-1] == base[-2] else set())
            return any(common(f) for f in forms)
    return False


@lru_cache(maxsize=4096)
def aliases_of(term: str) -> frozenset[str]:
    """A term and the stems of its drug synonyms, or of the one-word professional or lay words for it.

    Example: 'paracetamol' -> {'paracetamol', 'acetaminophen', 'tylenol', ...}; 'kidney' -> {'kidney', 'renal'}
    """
    clinical = {n for m in synonyms.clinical_mentions(term) if m.text.lower() == term for n in m.names
                if " " not in n}
    # one-word names only: the words of a longer one are a salt, a maker or another drug ('ceftriaxone
    # sodium', 'ceftriaxon hexal', 'amoxicillin + clavulanic acid' for Augmentin), and a passage naming
    # only those is not about the drug
    names = [stems(n) for n in synonyms.names_of(term) | clinical]
    return frozenset({term} | {n[0] for n in names if len(n) == 1})


def unsupported_terms(query: Query, hits: list[Hit], df: Callable[[str], int], library_size: int,
                      common: Callable[[str], bool] = lambda t: False, cfg: AnswerConfig = DEFAULT) -> list[str]:
    """Question terms that the top passages never mention and the whole library (almost) never does.

    Such a term names something the documents do not cover ('Lyme disease' in an amoxicillin label),
    so the question is not answered by them. Common English words (`common`: one word piece in the
    embedder's vocabulary), inflected verbs and numbers are left out: they are paraphrased too often
    to be evidence of a missing subject. A drug named by a synonym the library uses is covered. Only the
    sentences that ask are read (asked_part): a vignette's scenario ('a hiker who takes metformin...')
    describes the patient in words no label uses.
    Example: ('amoxicillin for Lyme disease', [...]) -> ['lyme'] when no passage mentions Lyme
    """
    seen: set[str] = set()
    for h in hits[:cfg.subject_passages]:
        seen |= set(stems(f"{h.doc.title} {h.chunk.section} {h.chunk.text}"))
    prefixes = {w[:PREFIX] for w in seen}
    rare = max(1.0, cfg.rare_share * library_size)
    out = []
    for term in {p for t in stems(asked_part(query.text)) for p in t.split("-")}:
        if len(term) < 4 or term.isdigit() or term.endswith(VERB_ENDINGS) or STOP_TERMS.match(term) \
                or _everyday(term, common):
            continue
        # 'reassess' is 'assess' done again, 'nonadherence' the lack of 'adherence': the same subject
        names = aliases_of(term) | {term[len(p):] for p in DERIVATIONAL if term.startswith(p)
                                    and len(term) - len(p) >= 5}
        if names & seen or {_start(n) for n in names} & prefixes:
            continue
        if all(df(_start(n)) <= rare for n in names):
            out.append(term)
    return sorted(out)


def _start(name: str) -> str:
    """The letters a name is matched by: its first PREFIX, but all of a hyphenated combination's
    ('amoxicillin-clavulanate', 'amoxicillin/clavulanate' are not any amoxicillin)."""
    return name if re.search(r"[-/]", name[PREFIX:]) else name[:PREFIX]


def asked_part(question: str) -> str:
    """The sentences of a question that ask (end with '?'), without the scenario before them; the whole
    question when it is one sentence or none asks.

    Example: 'A hiker takes metformin. Is there an interaction?' -> 'Is there an interaction?'
    """
    sentences = split_sentences(question)
    asking = [x for x in sentences if x.rstrip().endswith("?")]
    return " ".join(asking) if len(sentences) > 1 and asking else question


def _duplicate(c: Candidate, chosen: list[Candidate]) -> bool:
    """Same text, one inside the other, or near-identical wording with the same numbers (guidelines repeat
    paragraphs)."""
    s, words = squash(c.text), set(c.text.lower().split())
    for o in chosen:
        other = set(o.text.lower().split())
        if s in squash(o.text) or squash(o.text) in s:
            return True
        # near-identical wording with other numbers is another statement: a dose an earlier version changed
        if len(words & other) >= 0.7 * len(words | other) and _amounts(c.text) == _amounts(o.text):
            return True
    return False
