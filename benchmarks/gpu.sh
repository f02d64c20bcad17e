#!/usr/bin/env bash
# Training throughput on a GPU, within 5 minutes: the Criteo Kaggle DLRM of
# benchmarks/train_throughput.py through models.train with `device: auto`, at batch 16384 and
# 65536, the default optimizer (adam) and sgd, against the fp32 GEMM roofline of the same card.
# Without a CUDA device it says so and runs a short CPU check of the same path instead.
#
#   bash benchmarks/gpu.sh        # ends with RESULT {json}
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no CUDA device)', '| torch', torch.__version__)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  exec timeout 300 python benchmarks/train_throughput.py --device auto --batches 16384 65536 \
    --samples 2097152 --optimizers adam sgd
fi
echo "no CUDA device here: a short CPU run of the same path (device auto), not a GPU figure"
exec timeout 300 python benchmarks/train_throughput.py --device auto --batches 2048 --samples 8192 --threads 1 \
  --optimizers adam
