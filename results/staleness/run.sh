#!/usr/bin/env bash
# The staleness study (issue 12): maps fitted on the earliest rows, evaluated on 5 later and later
# test windows. Synthetic data at five popularity drifts (`paper-staleness`, data.params.drift:
# 0 = stationary, the control) and MovieLens-100K by timestamp (`paper-staleness-movielens`), then
# the report of each and the summary across them. Run from the repository root:
#
#     bash results/staleness/run.sh path/to/ml-100k     # about 24 minutes on 2 cores
#
# The argument is the RecBole directory of MovieLens-100K (ml-100k.inter, .user, .item). Run again, it skips a sweep that completed in
# the tracking store (./mlflow.db, or MLFLOW_TRACKING_URI) and resumes one that was interrupted;
# every report is regenerated from MLflow. A sweep where some trials failed (exit 1) still gets
# its report.
set -euo pipefail
if [ $# -ne 1 ] || ! [ -f "$1/ml-100k.inter" ]; then
  echo "usage: bash results/staleness/run.sh path/to/ml-100k  (the RecBole directory holding ml-100k.inter)" >&2
  exit 2
fi
MOVIELENS="$(cd "$1" && pwd)"
cd "$(dirname "$0")/../.."
DRIFTS=(0 0.025 0.05 0.075 0.2)

state() {  # "completed", "none", or the parent run id of the experiment's unfinished sweep
  python results/sweep_state.py "$1"
}

run() {  # NAME OUT_DIR SWEEP_ARGS...: run (or resume) the sweep, then write its report
  local name="$1" out="$2"
  shift 2
  case "$(state "$name")" in
    completed) echo "$name: completed earlier, regenerating its report" ;;
    none) collide sweep --name "$name" --num-cpus "${NUM_CPUS:-2}" "$@" || [ $? -eq 1 ] ;;
    *) collide sweep --resume "$(state "$name")" --name "$name" || [ $? -eq 1 ] ;;
  esac
  collide report --experiment "$name" --out "$out"
}

for drift in "${DRIFTS[@]}"; do
  run "staleness-drift-$drift" "results/staleness/drift-$drift" --preset paper-staleness --set "data.params.drift=$drift"
done
run staleness-movielens results/staleness/movielens --preset paper-staleness-movielens --data-path "$MOVIELENS"
python results/staleness/summary.py --drifts "$(IFS=,; echo "${DRIFTS[*]}")" --out results/staleness/summary.md
