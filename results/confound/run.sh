#!/usr/bin/env bash
# The small-feature confound (issue 24, item 4). The main synthetic comparison
# (`paper-synthetic`) keeps features of at most 128 ids full for every strategy. This sweep is
# the same comparison at collide's default model.full_threshold (16), where the data's 100-id
# feature is compressed too: hash squeezes it into a few rows, while a learned map keeps its
# clusters. The summary sets the two side by side, per strategy and compression at dim 16, and
# says how much of each lead over hash comes from that small feature. Run from the repository
# root, after the paper-synthetic sweep (its data and probes are reused from the cache):
#
#     bash results/confound/run.sh          # about 8 minutes on 2 cores
#
# Run again, it skips a sweep that completed in the tracking store (./mlflow.db, or
# MLFLOW_TRACKING_URI) and resumes one that was interrupted; the reports are regenerated from
# MLflow.
set -euo pipefail
cd "$(dirname "$0")/../.."

state() {  # "completed", "none", or the parent run id of the experiment's unfinished sweep
  python results/sweep_state.py "$1"
}

name="confound-threshold-16"
case "$(state "$name")" in
  completed) echo "$name: completed earlier, regenerating its report" ;;
  none) collide sweep --preset paper-synthetic --name "$name" --set model.full_threshold=16 \
          --strategies hash,frequency,embedding,frequency_embedding --dims 16 \
          --num-cpus "${NUM_CPUS:-2}" || [ $? -eq 1 ] ;;
  *) collide sweep --resume "$(state "$name")" --name "$name" || [ $? -eq 1 ] ;;
esac
collide report --experiment "$name" --out results/confound/threshold-16
python results/confound/summary.py --main results/paper-synthetic \
  --default results/confound/threshold-16 --out results/confound/summary.md
