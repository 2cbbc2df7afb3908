"""The ONNX Runtime path for short inputs: the same vectors as torch, a cached export, and a safe fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import onnx_encoder
from rag.config import default_model_path
from rag.embedder import ONNX_MAX_TEXTS, SentenceTransformerEmbedder
from rag.errors import ConfigError

pytestmark = pytest.mark.skipif(not onnx_encoder.available(), reason="onnxruntime/onnx not installed")

QUESTIONS = [
    "What is the usual starting dose of warfarin?",
    "amoxicillin otitis media",
    "  Which AWaRe group does amoxicillin belong to, and is it first choice for pharyngitis in children?  ",
]


def torch_twin(real_embedder: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    """A second embedder over the same loaded model that never uses ONNX Runtime, in fp32 (ONNX's precision)."""
    twin = object.__new__(SentenceTransformerEmbedder)
    twin.__dict__.update(real_embedder.__dict__, onnx=None, precision="fp32", _requested_precision="fp32")
    return twin


def test_short_inputs_run_on_onnx_with_torchs_vectors(real_embedder) -> None:
    assert real_embedder.onnx is not None, "the product's embedder should use ONNX Runtime on this CPU"
    torch_only = torch_twin(real_embedder)
    calls: list[int] = []
    encode = real_embedder.onnx.encode
    real_embedder.onnx.encode = lambda texts: calls.append(len(texts)) or encode(texts)  # type: ignore[method-assign]
    try:
        one = real_embedder.embed(QUESTIONS[:1])
        padded = real_embedder.embed(QUESTIONS)  # different lengths: padding must not change a vector
    finally:
        del real_embedder.onnx.encode
    assert calls == [1, 3]
    np.testing.assert_allclose(one, torch_only.embed(QUESTIONS[:1]), atol=1e-5)
    np.testing.assert_allclose(padded, torch_only.embed(QUESTIONS), atol=1e-5)
    np.testing.assert_allclose(padded[:1], one, atol=1e-5)
    assert padded.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)


def test_long_inputs_stay_on_torch(real_embedder) -> None:
    texts = [f"Chunk {i}: amoxicillin 500 mg three times daily." for i in range(ONNX_MAX_TEXTS + 1)]
    calls: list[int] = []
    real_embedder.onnx.encode = lambda t: calls.append(len(t))  # type: ignore[method-assign,union-attr]
    try:
        vecs = real_embedder.embed(texts)
    finally:
        del real_embedder.onnx.encode  # type: ignore[union-attr]
    assert calls == [] and vecs.shape == (len(texts), real_embedder.dim)


def test_export_is_cached_and_a_damaged_file_is_made_again(real_embedder, tmp_path: Path) -> None:
    model, folder = real_embedder.model, Path(default_model_path())
    first = onnx_encoder.OnnxEncoder(folder, tmp_path, 1, 256, st_model=model)
    stamp = first.path.stat().st_mtime_ns
    again = onnx_encoder.OnnxEncoder(folder, tmp_path, 1, 256)  # no model: only a cached export will do
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp  # reused, not exported
    first.path.write_bytes(b"not an onnx file")
    repaired = onnx_encoder.OnnxEncoder(folder, tmp_path, 1, 256, st_model=model)
    assert repaired.path.stat().st_size > 1_000_000
    np.testing.assert_allclose(repaired.encode(QUESTIONS), first.encode(QUESTIONS), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]  # no temporary files left


def test_exports_for_another_model_or_version_and_abandoned_temporaries_are_removed(real_embedder,
                                                                                    tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys
    import time

    current = tmp_path / real_embedder.onnx.path.name
    shutil.copy(real_embedder.onnx.path, current)  # this model's export, as made before: no new export
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stem = current.stem
    stale = [tmp_path / f"{stem[:-12]}0123456789ab.onnx",  # the same model under older library versions
             tmp_path / f"{stem[:-12]}0123456789ab.probe.npy",  # and its probe vector
             tmp_path / "other-model-abcdefabcdef.onnx",  # another model id
             tmp_path / f".{stem}.{dead.pid}.k1l2.onnx.tmp",  # an export killed midway
             tmp_path / "tmpab12cd34.onnx.tmp"]  # the same from an older release (no pid), an hour old
    kept = [tmp_path / f".{stem}.{os.getpid()}.m3n4.onnx.tmp",  # an export in progress
            tmp_path / "tmpfresh.onnx.tmp", tmp_path / "notes.txt"]
    for f in stale + kept:
        f.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(stale[-1], (hour_ago, hour_ago))
    enc = onnx_encoder.OnnxEncoder(Path(default_model_path()), tmp_path, 1, 256)
    assert enc.path == current
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name] + [f.name for f in kept])


def test_a_mismatching_export_falls_back_to_torch_or_fails_when_required(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(onnx_encoder, "MAX_DIFF", -1.0)  # any export now "differs"
    auto = SentenceTransformerEmbedder(default_model_path(), "cpu", query_runtime="auto", cache_dir=tmp_path)
    assert auto.onnx is None
    assert auto.embed(QUESTIONS[:1]).shape == (1, auto.dim)
    with pytest.raises(ConfigError, match="GQA_QUERY_RUNTIME=onnx but the ONNX export differs from torch"):
        SentenceTransformerEmbedder(default_model_path(), "cpu", query_runtime="onnx", cache_dir=tmp_path)


def test_runtime_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="query runtime 'tensorrt' is not one of auto, onnx, torch"):
        SentenceTransformerEmbedder(default_model_path(), "cpu", query_runtime="tensorrt")


def test_the_tokenizer_gives_sentence_transformers_features(real_embedder) -> None:
    """ONNX Runtime is fed by tokenizer.json directly: the same ids, masks and padding as the model's own
    tokenization, for short, padded, stripped and truncated (over 256 word pieces) inputs."""
    texts = QUESTIONS + ["é ü — 5 mg/kg/day · ≥ 40 kg", "warfarin " * 400]
    mine = onnx_encoder.features(onnx_encoder.tokenizer(Path(default_model_path()), 256), texts)
    prep = getattr(real_embedder.model, "preprocess", None) or real_embedder.model.tokenize
    theirs = prep(texts)
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(mine[k], theirs[k].numpy())
    assert mine["input_ids"].shape[1] == 256


def test_a_reader_with_a_cached_export_answers_without_loading_torch(tmp_path: Path) -> None:
    """The export and torch's probe vector are made once; a later process embeds questions, counts word
    pieces and reports the model's id and size without importing torch or sentence-transformers, and loads
    torch only for a batch."""
    import subprocess
    import sys

    code = f"""
import sys
from pathlib import Path
from rag.embedder import SentenceTransformerEmbedder
e = SentenceTransformerEmbedder({default_model_path()!r}, "auto", cache_dir=Path({str(tmp_path)!r}))
v = e.embed(["What is the usual starting dose of warfarin?"])
n = e.count_tokens(["warfarin dose"])
print(e.id, v.shape, n, "torch" in sys.modules, "sentence_transformers" in sys.modules)
e.embed(["chunk %d" % i for i in range(12)])
print("torch" in sys.modules)
"""
    first = SentenceTransformerEmbedder(default_model_path(), "cpu", cache_dir=tmp_path)  # exports once
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split("\n")
    assert out[0] == f"{first.id} (1, {first.dim}) {first.count_tokens(['warfarin dose'])} False False"
    assert out[1] == "True"
