"""The answering stage's constants, in one frozen record passed down the chain.

Every value is chosen by cross-validation over the five folds of ../shared/eval/dev.jsonl
(bench/cv.py), and bench/RESULTS.md reports the figures of the folds it was not chosen on. A value
that only one question needs does not belong here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AnswerConfig:
    """What the re-ranker and the extractive answerer weigh, and where they stop."""

    # Passages read after fusion: the evidence is in fusion's top 20 for 98% of acceptance questions.
    passages_read: int = 20
    # Top passages (after re-ranking) in which a question's technical terms must appear.
    subject_passages: int = 5
    # Units (sentences, rows) embedded per question when their vectors were not made at ingest.
    max_embedded: int = 24
    # Evidence score = w_cosine * similarity to the question + w_terms * idf share of its terms.
    w_cosine: float = 0.55
    w_terms: float = 0.3
    # Below this best evidence score the documents are taken not to answer.
    abstain_below: float = 0.40
    # Supports come within this margin of the lead's score.
    keep_margin: float = 0.2
    # Quotes in one answer (the lead and its supports), and from one passage.
    max_quotes: int = 3
    max_per_passage: int = 2
    # A support must add at least this idf share of the question's terms that the quotes so far lack...
    support_gain: float = 0.05
    # ...where stating an amount the quotes lack counts as this much (and leads an amount question),
    amount_gain: float = 0.3
    # ...and being the statement right before or after the lead (its condition, its limit) as this much.
    next_gain: float = 0.1
    # ...and coming from another document the question names (a multi-document question) as this much.
    other_subject_gain: float = 0.2
    # A question asking for a number is answered only when a quoted number names this idf share of its
    # technical terms (rag.extractive.subject_cover).
    number_cover: float = 0.3
    # A technical term absent from the top passages and in at most this share of the library's chunks
    # names a subject the documents do not cover.
    rare_share: float = 0.02
    # A label for a form the question does not name (extended-release...) gives way to the plain product.
    formulation_penalty: float = 0.03
    # A unit in a section that answers this kind of question (dosage for a dose question...).
    section_bonus: float = 0.1
    # A passage of a document about what the question names (rag.query.Query.subjects).
    subject_bonus: float = 0.05
    # Patient text (Medication Guide...) against a question that is not a patient's.
    patient_penalty: float = 0.03
    # Clinical studies and pharmacology against a question that does not ask about them.
    study_penalty: float = 0.05
    # A table row or sentence whose band (weight, renal function, age) holds the question's value, or not.
    band_bonus: float = 0.05
    # The fused score's part in the passage order after re-ranking (0: by best unit alone).
    w_fusion: float = 0.1
    # Fusion's first passage is shown at this rank or better after re-ranking (0: no such floor).
    keep_fused: int = 3

    def with_values(self, **values: float) -> AnswerConfig:
        """A copy with some values changed; a name that is not a field is an error (a typo in a grid).

        Example: AnswerConfig().with_values(keep_margin=0.1).keep_margin -> 0.1
        """
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown AnswerConfig field(s): {', '.join(unknown)}")
        cast = {k: (int(v) if known[k] == "int" else float(v)) for k, v in values.items()}
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **cast})


DEFAULT = AnswerConfig()
