"""The synthetic library bench/scale.py publishes: documents, pages and chunks over bench/synthetic.py's
corpus, shaped like the product's own records so that the product's publish path takes them as they are.

- A document holds CHUNKS_PER_DOC consecutive rows of the corpus sorted by topic and leaf, so that a
  document is about one subject (its passages are neighbours, as a real guideline's are).
- Families are what the product makes of them (ingest.versions): the versions of one document. Most
  have one document, every 4th family two and every 12th three; the older versions are superseded by
  the newest, exactly as ingest.versions.resolve decides, so a real ingest into the home changes no
  status. About a quarter of the documents are superseded, so every question filters them out.
- Chunk texts are the corpus's token streams cut into capitalised sentences of SENTENCE_WORDS words
  (the real corpus has ~3 quotable units per chunk); BM25 reads the same words.
- The embedding cache holds each chunk's vector and, for each of its quotable units (rag.units), the
  chunk's vector too: the answerer reads unit vectors from the cache, as after a real ingest, instead of
  embedding them at question time (a stand-in: a real unit's vector differs from its chunk's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import synthetic

from ingest.naming import derive_family
from rag.types import Chunk, Document, Page, sha256_hex
from rag.units import context, units

CHUNKS_PER_DOC = 50
CHUNKS_PER_PAGE = 5  # the real corpus: 5,358 chunks on 1,061 pages
EXTRA_PAGES = 30  # the document `--measure` publishes (the "30-page document")
SENTENCE_WORDS = 27
DOC_TYPES = ("label", "guideline", "formulary", "guidance")
SECTIONS = ("Indications", "Dosage and administration", "Contraindications", "Warnings", "Adverse reactions")
SPARE_ROWS = 3000  # rows kept for the extra documents (texts and vectors near the corpus's leaves)

# What one new document is, as Store.publish takes it: (document, pages, chunks, content hashes, source).
NewDoc = tuple[Document, list[Page], list[Chunk], list[str], str]


@dataclass(frozen=True)
class DocPlan:
    """One document to publish: its record and the corpus rows (in index order) that are its chunks."""

    doc: Document
    rows: np.ndarray


def family_sizes(g: int) -> int:
    """Versions in family g. Example: [family_sizes(g) for g in range(5)] -> [3, 1, 1, 1, 2]"""
    return 1 + (g % 4 == 0) + (g % 12 == 0)


def punctuate(text: str, words: int = SENTENCE_WORDS) -> str:
    """Generated words as sentences (capitalised, full stop), which rag.units quotes one by one.

    Example: punctuate('baba babi babo', 2) -> 'Baba babi. Babo.'
    """
    w = text.split()
    parts = [" ".join(w[i:i + words]) for i in range(0, len(w), words)]
    return " ".join(p[:1].upper() + p[1:] + "." for p in parts)


def topical_order(corpus: synthetic.Corpus) -> np.ndarray:
    """Corpus rows sorted by topic node, then leaf: consecutive rows are about one subject."""
    return np.lexsort((corpus.leaf, corpus.topic))


def plan_documents(corpus: synthetic.Corpus, seed: int = 0) -> list[DocPlan]:
    """Documents over every row of the corpus (index row i is the i-th of topical_order)."""
    n = corpus.n
    plans: list[DocPlan] = []
    start, g, now = 0, 0, datetime.now(UTC).isoformat(timespec="seconds")
    while start < n:
        size = family_sizes(g)
        family: list[Document] = []
        title = _title(corpus, start, f"guideline {g}")
        for v in range(size):
            if start >= n:
                break
            rows = np.arange(start, min(n, start + CHUNKS_PER_DOC))
            start += len(rows)
            name = f"scale_g{g:07d}_{2016 + 3 * v}.pdf"
            sha = sha256_hex(f"scale-bench {seed} {name}")
            doc = Document(doc_id=sha[:16], sha256=sha, file_name=name, title=title, family=derive_family(name),
                           version=str(2016 + 3 * v), doc_type=DOC_TYPES[g % len(DOC_TYPES)],
                           pages=-(-len(rows) // CHUNKS_PER_PAGE), chunks=len(rows), ingested_at=now)
            family.append(doc)
            plans.append(DocPlan(doc, rows))
        newest = family[-1]
        for i in range(len(plans) - len(family), len(plans) - 1):  # older versions: superseded by the newest
            old = plans[i].doc
            plans[i] = DocPlan(replace(old, status="superseded", superseded_by=newest.file_name), plans[i].rows)
        g += 1
    return plans


def _title(corpus: synthetic.Corpus, row: int, tail: str) -> str:
    """Two topic words of a row's node and a tail: the document's subject, as a title names it."""
    words = corpus.vocab[corpus.topic_words[corpus.topic[row], :2]]
    return f"{words[0].capitalize()} {words[1]} {tail}"


def materialize(plan: DocPlan, texts: list[str], vectors: np.ndarray, embedder_id: str
                ) -> tuple[NewDoc, dict[str, np.ndarray]]:
    """The document's pages, chunks and content hashes (as ingest makes them), and the vectors to cache
    by content hash: each chunk's and each of its quotable units' (the chunk's own vector).

    `texts` and `vectors` are the plan's rows, in order.
    """
    doc = plan.doc
    chunks: list[Chunk] = []
    for i, text in enumerate(texts):
        page = i // CHUNKS_PER_PAGE + 1
        section = f"{i // 10 + 1} {SECTIONS[(i // 10) % len(SECTIONS)]}"
        chunks.append(Chunk(chunk_id=sha256_hex(f"{doc.doc_id}:{i}", 16), doc_id=doc.doc_id, ordinal=i, page=page,
                            page_end=page, page_label=str(page), section=section, text=text))
    pages = [Page(p + 1, str(p + 1), "\n".join(c.text for c in chunks if c.page == p + 1))
             for p in range(-(-len(chunks) // CHUNKS_PER_PAGE))]
    hashes = [sha256_hex(f"{embedder_id}\n{c.embed_text(doc.title)}", 32) for c in chunks]
    cache: dict[str, np.ndarray] = {}
    for c, h, v in zip(chunks, hashes, vectors, strict=True):
        cache[h] = v
        for u in units(c):
            cache.setdefault(sha256_hex(f"{embedder_id}\n{context(doc.title, c.section, u)}", 32), v)
    return (doc, pages, chunks, hashes, f"synthetic:{doc.file_name}"), cache


def batches(plans: list[DocPlan], count: int) -> Iterator[list[DocPlan]]:
    """`count` runs of whole documents of about equal row counts (the first builds, the others append).

    Example: 4 documents of 50 rows in 2 batches -> [[d0, d1], [d2, d3]]
    """
    total = sum(len(p.rows) for p in plans)
    part: list[DocPlan] = []
    done, cut = 0, 1
    for p in plans:
        part.append(p)
        done += len(p.rows)
        if done >= total * cut / count:
            yield part
            part, cut = [], cut + 1
    if part:
        yield part


def spare_pool(corpus: synthetic.Corpus, rng: np.random.Generator, size: int = SPARE_ROWS
               ) -> tuple[list[str], np.ndarray]:
    """Texts and vectors for the documents `--measure` publishes: rows like the corpus's, sorted by
    subject, each vector drawn anew around its row's leaf."""
    rows = rng.integers(0, corpus.n, size)
    rows = rows[np.lexsort((corpus.leaf[rows], corpus.topic[rows]))]
    vecs = corpus.tree.sample(corpus.leaf[rows], rng)
    return [punctuate(corpus.text(int(r))) for r in rows], vecs.astype(np.float32)


def extra_document(k: int, texts: list[str], vectors: np.ndarray, embedder_id: str, seed: int = 0
                   ) -> tuple[NewDoc, dict[str, np.ndarray]]:
    """The k-th extra document (EXTRA_PAGES pages): a window of the spare pool, a family of its own."""
    n = EXTRA_PAGES * CHUNKS_PER_PAGE
    start = (k * n) % max(1, len(texts) - n)
    name = f"scale_extra_k{k:04d}_2025.pdf"
    sha = sha256_hex(f"scale-bench extra {seed} {name}")
    first = texts[start].split()
    title = f"{first[0].capitalize()} {first[1]} extra guideline {k}"
    doc = Document(doc_id=sha[:16], sha256=sha, file_name=name, title=title, family=derive_family(name),
                   version="2025", doc_type="guideline", pages=EXTRA_PAGES, chunks=n,
                   ingested_at=datetime.now(UTC).isoformat(timespec="seconds"))
    return materialize(DocPlan(doc, np.arange(n)), texts[start:start + n], vectors[start:start + n], embedder_id)


def save_pool(folder: Path, texts: list[str], vectors: np.ndarray) -> None:
    """Write the spare pool next to the home's bench notes."""
    np.save(folder / "spare_vectors.npy", vectors)
    (folder / "spare_texts.txt").write_text("\n".join(texts))


def load_pool(folder: Path) -> tuple[list[str], np.ndarray]:
    """The spare pool `save_pool` wrote."""
    return (folder / "spare_texts.txt").read_text().split("\n"), np.load(folder / "spare_vectors.npy")
