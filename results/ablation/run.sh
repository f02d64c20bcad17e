#!/usr/bin/env bash
# The structure ablation (issue 12): one `paper-ablation` sweep per id_noise level, the
# report of each, then the summary across levels. Run from the repository root:
#
#     bash results/ablation/run.sh          # about 21 minutes on 2 cores
#
# id_noise scales each id's own effect against its planted cluster's (synthetic data):
# 0.1 = an id is its cluster; 4 = the id's own effect is 4x the cluster's in std.
# Run again, it skips a level whose sweep completed in the tracking store (./mlflow.db, or
# MLFLOW_TRACKING_URI) and resumes one that was interrupted; every report is regenerated
# from MLflow. A level where some trials failed (exit 1) still gets its report.
set -euo pipefail
cd "$(dirname "$0")/../.."
LEVELS=(0.1 0.5 1 2 4)

state() {  # "completed", "none", or the parent run id of the experiment's unfinished sweep
  python results/sweep_state.py "$1"
}

for noise in "${LEVELS[@]}"; do
  name="ablation-noise-$noise"
  case "$(state "$name")" in
    completed) echo "$name: completed earlier, regenerating its report" ;;
    none) collide sweep --preset paper-ablation --name "$name" --set "data.params.id_noise=$noise" \
            --num-cpus "${NUM_CPUS:-2}" || [ $? -eq 1 ] ;;
    *) collide sweep --resume "$(state "$name")" --name "$name" || [ $? -eq 1 ] ;;
  esac
  collide report --experiment "$name" --out "results/ablation/noise-$noise"
done
python results/ablation/summary.py --levels "$(IFS=,; echo "${LEVELS[*]}")" --out results/ablation/summary.md
