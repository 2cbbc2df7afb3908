"""GPU-host check (bench/gpu_check.sh): the product on a CUDA machine, embedder on the GPU, faiss as installed."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

from ingest.pipeline import ingest
from rag.config import Settings
from rag.embedder import SentenceTransformerEmbedder, pick_device
from rag.engine import Engine
from rag.index import gpu_count
from rag.qa import QA


def main() -> None:
    """Print one JSON object with the measurements."""
    import faiss

    out: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                 "faiss": faiss.__version__, "faiss_gpus": gpu_count(), "auto_device": pick_device("auto")}
    model = os.environ["GQA_EMBED_MODEL"]
    gpu, cpu = SentenceTransformerEmbedder(model, "auto"), SentenceTransformerEmbedder(model, "cpu")
    cpu.model.float()  # the carried weights are fp16 (transfer limit); compute in fp32 on both
    gpu.model.float()
    texts = ["Warfarin initial dose is 2 to 5 mg once daily.", "Amoxicillin 500 mg three times daily."] * 64
    vg, vc = gpu.embed(texts), cpu.embed(texts)
    out.update(embedder_device=gpu.device, batch_size=gpu.batch_size,
               max_abs_diff_gpu_vs_cpu=float(np.abs(vg - vc).max()))
    n = int(os.environ.get("GQA_CHECK_N", "20000"))
    big = [f"passage {i} about dosing of drug {i % 97} in renal impairment and INR monitoring" for i in range(n)]
    for name, emb, part in (("gpu", gpu, big), ("cpu", cpu, big[: n // 20])):
        t = time.perf_counter()
        emb.embed(part)
        out[f"encode_texts_per_s_{name}"] = round(len(part) / (time.perf_counter() - t), 1)
    settings = Settings.from_env()
    t = time.perf_counter()
    report = ingest(["data"], settings, gpu)
    out.update(ingest_demo_s=round(time.perf_counter() - t, 2), ingest_failed=report.failed, chunks=report.chunks)
    qa = QA(settings, engine=Engine(settings, gpu))
    first = qa.answer("What is the first-line antibiotic for low-severity pneumonia treated at home?")
    out.update(abstained=first.abstained, first_ask_ms=first.timings_ms["total"])
    lat = []
    for _ in range(20):
        t = time.perf_counter()
        qa.answer("Clarithromycin dose when eGFR is below 30?")
        lat.append((time.perf_counter() - t) * 1000)
    out["ask_ms_p50_p95"] = [round(float(np.percentile(lat, q)), 1) for q in (50, 95)]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
