"""The default answerer: picks the source sentences and table rows that answer the question, cites each.

It adds no clinical words of its own; every sentence of the answer is a verbatim quote of a passage.
Its constants are an AnswerConfig (rag/answer_config.py), chosen by cross-validation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from rag.answer_config import DEFAULT, AnswerConfig
from rag.embedder import Embedder
from rag.text import numbers_with_units, squash, stems
from rag.types import Hit
from rag.units import Unit, context, units

# Terms are compared by their first letters, so 'titrated' meets 'titration'.
PREFIX = 6
VERB_ENDINGS = ("ed", "ing", "en", "ly")
STOP_TERMS = re.compile(r"^(year|month|week|day|old|first|second|third)$")
AMOUNT_QUESTION = re.compile(
    r"\b(what|which)\b[^?]*\b(dose|dosage|doses|regimen|amount)\b|\bhow (much|many)\b|\bmaximum\b", re.I)

# A label for one formulation (extended-release, injection...) answers questions about that formulation;
# a question that names none is about the plain product, so such a label's sentences give way to it.
FORMULATION = re.compile(
    r"\b(?:extended|delayed|modified|sustained|controlled|prolonged)[- ]release\b|\b(?:XR|ER|SR|CR|XL|ODT)\b"
    r"|\bchewable\b|\borally disintegrating\b|\binject(?:ion|able)\b|\btransdermal\b|\bophthalmic\b"
    r"|\btopical\b|\binhal(?:ation|er)\b|\bintravenous\b|\bsuppositor(?:y|ies)\b", re.I)
# Labels and guidelines file each kind of statement under a standard section (FDA labels: DOSAGE AND
# ADMINISTRATION, CONTRAINDICATIONS...). A question of one of these kinds gives the sentences of the
# matching sections this bonus: (what the question asks, the sections that answer it).
SECTION_INTENTS = tuple((re.compile(q, re.I), re.compile(s, re.I)) for q, s in (
    (r"\b(?:dos(?:e|es|ing|age)|start(?:ed|ing)?|titrat\w*|regimen|how (?:much|often)|taken?|administ\w*|missed)\b",
     r"dosage|dosing|administration|directions|how to (?:use|take)"),
    (r"\bcontraindicat\w*", r"contraindication"),
    (r"\b(?:side effects?|adverse)\b", r"adverse reactions|side effects"),
    (r"\binteract\w*", r"interaction"),
    (r"\bpregnan\w*|\bbreast-?feed\w*|\blactat\w*", r"pregnan|lactation|specific populations"),
    (r"\boverdos\w*", r"overdos"),
    (r"\bstor(?:e|ed|age)\b|\breconstitut\w*", r"storage|how supplied|preparation|reconstitut"),
))
Idf = Callable[[str], float]


@dataclass(frozen=True)
class Candidate:
    """One quotable unit (sentence, list item, table row, recommendation) of a passage, with its score."""

    hit: Hit
    text: str
    position: int
    score: float = 0.0
    terms: frozenset[str] = frozenset()
    head: str = ""  # a table row's caption and header rows
    piece: str = ""  # rag.units.Unit.piece: "end" / "start" for a piece of a sentence cut at words
    kind: str = "sentence"  # rag.units.Unit.kind

    def shown(self) -> str:
        """The text as the answer shows it: a piece of a sentence says so ('…the dose is 10 mg.').

        Example: Candidate(hit, 'the dose is 10 mg.', 0, piece='end').shown() -> '…the dose is 10 mg.'
        """
        return f"{'…' if self.piece == 'end' else ''}{self.text}{'…' if self.piece == 'start' else ''}"


def candidates(hits: list[Hit], cfg: AnswerConfig = DEFAULT) -> list[Candidate]:
    """The quotable units (rag.units) of the passages read, in reading order."""
    return [Candidate(hit, u.text, u.position, head=u.head, piece=u.piece, kind=u.kind)
            for hit in hits[:cfg.passages_read] for u in units(hit.chunk)]


def score_candidates(question: str, cands: list[Candidate], embedder: Embedder, idf: Idf,
                     query_vec: np.ndarray | None = None, cfg: AnswerConfig = DEFAULT,
                     made: Callable[[list[str]], dict[str, np.ndarray]] | None = None) -> list[Candidate]:
    """Evidence score = w_cosine * similarity + w_terms * idf-weighted share of question terms present
    (in the sentence, its table caption and header, its section or its document title),
    plus section_bonus in a section that answers this kind of question, less formulation_penalty in a
    label for a formulation the question does not name.

    Embedding is the cost of answering (about 25 ms a sentence on 2 cores), so only the max_embedded
    candidates with the best term share and prior (then passage rank) are embedded and returned.
    """
    if not cands:
        return []
    qterms = set(stems(question))
    total = sum(idf(t) for t in qterms) or 1.0
    asked = formulations(question)
    sections = answering_sections(question)
    lexical = []
    for c in cands:
        present = qterms & _context_words(c)
        share = sum(idf(t) for t in present) / total
        prior = cfg.section_bonus if any(sec.search(c.hit.chunk.section) for sec in sections) else 0.0
        if formulations(c.hit.doc.title) - asked:
            prior -= cfg.formulation_penalty
        lexical.append(replace(c, score=cfg.w_terms * share + prior, terms=frozenset(present)))
    ctx = [_context(c) for c in lexical]
    vectors = made(ctx) if made else {}
    fresh = [i for i in range(len(lexical)) if ctx[i] not in vectors]
    fresh.sort(key=lambda i: (-lexical[i].score, lexical[i].hit.rank, lexical[i].position))
    fresh = fresh[:cfg.max_embedded]
    if fresh:
        vectors = {**vectors, **dict(zip([ctx[i] for i in fresh], embedder.embed([ctx[i] for i in fresh]),
                                         strict=True))}
    q = embedder.embed([question])[0] if query_vec is None else query_vec.reshape(-1)
    return [replace(c, score=c.score + cfg.w_cosine * float(vectors[x] @ q))
            for c, x in zip(lexical, ctx, strict=True) if x in vectors]


def answering_sections(question: str) -> list[re.Pattern]:
    """Patterns of the section titles that answer this kind of question (SECTION_INTENTS).

    Example: 'How is metformin started and titrated?' -> [re.compile('dosage|dosing|administration|...')]
    """
    return [sec for asks, sec in SECTION_INTENTS if asks.search(question)]


def formulations(text: str) -> set[str]:
    """The dosage-form qualifiers a text names, normalised.

    Example: 'METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS' -> {'extended-release'}
    """
    return {m.group(0).lower().replace(" ", "-") for m in FORMULATION.finditer(text)}


def _context(c: Candidate) -> str:
    """What is embedded for a candidate (rag.units.context)."""
    return context(c.hit.doc.title, c.hit.chunk.section, Unit(c.text, c.position, c.kind, c.head, c.piece))


def rerank(hits: list[Hit], scored: list[Candidate], subject: AbstractSet[str] = frozenset(),
           cfg: AnswerConfig = DEFAULT) -> list[Hit]:
    """Order the read passages by their best sentence (then the fused rank); the rest keep their order.

    `subject`: named_subjects of the question; sentences that name it get cfg.subject_bonus.
    """
    best: dict[str, float] = {}
    for c in scored:
        score = c.score + (cfg.subject_bonus if subject and _mentions(c, subject) else 0.0)
        best[c.hit.chunk.chunk_id] = max(best.get(c.hit.chunk.chunk_id, -1.0), score)
    head = sorted(hits[:cfg.passages_read], key=lambda h: (-best.get(h.chunk.chunk_id, -1.0), h.rank))
    ordered = head + list(hits[cfg.passages_read:])
    return [replace(h, rank=i + 1) for i, h in enumerate(ordered)]


def select(question: str, scored: list[Candidate], idf: Idf,
           common: Callable[[str], bool] = lambda t: False,
           titles: Iterable[str] = (), cfg: AnswerConfig = DEFAULT) -> tuple[list[Candidate], bool]:
    """The sentences to answer with, in reading order, and whether to abstain instead.

    Greedy: the best sentence first, then those close to it, preferring ones that cover question
    terms not yet covered (multi-part questions), with at most cfg.max_per_passage from one passage.
    When the question names what a document of the library is about (a word of one of `titles`, such
    as 'warfarin'), only sentences that name it too (in their text, table caption, section or
    title) are quoted: a warfarin question is not answered from the ciprofloxacin label.
    """
    if not scored:
        return [], True
    best = max(scored, key=lambda c: c.score)
    if best.score < cfg.abstain_below:
        return [], True
    specific = {t for t in set(stems(question)) if idf(t) >= cfg.specific_idf}
    named = named_subjects(question, titles, common)
    pool = [c for c in scored if c.score >= best.score - cfg.keep_margin and (not named or _mentions(c, named))]
    chosen: list[Candidate] = []
    covered: set[str] = set()
    per_hit: dict[str, int] = {}
    while pool and len(chosen) < cfg.max_quotes:
        pick = max(pool, key=lambda c: c.score + 0.1 * len((c.terms & specific) - covered))
        pool.remove(pick)
        key = pick.hit.chunk.chunk_id
        if per_hit.get(key, 0) >= cfg.max_per_passage or _duplicate(pick, chosen):
            continue
        per_hit[key] = per_hit.get(key, 0) + 1
        chosen.append(pick)
        covered |= pick.terms
    if asks_for_amount(question) and not any(
            numbers_with_units(c.text) and _names_subject(c, question, idf, common, cfg.rare_share) for c in chosen):
        # a dose question is answered only by a quoted amount for its subject (the question's rarest term)
        return [], True
    chosen.sort(key=lambda c: (c.hit.rank, c.position))
    return chosen, False


def named_subjects(question: str, titles: Iterable[str], common: Callable[[str], bool]) -> set[str]:
    """The question's technical words (by PREFIX) that name the subject of a document in the library.

    Example: ('What if a warfarin dose is missed?', ['WARFARIN SODIUM TABLETS', 'CIPROFLOXACIN']) -> {'warfar'}
    """
    in_titles = _title_prefixes(tuple(titles))
    return {t[:PREFIX] for t in stems(question)
            if len(t) >= 4 and not t.isdigit() and not common(t) and t[:PREFIX] in in_titles}


@lru_cache(maxsize=8)
def _title_prefixes(titles: tuple[str, ...]) -> frozenset[str]:
    """PREFIX letters of every stemmed title word; the titles change only with a new snapshot."""
    return frozenset(w[:PREFIX] for t in titles for w in stems(t))


def _mentions(c: Candidate, prefixes: AbstractSet[str]) -> bool:
    """Whether the candidate's sentence, table caption and header, section or title has a word
    starting with one of `prefixes` (PREFIX letters each)."""
    return any(w[:PREFIX] in prefixes for w in _context_words(c))


def _context_words(c: Candidate) -> frozenset[str]:
    """The stemmed words of a candidate's title, section, table head and sentence: what its terms and
    subject are looked for in (by the score, the re-ranking, select and the dose check)."""
    return _stemmed(f"{c.hit.doc.title} {c.hit.chunk.section} {c.head} {c.text}")


@lru_cache(maxsize=4096)
def _stemmed(text: str) -> frozenset[str]:
    # one answer looks at a candidate's words up to four times; ~70 candidates per question
    return frozenset(stems(text))


def _names_subject(c: Candidate, question: str, idf: Idf, common: Callable[[str], bool], rare_share: float) -> bool:
    """Whether the candidate states its amount for the question's subject.

    The subject is the question's technical terms (not common English words) that are rare in the
    library (the RARE_SHARE of unsupported_terms); the candidate's sentence, with its table caption and
    header, section and title, must name one of them. A question with no such term passes.
    Example: 'What dose of oxamniquine ...' is not answered by 'Patients with neurocysticercosis are
    treated with praziquantel 50 mg/kg per day': the amount is not stated for oxamniquine.
    """
    rare_idf = math.log(1 + 1 / rare_share)
    subject = {p for t in stems(question) for p in t.split("-")
               if len(p) >= 4 and not p.isdigit() and not STOP_TERMS.match(p) and not common(p) and idf(p) >= rare_idf}
    if not subject:
        return True
    return _mentions(c, {t[:PREFIX] for t in subject})  # by prefix, as in unsupported_terms


def asks_for_amount(question: str) -> bool:
    """True when the question asks for a dose, amount or regimen (so the answer must state one).

    Example: 'What dose of vitamin K is recommended?' -> True
    """
    return bool(AMOUNT_QUESTION.search(question))


def unsupported_terms(question: str, hits: list[Hit], df: Callable[[str], int], library_size: int,
                      common: Callable[[str], bool] = lambda t: False, cfg: AnswerConfig = DEFAULT) -> list[str]:
    """Question terms that the top passages never mention and the whole library (almost) never does.

    Such a term names something the documents do not cover ('Lyme disease' in an amoxicillin label),
    so the question is not answered by them. Common English words (`common`: one word piece in the
    embedder's vocabulary), inflected verbs and numbers are left out: they are paraphrased too often
    to be evidence of a missing subject.
    Example: ('amoxicillin for Lyme disease', [...]) -> ['lyme'] when no passage mentions Lyme
    """
    seen: set[str] = set()
    for h in hits[:cfg.subject_passages]:
        seen |= set(stems(f"{h.doc.title} {h.chunk.section} {h.chunk.text}"))
    prefixes = {w[:PREFIX] for w in seen}
    rare = max(1.0, cfg.rare_share * library_size)
    out = []
    for term in {p for t in stems(question) for p in t.split("-")}:
        if len(term) < 4 or term.isdigit() or term.endswith(VERB_ENDINGS) or STOP_TERMS.match(term) \
                or common(term):
            continue
        if term in seen or term[:PREFIX] in prefixes:
            continue
        if df(term[:PREFIX]) <= rare:
            out.append(term)
    return sorted(out)


def _duplicate(c: Candidate, chosen: list[Candidate]) -> bool:
    """Same text, one inside the other, or near-identical wording (guidelines repeat paragraphs)."""
    s, words = squash(c.text), set(c.text.lower().split())
    for o in chosen:
        other = set(o.text.lower().split())
        if s in squash(o.text) or squash(o.text) in s or len(words & other) >= 0.7 * len(words | other):
            return True
    return False
