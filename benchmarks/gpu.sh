#!/usr/bin/env bash
# The GPU checks, in one script to run on a machine with a CUDA card.
#
#   bash benchmarks/gpu.sh        # training throughput and whole trials, within about 8 minutes
#   bash benchmarks/gpu.sh all    # that, then two sweeps on CUDA trials, within about 10 minutes
#
# 1. Training throughput: the Criteo Kaggle DLRM of benchmarks/train_throughput.py through
#    models.train with `device: auto`, at batch 16384 and 65536, the default optimizer (adam)
#    rowwise_adagrad and sgd, against the fp32 GEMM roofline of the same card; each with the
#    shuffle windows built in line (b0), by one background thread (b1) and by four (b4), side by
#    side; then a profile of one epoch at each batch (the default optimizer, default threads);
#    then whole trials (benchmarks/trial_device.py: prepared data read and mapped in blocks, no
#    Ray) with the windows built in line and ahead; then each distinct row gathered once
#    (gather_unique) against not, on Zipf-drawn ids.
# 2. (all) A 16-trial synthetic grid (benchmarks/sweep_efficiency.py) whose trials each take a
#    quarter of the card (`--gpus-per-trial 0.25`: four at once), with the whole process's
#    efficiency.
# 3. (all) The scale benchmark's memory part (benchmarks/scale.py memory) at 1M and 4M rows,
#    trials on CUDA at half a card each: peak held memory, wall and samples/s.
#
# Each part ends with its own `RESULT {json}` line; a part that fails or runs out of time says
# so, and the script exits non-zero at the end. Without a CUDA device it says so and runs a short
# CPU check of part 1's path instead (the sweeps need a card).
set -uo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no CUDA device)', '| torch', torch.__version__)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device here: a short CPU run of the same path (device auto), not a GPU figure"
  exec timeout 300 python benchmarks/train_throughput.py --device auto --batches 2048 --samples 8192 \
    --threads 1 --optimizers adam
fi
failed=()
part() {  # part NAME SECONDS COMMAND...: run one part under a time limit, note a failure
  local name=$1 seconds=$2
  shift 2
  echo "== $name (at most ${seconds} s)"
  timeout "$seconds" "$@"
  local code=$?
  if [ "$code" -ne 0 ]; then
    echo "== $name FAILED (exit $code$( [ "$code" -eq 124 ] && echo ', out of time'))"
    failed+=("$name")
  fi
}
cpus=$(nproc)
part throughput 300 python benchmarks/train_throughput.py --device auto --batches 16384 65536 \
  --samples 2097152 --optimizers adam rowwise_adagrad sgd --build-threads 0 1 4
part profile 120 python benchmarks/train_throughput.py --device auto --batches 16384 65536 \
  --samples 1048576 --optimizers adam --profile
part "a whole trial, windows in line and ahead" 240 python benchmarks/trial_device.py \
  --device cuda --rows 4000000
part "lookups, Zipf ids" 120 python benchmarks/train_throughput.py --device auto --batches 65536 \
  --samples 2097152 --optimizers adam rowwise_adagrad --zipf 1.05 --compare-lookups
if [ "${1:-}" = "all" ]; then
  export RAY_AUTH_MODE=disabled  # a private local Ray
  part "16-trial sweep, 0.25 GPU per trial" 200 python benchmarks/sweep_efficiency.py \
    --kinds synthetic --cpus "$cpus" --gpus-per-trial 0.25
  part "scale memory, 1M and 4M rows, 0.5 GPU per trial" 240 python benchmarks/scale.py memory \
    --rows 1000000,4000000 --cpus "$cpus" --gpus-per-trial 0.5
fi
if [ "${#failed[@]}" -ne 0 ]; then
  echo "failed parts: ${failed[*]}"
  exit 1
fi
