"""A short-input fast path: the same sentence-transformers model exported to ONNX and run by ONNX Runtime.

Why: one question through torch costs about 24 ms on this 2-core CPU, most of it per-operator
overhead rather than arithmetic (MiniLM-L6 on 20 word pieces is about 0.4 GFLOP). ONNX Runtime runs
the same graph in about 7-12 ms (bench/RESULTS.md). For batches of ~200-word-piece chunks torch's lanes
are faster, so ingestion stays on torch; only short inputs (questions, a few sentences) come here.

The export is made once per model, torch and onnxruntime version, cached on disk, and checked against
torch on a probe text every time it is loaded: a mismatch means torch is used, never a different vector.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
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


def mean_pooled(st_model: Any) -> bool:
    """True when the model is Transformer -> mean Pooling (-> Normalize), the one shape exported here."""
    from sentence_transformers.models import Normalize, Pooling, Transformer

    mods = list(st_model)
    if len(mods) not in (2, 3) or not isinstance(mods[0], Transformer) or not isinstance(mods[1], Pooling):
        return False
    if len(mods) == 3 and not isinstance(mods[2], Normalize):
        return False
    return getattr(mods[1], "pooling_mode", None) == "mean" or (
        bool(getattr(mods[1], "pooling_mode_mean_tokens", False))
        and not any(getattr(mods[1], f"pooling_mode_{m}", False)
                    for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                              "lasttoken"))
    )


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an ONNX export of a sentence-transformers model."""

    def __init__(self, st_model: Any, model_dir: Path, cache_dir: Path | None, threads: int) -> None:
        import onnxruntime as ort
        import torch

        self.st_model = st_model
        self.inputs = list(_features(st_model, [PROBE]))
        name = _fingerprint(model_dir, ort.__version__, torch.__version__)
        path = (cache_dir or default_cache_dir()) / f"{name}.onnx"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        # Sleep rather than spin between operators, as OMP_WAIT_POLICY=PASSIVE does for torch: on a busy
        # 2-core host spinning threads took p95 from 20 to 36 ms (bench/RESULTS.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        remove_stale(path)
        if not path.exists():
            _export(st_model, self.inputs, path)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cached file (disk full, killed copy): export it again, once
            log.warning("cached ONNX export %s cannot be loaded (%s); exporting it again", path, exc)
            _export(st_model, self.inputs, path)
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.path = path

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, tokenised exactly as sentence-transformers does."""
        feats = _features(self.st_model, texts)
        feed = {k: feats[k].numpy().astype(np.int64) for k in self.inputs}
        (out,) = self.session.run(None, feed)
        return np.ascontiguousarray(out, dtype=np.float32)


def _features(st_model: Any, texts: list[str]) -> dict[str, Any]:
    """The model's own tokenisation (sentence-transformers strips and truncates), tensors only."""
    prep = getattr(st_model, "preprocess", None) or st_model.tokenize  # tokenize: before v6
    return {k: v for k, v in prep(texts).items() if hasattr(v, "numpy")}


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
        if f == current or not (temp or EXPORT_NAME.fullmatch(f.name)):
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


def _export(st_model: Any, inputs: list[str], path: Path) -> None:
    """Export transformer + mean pooling + normalisation to one ONNX graph, atomically (tmp + rename)."""
    import torch

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
    example = _features(st_model, [PROBE, PROBE + " " + PROBE])
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
