"""What a publish writes into a generation folder for readers besides the FAISS index, so that no reader
rebuilds anything: the document of every row (filters become array lookups) and the lexical tables
(rag.lexical: BM25, term statistics, abbreviations).

A publish that only appends rows (new documents) or changes statuses extends the previous generation's
tables, reading and tokenizing only the new rows; one that re-cuts rows tables them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag import lexical

ROWS = "rows.npy"  # int32 per row: the position of its document in DOCS
DOCS = "row_docs.json"


def write(folder: Path, chunk_ids: list[str], rows_of: Callable[[list[str]], list[tuple[str, str]]],
          previous: Path | None = None, previous_ids: list[str] | None = None) -> None:
    """Write the row and lexical tables of a generation being written into `folder`.

    rows_of(chunk_ids) -> (doc_id, row text: rag.lexical.row_text) per chunk, read from the store.
    """
    appended = bool(previous is not None and previous_ids and chunk_ids[:len(previous_ids)] == previous_ids)
    old = _rows(previous, len(previous_ids or ())) if appended else None
    start = len(previous_ids or ()) if old is not None else 0
    new_rows = rows_of(chunk_ids[start:]) if start < len(chunk_ids) else []
    memo = {chunk_ids[start + i]: r for i, r in enumerate(new_rows)}
    order: list[str] = list(old[1]) if old is not None else []
    more = extend_rows(order, [d for d, _ in new_rows])
    row_doc = np.concatenate([old[0], more]) if old is not None else more
    np.save(folder / ROWS, row_doc.astype(np.int32))
    (folder / DOCS).write_text(json.dumps(order))

    def rows_memo(ids: list[str]) -> list[tuple[str, str]]:  # the lexical tables need the same new rows
        missing = [c for c in ids if c not in memo]
        if missing:
            memo.update(zip(missing, rows_of(missing), strict=True))
        return [memo[c] for c in ids]

    lexical.write_tables(folder, chunk_ids, rows_memo, previous if appended else None,
                         previous_ids if appended else None)


def extend_rows(order: list[str], doc_ids: list[str]) -> np.ndarray:
    """The position in `order` of each new row's document; documents not yet in it are appended (in place).

    Example: (['a'], ['b', 'a', 'b']) -> [1, 0, 1], order ['a', 'b']
    """
    code = {d: i for i, d in enumerate(order)}
    more = np.fromiter((code.setdefault(d, len(code)) for d in doc_ids), np.int32, len(doc_ids))
    order += [d for d, i in sorted(code.items(), key=lambda kv: kv[1])[len(order):]]
    return more


def read_rows(generation: Path, n_rows: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """(document position per row, memory-mapped; the documents in that order), or None when the folder
    has no row tables (a generation written before them)."""
    return _rows(generation, n_rows)


def _rows(generation: Path | None, n_rows: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
    if generation is None:
        return None
    try:
        row_doc = np.load(generation / ROWS, mmap_mode="r")
        order = tuple(json.loads((generation / DOCS).read_text()))
    except (OSError, ValueError):
        return None
    return (row_doc, order) if len(row_doc) == n_rows else None
