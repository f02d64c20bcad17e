#!/usr/bin/env bash
# The structure ablation (issue 12): one `paper-ablation` sweep per id_noise level, the
# report of each, then the summary across levels. Run from the repository root:
#
#     bash results/ablation/run.sh          # about 11 minutes on 2 cores
#
# id_noise scales each id's own effect against its planted cluster's (synthetic data):
# 0.1 = an id is its cluster; 4 = the id's own effect is 4x the cluster's in std.
# A level whose sweep already completed in the tracking store (./mlflow.db, or
# MLFLOW_TRACKING_URI) is not run again: its report is regenerated from MLflow. An interrupted
# level continues with: collide sweep --resume --name ablation-noise-<level> --preset paper-ablation
set -euo pipefail
cd "$(dirname "$0")/../.."
LEVELS=(0.1 0.5 1 2 4)
for noise in "${LEVELS[@]}"; do
  name="ablation-noise-$noise"
  out="results/ablation/noise-$noise"
  if ! collide report --experiment "$name" --out "$out" 2>/dev/null; then
    collide sweep --preset paper-ablation --name "$name" --set "data.params.id_noise=$noise" \
      --num-cpus "${NUM_CPUS:-2}"
    collide report --experiment "$name" --out "$out"
  fi
done
python results/ablation/summary.py --levels "$(IFS=,; echo "${LEVELS[*]}")" --out results/ablation/summary.md
