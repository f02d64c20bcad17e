"""`run_sweep(config) -> SweepResult`: Ray Tune over strategy x compression x dim x seed.

Flow (driver): validate the config; prepare the data (cached); train the probe once per
seed if a learned strategy is in the grid (cached); put the dataset and probes in the
object store once; run a Tuner whose function trainable is a thin adapter over
`sweep.trial.run_trial`, reporting after every epoch; mirror everything into MLflow from
the driver (`sweep.tracking`); finally read the trials back from MLflow and write the
Pareto frontier (csv, png, md) to the parent run and `results_dir`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sweep.config import SweepConfig
from sweep.datasets import (
    PreparedDataset,
    SparseColumn,
    Vocabulary,
    default_out_dir,
    get_source,
    prepare,
)
from sweep.frontier import frontier_table
from sweep.frontier_report import plot_pareto, write_pareto_csv, write_pareto_md
from sweep.points import grid_points, point_name, point_of
from sweep.probe_cache import probe_embeddings
from sweep.tracking import (
    MlflowTrialCallback,
    SweepTracker,
    default_tracking_uri,
    flatten,
    runs_of_sweep,
    trial_rows,
)
from sweep.trial import LEARNED, TrialConfig, run_trial

__all__ = ["SweepResult", "run_sweep", "write_pareto_files"]

log = logging.getLogger(__name__)

PROGRESS_PARAMS = {"strategy": "strategy", "compression": "compression", "dim": "dim"}
PROGRESS_METRICS = {"epoch": "epoch", "val_logloss": "val_logloss", "total_bytes": "total_bytes"}


@dataclass
class SweepResult:
    experiment: str
    parent_run_id: str
    tracking_uri: str
    trials: list[dict]  # one row per trial (Pareto table, with on_frontier)
    frontier: list[dict]  # the rows on the frontier, by total_bytes
    files: dict[str, Path]  # pareto.csv / pareto.png / pareto.md
    num_failed: int


def base_trial_config(config: SweepConfig, data_path: Path, cache_dir: Path) -> TrialConfig:
    """Everything a trial needs except its point (strategy, compression, dim, seed)."""
    cpus = max(1, int(config.resources.cpus_per_trial))
    device = "cuda" if config.resources.gpus_per_trial > 0 else config.train.device
    return TrialConfig(
        data=str(data_path), strategy="hash", compression=16.0, dim=config.grid.dims[0],
        full_threshold=config.model.full_threshold, learned_min_count=config.model.learned_min_count,
        bottom_mlp=config.model.bottom_mlp,
        top_mlp=config.model.top_mlp, interaction=config.model.interaction, pooling=config.model.pooling,
        train=replace(config.train, num_threads=cpus, device=device), probe=config.probe,
        cache_dir=str(cache_dir),
    )


def trial_config_for(base: TrialConfig, config: SweepConfig, point: dict, out_dir: str | None) -> TrialConfig:
    strategy = point["strategy"]
    return replace(base, strategy=strategy, compression=point["compression"] if strategy != "full" else None,
                   dim=point["dim"], seed=point["seed"], out_dir=out_dir,
                   mapper_params=dict(config.strategy_params.get(strategy, {})))


def _trainable(tune_config: dict, dataset: PreparedDataset, probes: dict, base: TrialConfig,
               sweep: SweepConfig) -> None:
    """The Ray Tune function trainable: run_trial, reporting every epoch, then the bundles."""
    from ray import tune

    point = point_of(tune_config)
    name = point_name(point)
    if name in sweep.fail_trials:
        raise RuntimeError(f"injected failure for trial {name} (fail_trials)")
    out_dir = tempfile.mkdtemp(prefix=f"collide-{name}-")
    trial_config = trial_config_for(base, sweep, point, out_dir)

    def on_epoch(epoch: int, metrics: dict) -> None:
        tune.report({**metrics, "epoch": epoch})

    try:
        metrics = run_trial(trial_config, dataset=dataset, probe=probes.get(point["seed"]), on_epoch=on_epoch)
        # The checkpoint carries the bundles to storage_path; the driver logs them to MLflow from there.
        tune.report({**metrics, "epoch": metrics["epochs_run"], "final": True},
                    checkpoint=tune.Checkpoint.from_directory(out_dir))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _in_memory(dataset: PreparedDataset) -> PreparedDataset:
    """Plain arrays (not memmaps), so the object store holds one shared copy for every trial."""
    def arr(a: np.ndarray) -> np.ndarray:
        return np.array(a, copy=True)

    return replace(
        dataset, labels=arr(dataset.labels), dense=arr(dataset.dense), split=arr(dataset.split),
        sparse={n: SparseColumn(arr(c.values), None if c.offsets is None else arr(c.offsets))
                for n, c in dataset.sparse.items()},
        vocab={n: Vocabulary(arr(v.ids), arr(v.counts)) for n, v in dataset.vocab.items()},
        extras={k: arr(v) for k, v in dataset.extras.items()},
        meta={n: {k: arr(v) for k, v in m.items()} for n, m in dataset.meta.items()},
    )


def _search(config: SweepConfig, points: list[dict]) -> tuple[dict, dict]:
    """(param_space, TuneConfig kwargs) for grid or optuna search."""
    from ray import tune

    if config.search == "grid":
        kwargs: dict[str, Any] = {"num_samples": 1}
        if config.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            kwargs["scheduler"] = ASHAScheduler(metric="val_logloss", mode="min", time_attr="training_iteration",
                                                max_t=config.train.epochs + 1, grace_period=1)
        return {"point": tune.grid_search(points)}, kwargs
    from ray.tune.search.optuna import OptunaSearch

    g = config.grid
    space = {"strategy": tune.choice(list(g.strategies)), "compression": tune.choice([float(c) for c in g.compressions]),
             "dim": tune.choice([int(d) for d in g.dims]), "seed": tune.choice([int(s) for s in g.seeds])}
    search = OptunaSearch(metric=["val_logloss", "total_bytes"], mode=["min", "min"], seed=int(g.seeds[0]))
    return space, {"search_alg": search, "num_samples": config.num_samples}


def _trial_label(trial: Any) -> str:
    """Readable Tune trial names, e.g. `hash-c16-d8-s0_00003` (the suffix keeps them unique)."""
    return f"{point_name(point_of(trial.config))}_{trial.trial_id.rsplit('_', 1)[-1]}"


def write_pareto_files(rows: list[dict], out_dir: Path, title: str) -> tuple[list[dict], dict[str, Path]]:
    table = frontier_table(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "pareto.csv": write_pareto_csv(table, out_dir / "pareto.csv"),
        "pareto.png": plot_pareto(table, out_dir / "pareto.png", title=title),
        "pareto.md": write_pareto_md(table, out_dir / "pareto.md", title=title),
    }
    return table, files


def _init_ray(config: SweepConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=config.resources.num_cpus, include_dashboard=False)


def run_sweep(config: SweepConfig, launch_dir: str | Path | None = None) -> SweepResult:
    """Run a whole sweep; returns the trials table and frontier (also in MLflow)."""
    from ray import tune
    from ray.tune import CLIReporter, FailureConfig, RunConfig

    launch_dir = Path(launch_dir or Path.cwd()).resolve()
    tracking_uri = config.tracking_uri or default_tracking_uri(launch_dir)
    storage_path = Path(config.storage_path or launch_dir / ".collide" / "ray_results").resolve()
    cache_dir = launch_dir / ".collide"
    points = grid_points(config)
    source = get_source(config.data.source, **dict(config.data.params))
    dataset = prepare(source, config.data.prepared_dir or default_out_dir(source, cache_dir / "prepared"))
    base = base_trial_config(config, dataset.path.resolve(), cache_dir / "probes")
    for point in points:  # every point's config is valid before Ray starts
        trial_config_for(base, config, point, None)
    seeds = sorted({p["seed"] for p in points if p["strategy"] in LEARNED})
    probes = {seed: probe_embeddings(dataset, config.probe, seed, cache_dir / "probes") for seed in seeds}

    _init_ray(config)
    tracker = SweepTracker(tracking_uri, config.name, asdict(config))
    shared = {k: v for k, v in asdict(base).items() if k not in ("strategy", "compression", "rows", "dim", "seed",
                                                                  "out_dir", "cache_dir", "mapper_params")}
    param_space, tune_kwargs = _search(config, points)
    resources = {"cpu": config.resources.cpus_per_trial, "gpu": config.resources.gpus_per_trial}
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, dataset=_in_memory(dataset), probes=probes, base=base, sweep=config),
        resources)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table honours our trimmed columns
    prefix = "point/" if config.search == "grid" else ""
    reporter = CLIReporter(parameter_columns={prefix + k: v for k, v in PROGRESS_PARAMS.items()},
                           metric_columns=PROGRESS_METRICS, max_report_frequency=15)
    tuner = tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=config.resources.max_concurrent_trials,
                                    trial_name_creator=_trial_label, trial_dirname_creator=_trial_label,
                                    **tune_kwargs),
        run_config=RunConfig(name=tracker.parent_run_id, storage_path=str(storage_path),
                             callbacks=[MlflowTrialCallback(tracker, flatten(shared), config.strategy_params)],
                             progress_reporter=reporter, failure_config=FailureConfig(max_failures=0), verbose=1),
    )
    grid = tuner.fit()
    num_failed = sum(1 for r in grid if r.error is not None)
    _, runs = runs_of_sweep(tracker.client, config.name, tracker.parent_run_id)
    out_dir = Path(config.results_dir).resolve() if config.results_dir else storage_path / tracker.parent_run_id
    table, files = write_pareto_files(trial_rows(runs), out_dir, title=f"{config.name}: size vs val logloss")
    for path in files.values():
        tracker.client.log_artifact(tracker.parent_run_id, str(path))
    frontier = [row for row in table if row["on_frontier"]]
    tracker.end_sweep(len(table), num_failed, len(frontier))
    return SweepResult(config.name, tracker.parent_run_id, tracking_uri, table, frontier, files, num_failed)
