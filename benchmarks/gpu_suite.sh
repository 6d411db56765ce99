#!/usr/bin/env bash
# The GPU suite: training images/s per architecture (fp32, bf16, channels_last, torch.compile) and
# generator inference (PyTorch CUDA eager vs ONNX Runtime CUDA with IOBinding vs TensorRT, batch 1
# and 64) on one CUDA device; JSON with the device named in benchmarks/results/gpu_suite.json.
# Under 8 minutes on one H100/H200 (a --budget-s of 420 s by default: what does not fit is listed as skipped).
#
#   benchmarks/gpu_suite.sh                 # on a GPU machine, from the repository root or anywhere
#   benchmarks/gpu_suite.sh --dry-run       # CPU check: tiny sizes, a few steps, CUDA parts skipped
#   benchmarks/gpu_suite.sh --archs dcgan,cyclegan --out /tmp/suite.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
PYTHON="${PYTHON:-python}"
exec "$PYTHON" "$here/gpu_suite.py" "$@"
