"""`run_sweep(config)`: Ray Tune over strategy x compression x dim x seed, tracked in MLflow.

Flow (driver): check the tracking URI (fails in seconds, before anything else); validate
the config; prepare the data (cached); check the grid against it (`sweep.tune.preflight`);
start Ray; train the probe of every seed a learned strategy needs, side by side as Ray tasks
(cached; `sweep.tune.startup`); check that every node reads the storage path and the
prepared data (`sweep.tune.cluster`); put the probes in the object store once; run a
Tuner whose trainable (`sweep.tune.trainable`) reports after every epoch, on actors that Tune
reuses from trial to trial; mirror everything into MLflow from the driver
(`sweep.tracking.writer`); finally read the trials back from MLflow and write the Pareto
frontier (csv, png, md) to the parent run and `results_dir` (`sweep.tune.ending`).

How a sweep ends (`SweepResult.state`, and the parent run's `collide.state` tag):
- "completed": every point ran (some may have failed: `num_failed`); parent FINISHED;
- "interrupted": SIGINT / SIGTERM; the running trials' runs and the parent are KILLED, no
  frontier is written; `collide sweep --resume PARENT` continues it (`sweep.tune.resume`);
- "tracking_lost": every trial ran but MLflow stayed unreachable; the records wait in the
  sweep's journal for `collide sync SWEEP_DIR`.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mappers import get_strategy
from models import evaluations_per_epoch
from sweep.config import SweepConfig, config_record
from sweep.frontier.files import PARETO_FILES
from sweep.outputs import check_owned_files
from sweep.tracking.records import checked_run_id
from sweep.tracking.store import check_tracking_uri
from sweep.tracking.uri import default_tracking_uri, redact, redact_text
from sweep.tracking.writer import ERROR_TAG_CHARS, SweepTracker, flatten, param_texts, register
from sweep.trial import TrialConfig
from sweep.tune.callback import MlflowTrialCallback
from sweep.tune.cluster import (
    check_prepared_shared,
    check_storage_shared,
    check_trial_fits,
    init_ray,
)
from sweep.tune.description import describe_sweep, optuna_budget
from sweep.tune.ending import SweepResult, end_interrupted, finish, sync_now
from sweep.tune.hooks import TrialHooks
from sweep.tune.interrupt import Interrupts, SweepInterrupted
from sweep.tune.output import ProgressCallback, RayOutput, SweepProgress, TableReporter
from sweep.tune.points import grid_points, point_name, point_of
from sweep.tune.preflight import absolute_paths, check_grid, check_storage_path
from sweep.tune.search import ConfigurationSearch
from sweep.tune.startup import Startup, sweep_probes
from sweep.tune.sweep_data import prepare_datasets, sweep_fingerprint
from sweep.tune.trainable import base_trial_config, trainable

__all__ = ["DATA_TAG", "EXPERIMENT_DIR_TAG", "Prepared", "fit_and_finish", "guarded",
           "prepare_sweep",
           "run_sweep"]

log = logging.getLogger(__name__)

PROGRESS_PARAMS = {"strategy": "strategy", "compression": "compression", "dim": "dim"}
PROGRESS_METRICS = {"epoch": "epoch", "val_logloss": "val_logloss", "total_bytes": "total_bytes"}
EXPERIMENT_DIR_TAG = "collide.experiment_dir"
DATA_TAG = "collide.data_fingerprint"


def _recorded(config: SweepConfig) -> dict:
    """The config as recorded in MLflow: plain values, the tracking URI without credentials."""
    return {**config_record(config), "tracking_uri": redact(config.tracking_uri)}


def _search(config: SweepConfig, points: list[dict], train_rows: int) -> tuple[dict, dict]:
    """(param_space, TuneConfig kwargs) for grid or optuna search. ASHA counts Tune iterations:
    one per epoch, and one per evaluation within an epoch (train.eval_every_rows; the data's
    `train_rows` say how many)."""
    from ray import tune

    if config.search == "grid":
        kwargs: dict[str, Any] = {"num_samples": 1}
        iterations = config.train.epochs * (
            1 + evaluations_per_epoch(train_rows, config.train.eval_every_rows))
        if config.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            kwargs["scheduler"] = ASHAScheduler(metric="val_logloss", mode="min",
                                                time_attr="training_iteration",
                                                max_t=iterations + 1, grace_period=1)
        return {"point": tune.grid_search(points)}, kwargs
    g = config.grid
    search = ConfigurationSearch(g.strategies, g.compressions, g.dims, g.seeds, config.samples,
                                 sampler_seed=int(g.seeds[0]))
    if config.samples > search.budget:
        log.warning("num_samples %d is more than the %d configurations of the grid (strategy x "
                    "compression x dim): the optuna search runs each of them once, %d trials with "
                    "%d seed(s)", config.samples,
                    search.budget, search.budget * len(g.seeds), len(g.seeds))
    return {}, {"search_alg": search, "num_samples": search.budget * len(g.seeds)}


def _trial_label(trial: Any) -> str:
    """Readable Tune trial names, e.g. `hash-c16-d8-s0_00003` (the suffix keeps them unique)."""
    return f"{point_name(point_of(trial.config))}_{trial.trial_id.rsplit('_', 1)[-1]}"


@dataclass
class Prepared:
    """What both a new and a resumed sweep build before Ray Tune starts."""

    config: SweepConfig
    tracking_uri: str
    points: list[dict]
    fingerprint: str  # of the prepared data
    train_rows: int  # of the prepared data
    base: TrialConfig  # every trial's config, but for its point
    trainable: Any  # tune.with_resources(tune.with_parameters(trainable, ...))
    startup: Startup  # what the serial start took


def prepare_sweep(config: SweepConfig, launch_dir: Path, tracking_uri: str, interrupts: Interrupts,
                  output: RayOutput, storage_path: Path) -> Prepared:
    """Data, probes and the trainable; every point's trial config is validated first; on a cluster
    of
    several nodes, the storage path must be one they all see."""
    from ray import tune

    cache_dir = launch_dir / ".collide"
    startup = Startup()
    started = time.perf_counter()
    points = grid_points(config)
    datasets = prepare_datasets(config, [p["seed"] for p in points], cache_dir / "prepared")
    dataset = datasets[points[0]["seed"]]
    base = base_trial_config(config, dataset.path.resolve(), cache_dir / "probes")
    data_paths = ({seed: str(d.path.resolve()) for seed, d in datasets.items()}
                  if config.data.vary_with_seed else {})
    warned: set[str] = set()  # each seed's data may warn alike: once is enough
    for seed, each in datasets.items():
        check_grid(config, each, base, [p for p in points if p["seed"] == seed], data_paths,
                   warned)
    startup.data_seconds = time.perf_counter() - started
    started = time.perf_counter()
    init_ray(config.address, config.resources.num_cpus)
    interrupts.reinstall()
    output.capture_trial_output()
    check_trial_fits(config.resources.cpus_per_trial, config.resources.gpus_per_trial)
    check_storage_shared(storage_path)
    for path in sorted({d.path.resolve() for d in datasets.values()}):
        check_prepared_shared(path)
    startup.ray_seconds = time.perf_counter() - started
    seeds = sorted({p["seed"] for p in points if get_strategy(p["strategy"]).needs_embeddings})
    probes = sweep_probes({seed: datasets[seed] for seed in seeds}, config.probe,
                          cache_dir / "probes", startup)
    print(startup.describe(), flush=True)
    for_trials = replace(config, tracking_uri=None)  # trials never see the tracking URI
    resources = {"cpu": config.resources.cpus_per_trial, "gpu": config.resources.gpus_per_trial}
    wrapped = tune.with_resources(
        tune.with_parameters(trainable, probes=probes, base=base, sweep=for_trials,
                             hooks=TrialHooks.from_environment(), data_paths=data_paths,
                             probe_seconds=dict(startup.probe_train_seconds)),
        resources)
    return Prepared(config, tracking_uri, points, sweep_fingerprint(config, list(datasets)),
                    min(int(d.manifest["split_sizes"]["train"]) for d in datasets.values()), base,
                    wrapped, startup)


def run_sweep(config: SweepConfig, launch_dir: str | Path | None = None, *, verbose: bool = False,
              command: str | None = None) -> SweepResult:
    """Run a whole sweep; returns how it ended, the trials table and the frontier (also in MLflow).

    It prints a progress line and one line per ended trial; Ray's own output goes to
    `<sweep dir>/ray-output.log` unless `verbose`. `command` (what started it) goes into the
    experiment's description.
    """
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig

    launch_dir = Path(launch_dir or Path.cwd()).resolve()
    config = absolute_paths(config, launch_dir)
    tracking_uri = config.tracking_uri or default_tracking_uri(launch_dir)
    check_tracking_uri(tracking_uri, create=True)
    if config.results_dir:  # a clash found now, not after every trial has run
        check_owned_files(Path(config.results_dir), "pareto", PARETO_FILES, option="results_dir")
    storage_path = Path(config.storage_path or launch_dir / ".collide" / "ray_results").resolve()
    check_storage_path(storage_path)
    with Interrupts() as interrupts, RayOutput(verbose) as output:
        prepared = prepare_sweep(config, launch_dir, tracking_uri, interrupts, output, storage_path)
        tracker = SweepTracker.start(tracking_uri, config.name, retry_s=config.tracking_retry_s,
                                     description=describe_sweep(config, prepared.fingerprint,
                                                                command))
        register(tracker)
        experiment_dir = storage_path / checked_run_id(tracker.parent_run_id)
        tracker.attach_journal(experiment_dir)

        def body() -> SweepResult:  # from here on, whatever stops the sweep ends the parent
            output.attach(experiment_dir)
            recorded = _recorded(config)
            tracker.write({"op": "log_params", "ref": "parent",
                           "params": param_texts(flatten(recorded))})
            tracker.write({"op": "log_text", "ref": "parent", "file": "sweep_config.yaml",
                           # loadable with --config
                           "text": yaml.safe_dump(recorded, sort_keys=False)})
            tracker.write({"op": "log_metrics", "ref": "parent", "metrics": [
                [key, value, int(time.time() * 1000), 0]
                for key, value in prepared.startup.metrics().items()]})
            tracker.write({"op": "set_tags", "ref": "parent", "tags": {
                EXPERIMENT_DIR_TAG: str(experiment_dir),
                "collide.tracking_uri": redact(tracking_uri),
                DATA_TAG: prepared.fingerprint}})
            param_space, tune_kwargs = _search(config, prepared.points, prepared.train_rows)
            # the classic table honours our trimmed columns
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
            reporter = TableReporter(parameter_columns={f"point/{k}": v
                                                        for k, v in PROGRESS_PARAMS.items()},
                                     metric_columns=PROGRESS_METRICS, max_report_frequency=15)
            callback = MlflowTrialCallback(tracker.parent_run_id,
                                           flatten(shared_params(prepared.base, config)),
                                           config.strategy_params)
            tuner = tune.Tuner(
                prepared.trainable, param_space=param_space,
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=config.resources.max_concurrent_trials,
                                            # no new process (and torch import) per trial
                                            reuse_actors=True,
                                            trial_name_creator=_trial_label,
                    trial_dirname_creator=_trial_label,
                                            **tune_kwargs),
                run_config=RunConfig(name=tracker.parent_run_id, storage_path=str(storage_path),
                                     callbacks=[callback, ProgressCallback(tracker.parent_run_id)],
                                     progress_reporter=reporter,
                                     failure_config=FailureConfig(max_failures=0),
                                     checkpoint_config=CheckpointConfig(num_to_keep=1), verbose=1),
            )
            return fit_and_finish(tuner, tracker, interrupts, prepared, experiment_dir, output)

        return guarded(body, tracker, interrupts, prepared, experiment_dir)


def shared_params(base: TrialConfig, config: SweepConfig) -> dict:
    """Params every trial run records: the trial config minus the point and the probe cache (and
    the data's path where each seed has its own data: the parent's config says how it varies)."""
    return {k: v for k, v in asdict(base).items()
            if k not in ("strategy", "compression", "rows", "dim", "seed", "out_dir", "cache_dir",
                         "mapper_params")
            and not (k == "data" and config.data.vary_with_seed)}


def _expected_points(config: SweepConfig, points: list[dict]) -> int:
    return (len(points) if config.search == "grid"
            else optuna_budget(config) * len(config.grid.seeds))


def guarded(body: Any, tracker: SweepTracker, interrupts: Interrupts, prepared: Prepared,
            experiment_dir: Path) -> SweepResult:
    """Run `body`; whatever stops it, the parent run and every open trial run get a final state."""
    expected = _expected_points(prepared.config, prepared.points)
    failed = True
    try:
        result = body()
        failed = False
        return result
    except SweepInterrupted as exc:
        return end_interrupted(tracker, prepared.config.name, exc.signal_name, expected,
                               experiment_dir)
    except BaseException as exc:
        log.error("sweep %s failed: %s", prepared.config.name, redact_text(str(exc)))
        for trial_id in tracker.open_trials():
            tracker.end_trial(trial_id, "killed")
        tracker.write({"op": "set_tags", "ref": "parent",
                       "tags": {"error": redact_text(str(exc))[-ERROR_TAG_CHARS:]}})
        tracker.end_sweep("FAILED", {}, "failed")
        raise
    finally:  # the MLflow writer thread ends with the sweep
        tracker.close(raise_error=not failed)


def fit_and_finish(tuner: Any, tracker: SweepTracker, interrupts: Interrupts, prepared: Prepared,
                   experiment_dir: Path, output: RayOutput) -> SweepResult:
    config = prepared.config
    expected = _expected_points(config, prepared.points)
    if output.path is not None:
        print(f"Ray's own output: {output.path} (collide sweep --verbose prints it here)",
              flush=True)
    try:
        interrupts.in_tune = True
        # verbose: Ray prints its own table instead of the progress line
        with nullcontext() if output.verbose else SweepProgress(tracker.parent_run_id, expected):
            # every MLflow write inside goes through tracker.write and its policy
            grid = tuner.fit()
    finally:
        interrupts.in_tune = False
    tracker.flush()  # the trials' writes, submitted to the writer thread, are all done
    if interrupts.interrupted:
        return end_interrupted(tracker, config.name, interrupts.signal_name, expected,
                               experiment_dir)
    num_failed = sum(1 for r in grid if r.error is not None)
    for trial_id in tracker.open_trials():  # Tune ended, so nothing is running any more
        tracker.end_trial(trial_id, "killed")
    base = SweepResult(config.name, tracker.parent_run_id, redact(tracker.tracking_uri),
                       "completed", expected,
                       len(tracker.completed), num_failed, experiment_dir,
                       experiment_id=tracker.experiment_id)
    if tracker.offline and not sync_now(tracker, experiment_dir):
        tracker.journal_op({"op": "finish_sweep", "ref": "parent", "experiment": config.name,
                            "results_dir": _results_dir(config, experiment_dir),
                            "num_points": expected})
        return replace(base, state="tracking_lost", message=tracker.offline_reason or "")
    result = finish(tracker.client, tracker.write, config.name, tracker.parent_run_id,
                    _results_dir(config, experiment_dir), expected, base)
    if interrupts.interrupted:  # a signal whose exception something on the way swallowed
        return end_interrupted(tracker, config.name, interrupts.signal_name, expected,
                               experiment_dir)
    if tracker.offline:  # the store went away while the sweep was being finished: not a success
        return replace(result, state="tracking_lost", message=tracker.offline_reason or "")
    return result


def _results_dir(config: SweepConfig, experiment_dir: Path) -> str:
    return str(Path(config.results_dir).resolve() if config.results_dir else experiment_dir)
