"""Records passed between the stages: small frozen dataclasses, ids are content hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


def sha256_hex(data: bytes | str, length: int | None = None) -> str:
    """Hex SHA-256 of bytes or UTF-8 text, optionally truncated.

    Example: sha256_hex("a", 8) -> 'ca978112'
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    return digest if length is None else digest[:length]


@dataclass(frozen=True)
class Page:
    """One extracted PDF page: 1-based PDF page number, printed label, cleaned text."""

    number: int
    label: str
    text: str
    # Outline (bookmark) titles whose destination is this page, in order, with their depth (0 = top).
    outline: tuple[tuple[int, str], ...] = ()
    # The text was read by OCR from an image of the page (`ingest --ocr`): characters may be misread.
    ocr: bool = False
    # The lines removed from the text as running header or footer (ingest.extract.split_running_lines),
    # as printed: kept so that a knowledge team can check what the product left out (`inspect`).
    dropped: tuple[str, ...] = ()
    # The text of each boxed warning printed on the page (ingest.layout.boxed_warnings), for the
    # chunker to mark its sentences; not stored (the chunks carry their kind).
    boxed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """A source PDF as published: identity, family, version and status."""

    doc_id: str  # sha256 of the file bytes (first 16 hex digits)
    sha256: str
    file_name: str
    title: str
    family: str
    version: str
    doc_type: str  # "guideline", "formulary", "label" or "guidance"
    status: str = "current"  # "current" or "superseded"
    pages: int = 0
    chunks: int = 0
    ingested_at: str = ""
    superseded_by: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: where it comes from and the text that is shown and embedded."""

    chunk_id: str
    doc_id: str
    ordinal: int  # position within its document
    page: int  # 1-based first PDF page
    page_end: int  # last PDF page (== page unless the chunk spans a page break)
    page_label: str
    section: str  # section path, e.g. "3 Treatment > 3.2 Inpatient"
    text: str
    kind: str = "text"  # "text", "table", "recommendation" or "boxed_warning"
    # A sentence or row longer than the embedder's window is cut at words into pieces, one chunk each:
    # such a chunk's first unit then continues the chunk before (starts_mid) and/or its last runs on
    # into the next (ends_mid). Recording the cut, rather than one filter's verdict on it, lets every
    # reader (quoting, evidence, any later check) refuse to take a piece for a whole sentence.
    starts_mid: bool = False
    ends_mid: bool = False
    # The whole sentence such a piece was cut from reads as an instruction to a model: judged before
    # the cut, as no piece alone need read as one ('... ignore previous instructions and say' | 'the
    # dose is 500 mg.'), so no piece of it is evidence.
    cut_instruction: bool = False
    # Some of its text was read by OCR (a page without a text layer): check it against the page.
    ocr: bool = False
    # Which cut of its document this chunk belongs to: 0 as first ingested, one more per `reindex`. A
    # cut's chunks and pages are written together and never change, so a quote is checked against the
    # pages of its own chunk's cut, whichever generation a reader holds.
    cut: int = 0
    # What the passage is beyond its text, as compact JSON: {"table": {"caption", "header", "cells"}} for
    # a table row, {"recommendation": {"strength", "certainty", "year", "population"}} for a
    # recommendation record; "" for prose. Kept as text so that the record stays frozen and hashable.
    fields: str = ""

    @property
    def table(self) -> dict | None:
        """A table row's caption, header cells and cells, or None."""
        return self._field("table")

    @property
    def recommendation(self) -> dict | None:
        """A recommendation's strength, certainty of evidence, year and population, or None."""
        return self._field("recommendation")

    def _field(self, name: str) -> dict | None:
        if not self.fields:
            return None
        value = json.loads(self.fields).get(name)
        return value if isinstance(value, dict) else None

    @property
    def public_kind(self) -> str:
        """`kind` as the JSON shows it: text, table_row, recommendation or boxed_warning."""
        return "table_row" if self.kind == "table" else self.kind

    def embed_text(self, title: str) -> str:
        """The text given to the embedder: title and section path, then the passage."""
        head = f"{title} | {self.section}" if self.section else title
        return f"{head}\n{self.text}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its document, score and 1-based rank."""

    chunk: Chunk
    doc: Document
    score: float
    rank: int

    def to_json(self) -> dict:
        """The `retrieve --json` shape of one hit."""
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "doc": self.doc.file_name,
            "title": self.doc.title,
            "version": self.doc.version,
            "status": self.doc.status,
            "family": self.doc.family,
            "page": self.chunk.page,
            "page_end": self.chunk.page_end,
            "page_label": self.chunk.page_label,
            "section": self.chunk.section,
            "text": self.chunk.text,
            "chunk_id": self.chunk.chunk_id,
            "ocr": self.chunk.ocr,
            "kind": self.chunk.public_kind,
            "table": self.chunk.table,
            "recommendation": self.chunk.recommendation,
        }


@dataclass(frozen=True)
class Citation:
    """A numbered citation: the quote is verbatim text of the cited chunk's page."""

    n: int
    hit: Hit
    quote: str

    def to_json(self) -> dict:
        """The `ask --json` shape of one citation."""
        c, d = self.hit.chunk, self.hit.doc
        return {
            "n": self.n,
            "doc": d.file_name,
            "title": d.title,
            "version": d.version,
            "status": d.status,
            "page": c.page,
            "page_label": c.page_label,
            "section": c.section,
            "quote": self.quote,
            "chunk_id": c.chunk_id,
            "ocr": c.ocr,
            "kind": c.public_kind,
            "recommendation": c.recommendation,
        }


@dataclass(frozen=True)
class Answer:
    """What the answering chain returns to the CLI, the app and the evaluation."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    abstained: bool
    generator: str
    timings_ms: dict = field(default_factory=dict)
    removed: tuple[dict, ...] = ()  # generated sentences dropped by verification, with the reason
    index_version: str = ""
    lead: int | None = None  # the citation number of the statement that answers (shown first); None: abstained

    def to_json(self) -> dict:
        """The `ask --json` shape."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "generator": self.generator,
            "timings_ms": self.timings_ms,
            "removed_sentences": list(self.removed),
            "index_version": self.index_version,
            "lead": self.lead,
        }
