"""Where a named sweep stands in the tracking store, for the results/*/run.sh scripts.

    python results/sweep_state.py NAME

prints "completed" (its latest sweep finished), "none" (no such experiment, or no sweep in
it), or the parent run id of its unfinished sweep (to resume). The store is ./mlflow.db, or
MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import sys

from mlflow.tracking import MlflowClient

from sweep.tracking.records import experiment_id_of, find_sweep
from sweep.tracking.uri import default_tracking_uri


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python results/sweep_state.py NAME")
    client = MlflowClient(default_tracking_uri())
    try:
        experiment_id_of(client, sys.argv[1])
        sweep = find_sweep(client, sys.argv[1], completed=False)
    except ValueError:  # no such experiment, or no sweep in it
        print("none")
    else:
        print("completed" if sweep.parent.info.status == "FINISHED" else sweep.parent_run_id)


if __name__ == "__main__":
    main()
