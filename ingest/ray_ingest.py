"""Bulk ingestion on Ray (`guideline-qa ingest PATH --ray [ADDRESS]`, extra `cluster`).

Extraction runs as Ray Data CPU tasks and embedding in Ray Data actors holding one embedder each (one GPU
each where the cluster has GPUs); this process, the driver, does what a local ingest does around them
through the same code (ingest.pipeline.ingest_with): the ingest lock, sorting files by their bytes,
chunking (3.7 of 610 s on ../shared/corpus: not worth shipping), the embedding-cache lookups, caching
the vectors the actors return, and one publish. Known limits: workers read each PDF from its path, so a
cluster needs the files (and the model folder) at the same paths on every node; extraction ends before
embedding starts, because which texts need a vector is only known once the cache has been asked.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ingest.extract import BadDocument, PdfBytes
from ingest.pipeline import (
    EMBED_SLICE,
    IngestReport,
    Progress,
    _prepare_one,
    _Prepared,
    _timed_extract,
    ingest_with,
    missing_texts,
    parser_failure,
)
from rag.config import Settings
from rag.embedder import Embedder
from rag.errors import ConfigError, GQAError
from rag.store import Store
from rag.types import sha256_hex

log = logging.getLogger(__name__)

NEEDS_EXTRA = "pip install 'guideline-qa[cluster]'"
# Texts per embedding call on a GPU: a few forward passes each, so the device is not left waiting on
# Ray between calls (on a CPU, EMBED_SLICE as a local ingest: a crash keeps the slices already cached).
GPU_SLICE = 1024


def require_ray() -> Any:
    """The ray module with Ray Data, or a ConfigError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - pyarrow and pandas come with ray[data], not with ray alone
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray Data, which is not installed ({exc}): {NEEDS_EXTRA}") from None
    return ray


def check_address(address: str | None) -> str | None:
    """None (start a local Ray), 'auto', 'ray://host:port' or 'host:port'; anything else is a ConfigError.

    Example: 'ray://head:10001' -> 'ray://head:10001'; 'guidelines/' -> ConfigError
    """
    if not address or address == "auto" or address.startswith("ray://"):
        return address or None
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        return address
    raise ConfigError(f"--ray {address!r} is not a Ray address: give auto, ray://HOST:10001 or HOST:6379, or "
                      "nothing to start a local Ray (put --ray after the paths)")


def ray_env(settings: Settings) -> dict:
    """The runtime_env of every task and actor: offline, polite OpenMP threads, the model folder."""
    return {"env_vars": {"HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE",
                         "TOKENIZERS_PARALLELISM": "false", "GQA_EMBED_MODEL": settings.embed_model}}


