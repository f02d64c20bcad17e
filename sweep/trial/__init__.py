"""One sweep point end to end, without Ray or MLflow: `run_trial(TrialConfig(...)) -> metrics`.

- `config.py`: `TrialConfig` and `ModelConfig`, with every default they share with a sweep;
- `mapping.py`: which features are mapped, with how many rows, the fitted mappers, the batch;
- `encoding.py`: prepared data and fitted mappers -> the arrays the trainer takes;
- `probe_cache.py`: the probe's embeddings, trained once per (data, probe, seed) and cached;
- `diagnostics.py`: collisions, unseen and rare values, the signal captured, test windows;
- `run.py`: `run_trial`, and the bundles and metrics.json a trial writes.
"""

from __future__ import annotations

from sweep.trial.config import (
    FULL_THRESHOLD,
    LEARNED_MIN_COUNT,
    ModelConfig,
    TrialConfig,
    check_test_windows,
)
from sweep.trial.mapping import (
    batch_size_for,
    eval_notes,
    fit_mappers,
    kept_full,
    rows_at,
    small_data_note,
)
from sweep.trial.run import bundle_dir_name, run_trial, write_trial_outputs

__all__ = [
    "FULL_THRESHOLD",
    "LEARNED_MIN_COUNT",
    "ModelConfig",
    "TrialConfig",
    "batch_size_for",
    "eval_notes",
    "bundle_dir_name",
    "check_test_windows",
    "fit_mappers",
    "kept_full",
    "rows_at",
    "run_trial",
    "small_data_note",
    "write_trial_outputs",
]
