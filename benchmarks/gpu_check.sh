#!/usr/bin/env bash
# What one GPU must confirm before a zerosearch run, and the figures to plan one (gpu_check.py says what):
# bf16 master weights, two real Trainer steps on CUDA with a checkpoint, and rollout tokens/s, seconds per
# step and peak GPU memory for Qwen2.5-0.5B/1.5B/3B shapes (random weights) at 8 prompts x 5 samples.
# Designed to finish in under 8 minutes on one H200 (killed at 8 minutes); writes $OUT/gpu_check.json when
# OUT is set (the device tool's folder that comes back), else benchmarks/results/gpu_check.json.
#
#   make gpu-wheels                          # here, once: .whl/ = what the GPU image lacks (benchmarks/gpu_wheels.txt)
#   bash benchmarks/gpu_check.sh             # on the GPU machine, from the repository root, .whl/ carried along
#   bash benchmarks/gpu_check.sh --dry-run   # anywhere: CPU, tiny shapes, no wheels (the test suite runs this)
#
# On the GPU it runs with the machine's own python3 (its torch, transformers, peft, accelerate ...; the list is
# benchmarks/gpu_image_packages.txt) plus the wheels installed into /tmp/site with --no-index --no-deps.
# It has NOT run on a GPU yet (docs/gpu.md says what has run where).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
RESULTS_DIR="${OUT:-benchmarks/results}"

if [[ "${1:-}" == "--dry-run" ]]; then
    shift
    PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
    export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    exec timeout 300 "$PYTHON" benchmarks/gpu_check.py --device cpu --quick \
        --output "$RESULTS_DIR/gpu_check_dry_run.json" "$@"
fi

PYTHON="${PYTHON:-python3}"
SITE=""
if compgen -G ".whl/*.whl" > /dev/null; then
    SITE=/tmp/site
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
elif ! "$PYTHON" -c "import pydantic, bm25s" 2> /dev/null; then
    echo "gpu_check: $PYTHON lacks pydantic/bm25s and there is no .whl/: run 'make gpu-wheels' and carry .whl" >&2
    exit 2
fi
export PYTHONPATH="src${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi not found" >&2
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py --device cuda --output "$RESULTS_DIR/gpu_check.json" "$@"