@contextmanager
def connected(address: str | None, settings: Settings) -> Iterator[Any]:
    """Ray, connected to `address` (None: a new local Ray, shut down afterwards); a Ray this process
    has already started (ray.init) is used as it is and left running."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=check_address(address), include_dashboard=False, runtime_env=ray_env(settings),
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        why = " ".join(str(exc).split())[:200]
        raise GQAError(f"--ray {address or ''}: cannot start or reach Ray ({why}); check the address, or "
                       "give none to start a local Ray") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _quiet(ray: Any) -> Iterator[None]:
    """Ray Data without its progress bars (the command draws its own) and the warning that says so,
    and unless this module logs at INFO (`-v`), without its INFO lines on every dataset; all restored
    afterwards."""
    ctx = ray.data.DataContext.get_current()
    loggers = {logging.getLogger("ray.data"): logging.INFO if log.isEnabledFor(logging.INFO) else logging.WARNING,
               logging.getLogger("ray.data._internal.progress"): logging.ERROR}
    bars, levels = ctx.enable_progress_bars, {lg: lg.level for lg in loggers}
    ctx.enable_progress_bars = False
    for lg, level in loggers.items():
        lg.setLevel(level)
    try:
        yield
    finally:
        ctx.enable_progress_bars = bars
        for lg, level in levels.items():
            lg.setLevel(level)


def ingest_on_ray(
    paths: list[str | Path], settings: Settings, embedder: Embedder, address: str | None = None,
    family: str | None = None, version: str | None = None, on_progress: Progress | None = None,
) -> IngestReport:
    """Ingest PDFs with extraction and embedding on Ray, then publish once from here, as `ingest` does.

    `embedder` (this process's) only counts tokens for chunking and names the vectors; the actors
    build their own from `settings` and must have the same id (the same model folder on every node).
    """
    started = time.perf_counter()
    with connected(address, settings) as ray:
        ray_s = time.perf_counter() - started

        def prepare(todo: Any, store: Store, report: IngestReport, tick: Progress) -> list[_Prepared]:
            return _prepare_on_ray(ray, todo, settings, embedder, store, (family, version), report, tick)

        with _quiet(ray):
            report = ingest_with(prepare, paths, settings, embedder, family, on_progress)
        resources = ray.cluster_resources()
    report.seconds["ray_start"] = ray_s
    report.ray = {"address": address or "local", "cpus": resources.get("CPU", 0), "gpus": resources.get("GPU", 0),
                  **report.ray}
    return report


def _prepare_on_ray(
    ray: Any, todo: Any, settings: Settings, embedder: Embedder, store: Store,
    labels: tuple[str | None, str | None], report: IngestReport, tick: Progress,
) -> list[_Prepared]:
    """Extract the new files on Ray, chunk them here in the order given, and get their missing vectors."""
    new: list[tuple[Path, str]] = [(path, sha) for path, sha, _ in todo]  # the bytes are read again by a worker
    prepared: list[_Prepared] = []
    pages_done = 0
    rows, report.seconds["extract_wall"] = _extractions(ray, new, settings)
    report.ray["extract_workers"] = sorted({r["worker"] for r in rows if r is not None})
    for (path, sha), row in zip(new, rows, strict=True):
        if row is None:  # its block failed past Ray's retries without a row
            report.failed.append({"file": str(path), "error": f"{path.name}: no result from the Ray extraction "
                                                              "task; ingest it again"})
            continue
        if row["error"]:
            if row["debug"]:
                log.debug("extracting %s failed:\n%s", path, row["debug"])
            report.failed.append({"file": str(path), "error": row["error"]})
            continue
        ext, secs = pickle.loads(row["extracted"])  # noqa: S301 - made by this code in a worker of this ingest
        report.seconds["extract"] = report.seconds.get("extract", 0.0) + secs
        pages_done += len(ext.pages)
        tick("pages", pages_done, 0)
        item = _prepare_one(path, sha, ext, settings, embedder, labels[0], labels[1], report)
        if item is not None:
            prepared.append(item)
            tick("chunks", report.chunks, 0)
    t = time.perf_counter()
    pending: dict[str, str] = {}
    for item in prepared:  # in order: a text shared with an earlier document is embedded once
        pending.update(missing_texts(item, embedder, store, report, pending))
    report.ray.update(_embed_on_ray(ray, pending, settings, embedder, store, tick))
    report.seconds["embed"] = time.perf_counter() - t
    return prepared


def _extractions(ray: Any, new: list[tuple[Path, str]], settings: Settings) -> tuple[list[dict | None], float]:
    """One result row per file of `new`, in its order ('extracted', pickled, or 'error', one line), and
    the stage's wall seconds."""
    if not new:
        return [], 0.0
    t = time.perf_counter()
    items = [{"i": i, "path": str(p.resolve()), "sha": sha} for i, (p, sha) in enumerate(new)]
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        extract_batch, batch_size=1, fn_kwargs={"ocr": settings.ocr}, num_cpus=1, runtime_env=ray_env(settings))
    rows: list[dict | None] = [None] * len(new)
    for row in _rows(ds, "extraction"):
        rows[int(row["i"])] = row
    log.info("extracted %d files on Ray in %.1f s", len(new), time.perf_counter() - t)
    return rows, time.perf_counter() - t


def extract_batch(batch: dict[str, np.ndarray], ocr: bool = False) -> dict[str, list]:
    """In a Ray worker: extract the files of a batch (read from their paths), each outcome in one row.

    A file that fails is a row with the same one-line error as a local ingest (the traceback in `debug`);
    a file whose bytes changed since they were hashed fails too, never stored under the wrong hash.
    """
    out: dict[str, list] = {"i": [], "extracted": [], "error": [], "debug": [], "worker": []}
    for i, raw_path, sha in zip(batch["i"], batch["path"], batch["sha"], strict=True):
        path, extracted, error, debug = Path(str(raw_path)), b"", "", ""
        try:
            data = path.read_bytes()
            if sha256_hex(data) != sha:
                error = f"{path.name}: changed while it was being ingested; ingest it again"
            else:
                extracted = pickle.dumps(_timed_extract(PdfBytes(path.name, data), ocr))
        except BadDocument as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot be read by a Ray worker ({exc.strerror}): every node needs the files at the same path"
        except Exception as exc:  # noqa: BLE001 - a crash in one file must not stop the others
            error, debug = parser_failure(path, exc), traceback.format_exc()
        for key, value in (("i", int(i)), ("extracted", extracted), ("error", error), ("debug", debug),
                           ("worker", worker_name())):
            out[key].append(value)
    return out


