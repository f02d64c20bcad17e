#!/usr/bin/env bash
# Fair tuning (issue 24, item 3): every strategy gets the same search over the learning rate and
# the number of epochs, chosen on validation; test is reported for the choice only.
#
# - lr: one sweep per value, 3e-4, 1e-3, 3e-3 and 1e-2 (train.lr; the tables use it too).
# - epochs: each trial trains up to train.epochs (4 on the synthetic data, 8 on MovieLens) and
#   stops after an epoch without a validation gain (train.early_stopping_patience 1, collide's
#   default), keeping the weights of its best validation epoch. So each trial's epoch count is
#   chosen on validation, in one run instead of one run per count.
#
# The grid is the main comparison's (`paper-synthetic` and `paper-movielens`: all seven
# strategies at 4x, 16x and 64x, seeds 0-4, each seed its own data or split) at dim 16, fp32.
# summary.py then picks, per configuration (strategy x compression), the lr of lowest mean
# validation logloss over the seeds, and compares the tuned strategies with the tuned hash at
# the same size on test, paired by seed, with Holm over the cells. Run from the repository root:
#
#     bash results/tuning/run.sh path/to/ml-100k     # about 60 minutes on 2 cores
#
# The argument is the RecBole directory of MovieLens-100K. Run again, it skips a sweep that
# completed in the tracking store (./mlflow.db, or MLFLOW_TRACKING_URI) and resumes one that
# was interrupted; every report is regenerated from MLflow.
set -euo pipefail
if [ $# -ne 1 ] || ! [ -f "$1/ml-100k.inter" ]; then
  echo "usage: bash results/tuning/run.sh path/to/ml-100k  (the RecBole directory holding ml-100k.inter)" >&2
  exit 2
fi
MOVIELENS="$(cd "$1" && pwd)"
cd "$(dirname "$0")/../.."
LRS=(3e-4 1e-3 3e-3 1e-2)

state() {  # "completed", "none", or the parent run id of the experiment's unfinished sweep
  python results/sweep_state.py "$1"
}

for data in synthetic movielens; do
  if [ "$data" = synthetic ]; then args=(--preset paper-synthetic --set train.epochs=4)
  else args=(--preset paper-movielens --data-path "$MOVIELENS" --set train.epochs=8); fi
  args+=(--dims 16 --set grid.precisions=fp32 --set save_tables=false)
  for lr in "${LRS[@]}"; do
    name="tune-$data-lr-$lr"
    case "$(state "$name")" in
      completed) echo "$name: completed earlier, regenerating its report" ;;
      none) collide sweep --name "$name" --num-cpus "${NUM_CPUS:-2}" "${args[@]}" \
              --set "train.lr=$lr" || [ $? -eq 1 ] ;;
      *) collide sweep --resume "$(state "$name")" --name "$name" || [ $? -eq 1 ] ;;
    esac
    collide report --experiment "$name" --out "results/tuning/$name"
  done
done
python results/tuning/summary.py --lrs "$(IFS=,; echo "${LRS[*]}")" --out results/tuning/summary.md
