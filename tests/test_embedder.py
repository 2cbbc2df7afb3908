"""The real embedder: lanes of one-thread operators give the same vectors as one encode; bf16 agrees with fp32."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import rag.embedder
from rag.config import Settings, default_model_path
from rag.embedder import MIN_PROBE_COSINE, SentenceTransformerEmbedder, cpu_has_bf16
from rag.errors import ConfigError


def _model(precision: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(default_model_path(), "cpu", query_runtime="torch", precision=precision)


@pytest.fixture(scope="module")
def fp32(onnx_cache) -> SentenceTransformerEmbedder:
    """The product's embedder in fp32 (questions on ONNX Runtime where installed). Lanes, threads and one
    encode give the same vectors in fp32; in bf16 a thread count's summation order moves them by ~1e-4
    (within MIN_PROBE_COSINE, tested below)."""
    return SentenceTransformerEmbedder(default_model_path(), "cpu", cache_dir=onnx_cache, precision="fp32")


def test_lanes_give_the_vectors_of_one_encode(fp32) -> None:
    import torch

    texts = [f"Warfarin dose {i} mg daily for patients aged {20 + i} years, checked by INR." * (1 + i % 3)
             for i in range(40)]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert fp32._lanes(len(texts)) == 2
        lanes = fp32.embed(texts)
        assert torch.get_num_threads() == 2  # restored after the lanes ran
        one = fp32._encode(texts)
    finally:
        torch.set_num_threads(before)
    assert lanes.shape == (40, fp32.dim) and lanes.dtype == np.float32
    np.testing.assert_allclose(lanes, one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lanes, axis=1), 1.0, atol=1e-5)


def test_one_batch_is_one_lane(fp32) -> None:
    assert fp32._lanes(fp32.batch_size) == 1


def test_one_text_on_one_thread_gives_the_same_vector(fp32) -> None:
    import torch

    text = ["What is the usual starting dose of warfarin?"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one = fp32.embed(text)
        assert torch.get_num_threads() == 2
        np.testing.assert_allclose(one, fp32._encode(text), atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_encodes_and_token_counts_from_many_threads_give_the_right_results(fp32) -> None:
    """The answerer counts word pieces per question term while other threads embed (the app serves
    sessions from threads): no call may change another's tokenisation."""
    import threading

    texts = [" ".join(f"warfarin{j % 7} dose" for j in range(3 + 5 * i)) for i in range(40)]  # several batches
    short = ["What is the INR target for warfarin?", "metformin"]
    ref, ref_short = fp32.embed(texts), fp32.embed(short)
    counts = fp32.count_tokens(texts)
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep(fn) -> None:
        try:
            while not stop.is_set():
                fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=keep, args=(lambda: _same(fp32.count_tokens(texts), counts),)),
               threading.Thread(target=keep, args=(lambda: np.testing.assert_allclose(
                   fp32.embed(short), ref_short, atol=1e-5),))]
    for w in workers:
        w.start()
    try:
        for _ in range(3):
            np.testing.assert_allclose(fp32.embed(texts), ref, atol=1e-5)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert not errors, errors[:3]


def _same(a, b) -> None:
    assert a == b


# --- precision ---------------------------------------------------------------------------------------

needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16 or AMX)")
TEXTS = [f"Warfarin {i} mg: check the INR after {3 + i % 4} days; " * (1 + i % 5) for i in range(40)]


@needs_bf16
def test_bf16_vectors_are_computed_in_bf16_and_agree_with_fp32(fp32) -> None:
    """Both paths (one encode, and the lanes of several batches, whose threads enter autocast themselves)
    really run in bf16 (the vectors move) and stay within the probe's cosine of fp32."""
    bf16 = _model("bf16")
    assert bf16.precision == "bf16" and bf16.id == fp32.id
    exact = fp32.embed(TEXTS)
    for low in (bf16.embed(TEXTS), bf16._encode(TEXTS)):  # 40 texts: lanes; _encode: one encode
        assert low.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
        cos = (exact * low).sum(axis=1)
        assert cos.min() >= MIN_PROBE_COSINE
        assert np.abs(exact - low).max() > 1e-4  # fp32 gives the same vectors to ~1e-7


@needs_bf16
def test_auto_is_bf16_on_a_cpu_with_native_bf16() -> None:
    assert _model("auto").precision == "bf16"


def test_auto_without_native_bf16_is_fp32_and_asking_for_bf16_is_a_clear_error(monkeypatch, caplog) -> None:
    monkeypatch.setattr(rag.embedder, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.INFO, logger="rag.embedder"):
        assert _model("auto").precision == "fp32"
    assert "no native bf16" in caplog.text
    with pytest.raises(ConfigError, match="GQA_EMBED_PRECISION=bf16 but this CPU has no native bf16"):
        _model("bf16")
    with pytest.raises(ConfigError, match="fp16 is for GPUs"):
        _model("fp16")


@needs_bf16
def test_a_probe_that_disagrees_with_fp32_falls_back(monkeypatch, caplog) -> None:
    monkeypatch.setattr(rag.embedder, "MIN_PROBE_COSINE", 1.0 + 1e-3)  # no vector can pass
    with caplog.at_level(logging.INFO, logger="rag.embedder"):
        assert _model("auto").precision == "fp32"
    assert "differ from fp32" in caplog.text
    with pytest.raises(ConfigError, match="set it to auto or fp32"):
        _model("bf16")


def test_an_unknown_precision_is_refused_and_settings_read_it(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="'int8' is not one of auto, fp32, bf16, fp16"):
        _model("int8")
    monkeypatch.setenv("GQA_EMBED_PRECISION", "fp32")
    assert Settings.from_env().embed_precision == "fp32"
    assert Settings().embed_precision == "auto"
