#!/usr/bin/env bash
# What a GPU run of the single-machine trainer must confirm (issue 12), on one CUDA GPU, no network:
#   1. bf16 training steps change the weights (fp32 master weights + bf16 autocast; bf16 weights would not);
#   2. a real rollout + update on CUDA (Trainer, SmolLM2, BM25 over the fixture corpus, checkpoint);
#   3. peak GPU memory and step time: SmolLM2 at 8 x 352 tokens, a 0.5B-class Qwen2-shaped model built
#      from a config at 8 x 352 and 8 x 4,096 tokens.
# Budget: under 5 minutes on one GPU. Writes benchmarks/results/gpu_check.json; exits non-zero on a failure.
#   bash benchmarks/gpu_check.sh            # from the repository root, with zerosearch installed (pip install -e .)
# It has NOT been run by the session that wrote it (no GPU there); see docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi not found" >&2
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py --device cuda "$@"
