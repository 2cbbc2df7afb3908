"""FAISS index generations on disk: written once, published atomically, loaded (onto the GPU if any)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import IndexError_

log = logging.getLogger(__name__)

# First field of every manifest; bump when the on-disk layout changes.
FORMAT_VERSION = "gqa-index v1"
# Above this many vectors the approximate index (HNSW) is used. Exact search scans every vector: on
# 2 cores 16-27 ms at 100,000 (over the whole 15 ms retrieval budget), half that at 50,000; HNSW
# answers in 1-2 ms with recall@10 0.99 at 100k and 0.97 at 1M (bench/RESULTS.md, '## Query').
EXACT_LIMIT = 50_000


def _faiss():
    import faiss  # imported lazily: the command line starts fast for `docs` and `--help`

    return faiss


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    faiss = _faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get else 0


def new_index(dim: int, n_expected: int = 0, train: np.ndarray | None = None):
    """An inner-product index: exact (flat) up to EXACT_LIMIT vectors, else HNSW.

    Vectors are unit length, so inner product is cosine similarity. HNSW needs no training and met
    the 1M targets on 2 cores; IVF (bench/query.py's comparison) builds 7x faster and runs on a GPU,
    but searches 5-10x slower at the same recall. `train` is unused (kept for an index type needing it).
    """
    faiss = _faiss()
    if n_expected <= EXACT_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = 128
    return index


def to_device(index):
    """Move a CPU index to the GPU when faiss sees one; the CPU copy stays the one written to disk."""
    if gpu_count() <= 0:
        return index
    faiss = _faiss()
    try:
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, index)
        gpu._gqa_res = res  # keep the resources alive as long as the index
        log.info("faiss index on GPU (%d vectors)", index.ntotal)
        return gpu
    except Exception as exc:  # e.g. an index type without a GPU implementation (HNSW)
        log.warning("faiss GPU transfer failed (%s); searching on the CPU", exc)
        return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products: (scores, row ids), -1 where fewer than k rows exist."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    k = max(1, min(k, int(index.ntotal) or 1))
    return index.search(q, k)


def search_allowed(index, queries: np.ndarray, allowed: np.ndarray, k: int) -> list[tuple[int, float]] | None:
    """The best k rows among `allowed` (bool per row) for one query, or None where the index takes no
    ID selector (GPU indexes): the caller over-fetches instead."""
    faiss = _faiss()
    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(1, -1)
    bits = np.packbits(allowed, bitorder="little")  # faiss reads it while searching: keep it referenced
    sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    hnsw = getattr(index, "hnsw", None)
    params = faiss.SearchParametersHNSW(sel=sel, efSearch=hnsw.efSearch) if hnsw is not None \
        else faiss.SearchParameters(sel=sel)
    try:
        scores, rows = index.search(q, max(1, min(k, int(allowed.sum()))), params=params)
    except RuntimeError:  # e.g. a GPU index: selectors are not supported there
        return None
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]


@dataclass(frozen=True)
class GenerationFiles:
    """What one published generation holds on disk."""

    path: Path
    manifest: dict
    chunk_ids: list[str]


def generations_dir(home: Path) -> Path:
    """Folder holding one sub-folder per published generation."""
    return home / "index"


def write_generation(home: Path, gen_id: str, index, chunk_ids: list[str], manifest: dict,
                     more: Callable[[Path], None] | None = None) -> Path:
    """Write a complete generation folder under a temporary name, fsync it, then rename it in place.
    `more(folder)` writes further files into it first (rag.tables).

    The rename is atomic; the generation becomes visible to readers only when the database's
    `current_generation` points at it (see Store.publish).
    """
    faiss = _faiss()
    root = generations_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    final = root / gen_id
    if final.exists():  # the same content was built before (e.g. a publish that died before commit)
        return final
    tmp = root / f".tmp-{gen_id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    faiss.write_index(index, str(tmp / "index.faiss"))
    (tmp / "chunk_ids.json").write_text(json.dumps(chunk_ids))
    (tmp / "manifest.json").write_text(json.dumps({"format": FORMAT_VERSION, **manifest}, indent=1))
    if more is not None:
        more(tmp)
    for f in tmp.rglob("*"):
        _fsync(f)
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(root)
    return final


def read_generation(home: Path, gen_id: str, embedder_id: str, mapped: bool = False) -> tuple[GenerationFiles, object]:
    """Load a generation's manifest, row ids and CPU index, checking format and embedder.

    `mapped`: the index's vectors stay in the file, memory-mapped (read-only: for readers). Loading
    1,000,000 vectors then takes 0.05 s instead of 1.6 s, and the pages a search touches are page cache,
    shared by every reader process of the host and dropped with the generation (bench/RESULTS.md).
    """
    faiss = _faiss()
    path = generations_dir(home) / gen_id
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        chunk_ids = json.loads((path / "chunk_ids.json").read_text())
    except (OSError, ValueError) as exc:
        raise IndexError_(f"published index {path} is unreadable ({exc}); re-run `guideline-qa ingest`") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexError_(
            f"index {path} has format {manifest.get('format')!r}, this program reads {FORMAT_VERSION!r}; "
            "re-ingest the documents into a new GQA_HOME"
        )
    if manifest.get("embedder_id") != embedder_id:
        raise IndexError_(
            f"index {path} was built with embedder {manifest.get('embedder_id')!r} but the configured one is "
            f"{embedder_id!r}; set GQA_EMBED_MODEL back or re-ingest into a new GQA_HOME"
        )
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mapped else 0
    index = faiss.read_index(str(path / "index.faiss"), flag)
    if index.ntotal != len(chunk_ids):
        raise IndexError_(f"index {path} holds {index.ntotal} vectors for {len(chunk_ids)} chunks; re-ingest")
    return GenerationFiles(path, manifest, chunk_ids), index


def collect_garbage(home: Path, keep: list[str]) -> None:
    """Remove generation folders not in `keep` and temporary folders of dead writers.

    A killed ingest leaves `.tmp-<gen>-<pid>` (a generation being written), `<gen>` (written, never
    published) or a half-removed old generation; all but a live process's temporary folder go.
    """
    root = generations_dir(home)
    if not root.exists():
        return
    for child in root.iterdir():
        if child.name in keep:
            continue
        if child.name.startswith(".tmp-"):
            pid = child.name.rsplit("-", 1)[-1]
            if pid.isdigit() and process_alive(int(pid)) and int(pid) != os.getpid():
                continue
        shutil.rmtree(child, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (the writer of a temporary file or folder).

    Example: process_alive(os.getpid()) -> True
    """
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, run by another user
        return True
    except OSError:
        return False
    return True


def _fsync(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