def worker_name() -> str:
    """host:pid of this process, to report where a stage ran.

    Example: 'node-3:4711'
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def _embed_on_ray(ray: Any, pending: dict[str, str], settings: Settings, embedder: Embedder, store: Store,
                  tick: Progress) -> dict:
    """Embed `pending` (hash -> text) in Ray actors and put every vector in the store's cache; returns
    where it ran (for the report)."""
    if not pending:
        return {"embed_workers": []}
    gpus = int(ray.cluster_resources().get("GPU", 0)) if settings.device in ("auto", "cuda") else 0
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = GPU_SLICE if gpus else EMBED_SLICE
    # sorted by length so that each call holds similar lengths and its batches carry little padding
    todo = sorted(pending.items(), key=lambda hx: len(hx[1]))
    actors = max(1, min(gpus or cpus, -(-len(todo) // size)))  # no actor without a slice to embed
    ds = ray.data.from_items([{"hash": h, "text": x} for h, x in todo]).map_batches(
        EmbedActor, batch_size=size, compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0, num_cpus=1,
        fn_constructor_args=(_worker_settings(settings), embedder.id, "cuda" if gpus else "cpu"),
        runtime_env=ray_env(settings))
    done, workers = 0, set[str]()
    for batch in _batches(ds, size):
        store.cache_vectors(dict(zip([str(h) for h in batch["hash"]], batch["vector"], strict=True)), embedder.id)
        done += len(batch["hash"])
        workers.update(str(w) for w in batch["worker"])
        tick("vectors", done, len(todo))
    log.info("embedded %d texts in %d Ray actor(s) on %s", len(todo), actors, "GPU" if gpus else "CPU")
    return {"embed_workers": sorted(workers), "embed_actors": actors, "embed_device": "cuda" if gpus else "cpu"}


def _worker_settings(settings: Settings) -> Settings:
    """The settings without their secrets (the fields kept out of repr), which would travel to every node.

    Example: Settings(api_tokens='admin:s3:admin') -> Settings(api_tokens='')
    """
    secrets: dict[str, Any] = {f.name: "" for f in fields(settings) if not f.repr}
    return replace(settings, **secrets)


class EmbedActor:
    """A Ray Data actor holding one embedder for all the batches it is given."""

    def __init__(self, settings: Settings, expected_id: str, device: str) -> None:
        """Load the embedder (torch only: ingest batches never take the short-input ONNX path, and every
        actor exporting it into one folder at once would race); one torch thread per CPU actor."""
        from rag.embedder import from_settings

        if device == "cpu":
            import torch

            torch.set_num_threads(1)  # one CPU per actor: more threads would wait on each other
        self.embedder = from_settings(replace(settings, device=device), query_runtime="torch")
        if self.embedder.id != expected_id:
            raise ConfigError(f"a Ray worker's embedder is {self.embedder.id}, the driver's {expected_id}: "
                              f"every node needs the same model folder at {settings.embed_model}")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Vectors for the batch's texts, beside their hashes."""
        vectors = self.embedder.embed([str(x) for x in batch["text"]])
        return {"hash": batch["hash"], "vector": vectors, "worker": [worker_name()] * len(vectors)}


def _rows(ds: Any, stage: str) -> Iterator[dict]:
    try:
        yield from ds.iter_rows()
    except GQAError:
        raise
    except Exception as exc:
        raise _stage_error(stage, exc) from None


def _batches(ds: Any, size: int) -> Iterator[dict]:
    try:
        yield from ds.iter_batches(batch_size=size, batch_format="numpy")
    except Exception as exc:
        raise _stage_error("embedding", exc) from None


def _stage_error(stage: str, exc: BaseException) -> GQAError:
    """One line for a Ray stage that failed as a whole (a worker died, an actor could not start):
    nothing is published, and the vectors cached so far are kept for the next run."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    lines = [x.strip() for x in str(cause).splitlines() if x.strip()]
    why = lines[-1][:240] if lines else type(cause).__name__
    log.debug("the Ray %s stage failed", stage, exc_info=exc)
    return GQAError(f"the Ray {stage} stage failed ({why}); nothing was published: fix it and ingest again")
