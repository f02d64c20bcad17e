"""The Ray Tune function trainable: a thin adapter over `sweep.trial.run_trial`.

It reports every epoch, then the final metrics with a checkpoint holding the trial's
bundles and metrics.json (the driver logs them to MLflow). A trial restored from that
final checkpoint (a `--resume` after the driver died between the trial's last report and
Tune's record of its end) does not train again: it reports the stored history and final
result once more, so the driver can finish its MLflow run.

Trials get no tracking URI: they never talk to MLflow.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path

from models import SizeReport
from sweep.config import SweepConfig
from sweep.trial import TrialConfig, run_trial
from sweep.tune.hooks import TrialHooks
from sweep.tune.points import point_name, point_of

__all__ = ["base_trial_config", "trainable", "trial_config_for"]

# what every epoch report carries besides its metrics
SIZE_KEYS = tuple(f.name for f in fields(SizeReport))


def base_trial_config(config: SweepConfig, data_path: Path, cache_dir: Path) -> TrialConfig:
    """Everything a trial needs except its point (strategy, compression, dim, seed)."""
    cpus = max(1, int(config.resources.cpus_per_trial))
    device = "cuda" if config.resources.gpus_per_trial > 0 else config.train.device
    return TrialConfig(data=str(data_path), dim=config.grid.dims[0],
                       test_windows=config.test_windows,
                       precisions=config.grid.precisions,
                       save_tables=config.save_tables,
                       model=config.model,
                       train=replace(config.train, num_threads=cpus, device=device),
                       probe=config.probe, cache_dir=str(cache_dir))


def trial_config_for(base: TrialConfig, config: SweepConfig, point: dict, out_dir: str | None,
                     data_paths: Mapping[int, str] | None = None) -> TrialConfig:
    """The trial config of `point`, with its strategy's params (a strategy that takes no compression
    drops it: TrialConfig), reading the data of its seed where `data_paths` ({seed: prepared
    directory}: data that varies with the seed) has one."""
    strategy = point["strategy"]
    return replace(base, strategy=strategy, compression=point["compression"], rows=None,
                   dim=point["dim"],
                   seed=point["seed"], out_dir=out_dir,
                   mapper_params=dict(config.strategy_params.get(strategy, {})),
                   data=(data_paths or {}).get(point["seed"], base.data))


def _scratch_parent() -> str | None:
    """`collide-scratch/` beside the trial's staging directory, in the experiment's staging area: a
    trial that Tune stops (ASHA) never runs its `finally`, and its scratch then stays with Ray's
    session files, not in /tmp. Not inside the trial directory: Ray copies the driver's staging
    tree to storage while trials run, and a scratch directory deleted mid-copy fails that sync."""
    from ray import tune

    try:
        trial_dir = tune.get_context().get_trial_dir()
    except Exception:  # noqa: BLE001 - outside a Tune session: the system's temporary directory
        return None
    if not trial_dir or not Path(trial_dir).is_dir():
        return None
    scratch = Path(trial_dir).parent.parent / "collide-scratch"
    scratch.mkdir(exist_ok=True)
    return str(scratch)


def _node() -> dict:
    """The Ray node this trial runs on (every report carries it; the driver tags the trial's
    run)."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id()}


def _report_stored(checkpoint_dir: Path) -> bool:
    """Re-report a completed trial from its final checkpoint; False when it holds no final
    result."""
    from ray import tune

    details_file = checkpoint_dir / "metrics.json"
    if not details_file.is_file():
        return False
    details = json.loads(details_file.read_text())
    metrics = details["metrics"]
    # every live epoch report carried them
    sizes = {k: metrics[k] for k in SIZE_KEYS if k in metrics}
    node = _node()
    for epoch, entry in enumerate(details.get("history", []), start=1):
        tune.report({**entry, **sizes, **node, "epoch": epoch})
    out_dir = tempfile.mkdtemp(prefix="collide-restored-", dir=_scratch_parent())
    try:
        shutil.copytree(checkpoint_dir, out_dir, dirs_exist_ok=True)
        tune.report({**metrics, **node, "epoch": metrics["epochs_run"], "final": True},
                    checkpoint=tune.Checkpoint.from_directory(out_dir))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return True


def trainable(tune_config: dict, probes: dict, base: TrialConfig, sweep: SweepConfig,
              hooks: TrialHooks | None = None, data_paths: Mapping[int, str] | None = None,
              probe_seconds: Mapping[int, float | None] | None = None) -> None:
    """The Ray Tune function trainable: run_trial, reporting every epoch (and every evaluation
    within one: train.eval_every_rows), then the bundles. The trial reads the prepared data
    from `base.data` (or its seed's, `data_paths`) itself (memory-mapped, a block at a time): it
    never travels through Ray's object store."""
    from ray import tune

    point = point_of(tune_config)
    name = point_name(point)
    hooks = hooks or TrialHooks()
    trial_id = tune.get_context().get_trial_id()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as stored:
            if _report_stored(Path(stored)):
                hooks.started(name, trial_id, "restored")
                return
    hooks.started(name, trial_id, "train")
    out_dir = tempfile.mkdtemp(prefix=f"collide-{name}-", dir=_scratch_parent())
    trial_config = trial_config_for(base, sweep, point, out_dir, data_paths)

    node = _node()

    def on_epoch(epoch: int, metrics: dict) -> None:
        tune.report({**metrics, **node, "epoch": epoch})

    def on_eval(epoch: int, metrics: dict) -> None:
        tune.report({**metrics, **node, "epoch": epoch, "midway": True})

    try:
        metrics = run_trial(trial_config, probe=probes.get(point["seed"]), on_epoch=on_epoch,
                            on_eval=on_eval,
                            probe_train_seconds=(probe_seconds or {}).get(point["seed"]))
        # The checkpoint carries the bundles to storage_path; the driver logs them to MLflow from
        # there.
        tune.report({**metrics, **node, "epoch": metrics["epochs_run"], "final": True},
                    checkpoint=tune.Checkpoint.from_directory(out_dir))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
