"""A short-input fast path: the same sentence-transformers model exported to ONNX and run by ONNX Runtime.

Why: one question through torch costs about 24 ms on this 2-core CPU, most of it per-operator
overhead rather than arithmetic (MiniLM-L6 on 20 word pieces is about 0.4 GFLOP). ONNX Runtime runs
the same graph in about 7-12 ms (bench/RESULTS.md). For batches of ~200-word-piece chunks torch's lanes
are faster, so ingestion stays on torch; only short inputs (questions, a few sentences) come here.

The export is made once per model, torch and onnxruntime version, cached on disk with torch's vector
of a probe text, and checked against that vector every time it is loaded: a mismatch means torch is
used, never a different vector. Texts are tokenized by the model's own tokenizer.json (the `tokenizers`
library, as sentence-transformers' fast tokenizer does), so a reader whose export is cached never
imports torch or sentence-transformers (about 6 s of a reader's start on 2 cores).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import process_alive

log = logging.getLogger(__name__)

PROBE = "Warfarin 5 mg once daily; check the INR after 3 to 5 days."
MAX_DIFF = 1e-5  # per coordinate of a unit vector: float32 reordering gives about 2e-7


def available() -> bool:
    """True when onnxruntime and onnx (needed by torch's exporter) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_cache_dir() -> Path:
    """Where exported models are kept when no folder is configured: the user's cache directory."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("guideline-qa", appauthor=False)) / "onnx"


def folder_shape(model_dir: Path) -> tuple[int, int] | None:
    """(dimension, max_seq_length) of a Transformer -> mean Pooling (-> Normalize) model, read from its
    folder's own config files (modules.json, the pooling config, sentence_bert_config.json); None for any
    other shape or a file missing (then the model is loaded to find out)."""
    import json

    try:
        mods = json.loads((model_dir / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in mods]
        if types not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((model_dir / mods[1]["path"] / "config.json").read_text())
        seq = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    others = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
              "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
    if not pooling.get("pooling_mode_mean_tokens") or any(pooling.get(k) for k in others):
        return None
    return int(pooling["word_embedding_dimension"]), int(seq)


def export_path(model_dir: Path, cache_dir: Path | None) -> Path:
    """Where the export of this model for the installed onnxruntime and torch is kept."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    return (cache_dir or default_cache_dir()) / f"{_fingerprint(model_dir, version('onnxruntime'), torch_version)}.onnx"


def reference_path(export: Path) -> Path:
    """torch's vector of PROBE, saved beside an export when it was made."""
    return export.with_suffix(".probe.npy")


def tokenizer(model_dir: Path, max_length: int):
    """The model's fast tokenizer (tokenizer.json), truncating and padding as sentence-transformers does."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    pad = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=pad if pad is not None else 0, pad_token="[PAD]")
    return tok


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an ONNX export of a sentence-transformers model.

    `st_model` is needed only to make the export when none is cached; `reference` is torch's vector of
    PROBE (saved beside the export) that the export must reproduce.
    """

    def __init__(self, model_dir: Path, cache_dir: Path | None, threads: int, max_length: int,
                 st_model: Any = None) -> None:
        import onnxruntime as ort

        self.tokenizer = tokenizer(model_dir, max_length)
        self._lock = threading.Lock()  # the tokenizer's padding state is per call; one batch at a time
        path = export_path(model_dir, cache_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        # Sleep rather than spin between operators, as OMP_WAIT_POLICY=PASSIVE does for torch: on a busy
        # 2-core host spinning threads took p95 from 20 to 36 ms (bench/RESULTS.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        remove_stale(path)
        if not path.exists():
            if st_model is None:
                raise FileNotFoundError(f"no ONNX export cached at {path}")
            _export(st_model, path)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cached file (disk full, killed copy): export it again, once
            if st_model is None:
                raise
            log.warning("cached ONNX export %s cannot be loaded (%s); exporting it again", path, exc)
            _export(st_model, path)
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.path = path

    def reference(self) -> np.ndarray | None:
        """torch's PROBE vector saved with this export, or None (an export made before they were saved)."""
        try:
            return np.load(reference_path(self.path))
        except (OSError, ValueError):
            return None

    def save_reference(self, vector: np.ndarray) -> None:
        """Keep torch's PROBE vector beside the export (written atomically)."""
        tmp = reference_path(self.path).with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, np.asarray(vector, dtype=np.float32))
        os.replace(tmp, reference_path(self.path))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, tokenised exactly as sentence-transformers does."""
        feats = features(self.tokenizer, texts, self._lock)
        (out,) = self.session.run(None, {k: feats[k] for k in self.inputs})
        return np.ascontiguousarray(out, dtype=np.float32)


_FEATURES = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def features(tok: Any, texts: list[str], lock: threading.Lock | None = None) -> dict[str, np.ndarray]:
    """int64 model inputs for texts (stripped, as sentence-transformers strips them), padded to the longest."""
    with lock or contextlib.nullcontext():
        encodings = tok.encode_batch([t.strip() for t in texts])
    return {k: np.array([getattr(e, attr) for e in encodings], dtype=np.int64) for k, attr in _FEATURES.items()}


def _fingerprint(model_dir: Path, ort_version: str, torch_version: str) -> str:
    """A file name for one export: the model folder's files (name, size, mtime) and both library versions.

    Example: ('.../all-MiniLM-L6-v2', '1.32.0', '2.13.0+cpu') -> 'all-MiniLM-L6-v2-3f2a9c0d1e4b'
    """
    h = hashlib.sha256(f"{ort_version}|{torch_version}".encode())
    for f in sorted(model_dir.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(model_dir)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{model_dir.name}-{h.hexdigest()[:12]}"


# An export's file name (see _fingerprint) and a temporary one (see _export: pid after the stem).
EXPORT_NAME = re.compile(r".+-[0-9a-f]{12}\.onnx")
REFERENCE_NAME = re.compile(r".+-[0-9a-f]{12}\.probe\.npy")
TEMP_NAME = re.compile(r"\..+-[0-9a-f]{12}\.(\d+)\..*\.onnx\.tmp|tmp.*\.onnx\.tmp")
ABANDONED_S = 600  # a temporary file without a pid (older releases) this old is no export in progress


def remove_stale(current: Path) -> list[Path]:
    """Delete, beside `current`, exports made for another model or library version and abandoned temporaries.

    A temporary file is abandoned when the process named in it is dead (a SIGKILL mid-export) or, without
    a pid, when it is older than ABANDONED_S. Returns what was removed.
    """
    removed: list[Path] = []
    folder = current.parent
    if not folder.is_dir():
        return removed
    for f in folder.iterdir():
        temp = TEMP_NAME.fullmatch(f.name)
        reference = REFERENCE_NAME.fullmatch(f.name)
        if f in (current, reference_path(current)) or not (temp or reference or EXPORT_NAME.fullmatch(f.name)):
            continue
        if temp and temp.group(1) and process_alive(int(temp.group(1))):
            continue
        if temp and not temp.group(1) and time.time() - f.stat().st_mtime < ABANDONED_S:
            continue
        f.unlink(missing_ok=True)
        removed.append(f)
    if removed:
        log.info("removed %d stale ONNX export file(s) from %s", len(removed), folder)
    return removed


def _export(st_model: Any, path: Path) -> None:
    """Export transformer + mean pooling + normalisation to one ONNX graph, atomically (tmp + rename)."""
    import torch

    prep = getattr(st_model, "preprocess", None) or st_model.tokenize  # tokenize: before v6
    example = {k: v for k, v in prep([PROBE, PROBE + " " + PROBE]).items() if hasattr(v, "numpy")}
    inputs = list(example)

    class Pooled(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            feats = dict(zip(inputs, args, strict=True))
            hidden = self.transformer(**feats, return_dict=True).last_hidden_state
            mask = feats["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    auto_model = st_model[0].auto_model
    was_training = auto_model.training
    auto_model.eval()
    axes = {k: {0: "batch", 1: "tokens"} for k in inputs} | {"embedding": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}.", suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
            torch.onnx.export(Pooled(auto_model), tuple(example[k] for k in inputs), tmp, dynamo=False,
                              input_names=inputs, output_names=["embedding"], dynamic_axes=axes,
                              opset_version=17)
        os.replace(tmp, path)
    finally:
        auto_model.train(was_training)
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("exported %s", path)
