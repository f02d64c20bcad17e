"""`run_sweep(config)` and `resume_sweep(...)`: Ray Tune over strategy x compression x dim x seed.

Flow (driver): check the tracking URI (fails in seconds, before anything else); validate
the config; prepare the data (cached); start Ray; train the probe of every seed a learned
strategy needs, side by side as Ray tasks (cached; `sweep.tune.startup`); put the dataset
and probes in the object store once; run a Tuner whose trainable (`sweep.tune.trainable`)
reports after every epoch, on actors that Tune reuses from trial to trial; mirror everything into
MLflow from the driver (`sweep.tune.tracking`); finally read the trials back from MLflow
and write the Pareto frontier (csv, png, md) to the parent run and `results_dir`.

How a sweep ends (`SweepResult.state`, and the parent run's `collide.state` tag):
- "completed": every point ran (some may have failed: `num_failed`); parent FINISHED;
- "interrupted": SIGINT / SIGTERM; the running trials' runs and the parent are KILLED, no
  frontier is written; `collide sweep --resume PARENT` continues it;
- "tracking_lost": every trial ran but MLflow stayed unreachable; the records wait in the
  sweep's journal for `collide sync SWEEP_DIR`.

`resume_sweep` continues a sweep through Ray Tune's `Tuner.restore` from its experiment
directory (`<storage_path>/<parent run id>`): finished trials are not run again,
unfinished and failed ones are.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mappers import get_mapper
from sweep.config import SweepConfig, load_config
from sweep.datasets import PreparedDataset, default_out_dir, fingerprint, get_source, prepare
from sweep.frontier.configurations import ranked_rows
from sweep.frontier.pareto import frontier_table
from sweep.outputs import check_owned_files
from sweep.plain import plain
from sweep.tracking_uri import (
    check_tracking_uri,
    default_tracking_uri,
    redact,
    redact_text,
)
from sweep.trial import LEARNED, TrialConfig, kept_full, rows_at, small_data_note
from sweep.tune.callback import MlflowTrialCallback
from sweep.tune.cluster import check_storage_shared, init_ray
from sweep.tune.ending import SweepResult, end_interrupted, finish, sync_now, sync_sweep
from sweep.tune.interrupt import Interrupts, SweepInterrupted
from sweep.tune.journal import pending_journal
from sweep.tune.output import ProgressCallback, RayOutput, SweepProgress, TableReporter
from sweep.tune.points import grid_points, point_name, point_of
from sweep.tune.records import experiment_of, find_sweep, trial_rows
from sweep.tune.search import ConfigurationSearch, configurations
from sweep.tune.startup import Startup, sweep_probes
from sweep.tune.tracking import SweepTracker, flatten, param_texts, register
from sweep.tune.trainable import base_trial_config, in_memory, trainable, trial_config_for

__all__ = ["resume_sweep", "run_sweep"]

log = logging.getLogger(__name__)

PROGRESS_PARAMS = {"strategy": "strategy", "compression": "compression", "dim": "dim"}
PROGRESS_METRICS = {"epoch": "epoch", "val_logloss": "val_logloss", "total_bytes": "total_bytes"}
EXPERIMENT_DIR_TAG = "collide.experiment_dir"
DATA_TAG = "collide.data_fingerprint"
PATH_PARAMS = ("path", "schema_file", "extra_files")  # data source params that name files
PARETO_FILES = ("pareto.csv", "pareto.png", "pareto.md", "pareto-trials.csv")


def _recorded(config: SweepConfig) -> dict:
    """The config as recorded in MLflow: plain values, the tracking URI without credentials."""
    return plain({**asdict(config), "tracking_uri": redact(config.tracking_uri)})


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
    g = config.grid
    search = ConfigurationSearch(g.strategies, g.compressions, g.dims, g.seeds, config.samples,
                                 sampler_seed=int(g.seeds[0]))
    if config.samples > search.budget:
        log.warning("num_samples %d is more than the %d configurations of the grid (strategy x compression x dim): "
                    "the optuna search runs each of them once, %d trials with %d seed(s)", config.samples,
                    search.budget, search.budget * len(g.seeds), len(g.seeds))
    return {}, {"search_alg": search, "num_samples": search.budget * len(g.seeds)}


def _optuna_budget(config: SweepConfig) -> int:
    """Configurations the optuna search runs: num_samples, or all of the grid's if it holds fewer."""
    g = config.grid
    return min(config.samples, len(configurations(g.strategies, g.compressions, g.dims)))


def _trial_label(trial: Any) -> str:
    """Readable Tune trial names, e.g. `hash-c16-d8-s0_00003` (the suffix keeps them unique)."""
    return f"{point_name(point_of(trial.config))}_{trial.trial_id.rsplit('_', 1)[-1]}"


@dataclass
class _Prepared:
    """What both a new and a resumed sweep build before Ray Tune starts."""

    config: SweepConfig
    tracking_uri: str
    points: list[dict]
    fingerprint: str  # of the prepared data
    base: TrialConfig  # every trial's config, but for its point
    trainable: Any  # tune.with_resources(tune.with_parameters(trainable, ...))
    startup: Startup  # what the serial start took


def _prepare_sweep(config: SweepConfig, launch_dir: Path, tracking_uri: str, interrupts: Interrupts,
                   output: RayOutput, storage_path: Path) -> _Prepared:
    """Data, probes and the trainable; every point's trial config is validated first; on a cluster of
    several nodes, the storage path must be one they all see."""
    from ray import tune

    cache_dir = launch_dir / ".collide"
    startup = Startup()
    started = time.perf_counter()
    points = grid_points(config)
    source = get_source(config.data.source, **dict(config.data.params))
    dataset = prepare(source, config.data.prepared_dir or default_out_dir(source, cache_dir / "prepared"))
    base = base_trial_config(config, dataset.path.resolve(), cache_dir / "probes")
    for point in points:  # every point's config is valid before Ray starts
        trial_config_for(base, config, point, None)
    _check_mapping(config, dataset)
    _check_rows(config, dataset)
    _check_batch_size(config, dataset)
    dataset.test_windows(config.test_windows)  # refused now, naming the data, when its rows have no time order
    dataset = in_memory(dataset)
    startup.data_seconds = time.perf_counter() - started
    started = time.perf_counter()
    init_ray(config.address, config.resources.num_cpus)
    interrupts.reinstall()
    output.capture_trial_output()
    check_storage_shared(storage_path)
    startup.ray_seconds = time.perf_counter() - started
    seeds = sorted({p["seed"] for p in points if p["strategy"] in LEARNED})
    probes = sweep_probes(dataset, config.probe, seeds, cache_dir / "probes", startup)
    print(startup.describe(), flush=True)
    for_trials = replace(config, tracking_uri=None)  # trials never see the tracking URI
    resources = {"cpu": config.resources.cpus_per_trial, "gpu": config.resources.gpus_per_trial}
    wrapped = tune.with_resources(
        tune.with_parameters(trainable, dataset=dataset, probes=probes, base=base, sweep=for_trials),
        resources)
    return _Prepared(config, tracking_uri, points, dataset.fingerprint, base, wrapped, startup)


def _check_mapping(config: SweepConfig, dataset: PreparedDataset) -> None:
    """Refuse a grid whose non-full strategies would map no feature (every trial would be the full
    model); warn, naming them, when some features keep a full table."""
    strategies = [s for s in config.grid.strategies if s != "full"]
    threshold = config.model.full_threshold
    full = kept_full(dataset, threshold)
    if not strategies or not full:
        return
    if len(full) == len(dataset.feature_names):
        largest = max(full, key=full.get)
        raise ValueError(f"strategies {strategies} would map no feature: the largest train vocabulary is "
                         f"{full[largest]} ({largest}), and features with vocab <= model.full_threshold "
                         f"({threshold}) keep a full table, so every trial would train the full model. Lower it "
                         f"below {full[largest]}, e.g. --set model.full_threshold={max(0, full[largest] // 4)}")
    log.warning("%d of %d features keep a full table in every trial (train vocab <= model.full_threshold %d): %s",
                len(full), len(dataset.feature_names), threshold,
                ", ".join(f"{name} ({size})" for name, size in full.items()))


def _check_rows(config: SweepConfig, dataset: PreparedDataset) -> None:
    """Every mapped feature's table, rows = ceil(train vocab / compression), must suit its strategy
    (qr and double_hash need 2 rows or more): refused now, naming it, not in a failed trial."""
    mapped = {name: len(dataset.vocab[name].ids) for name in dataset.feature_names
              if name not in kept_full(dataset, config.model.full_threshold)}
    for strategy in (s for s in config.grid.strategies if s != "full"):
        params = dict(config.strategy_params.get(strategy, {}))
        for compression in config.grid.compressions:
            for name, vocab in mapped.items():
                rows = rows_at(vocab, compression)
                try:
                    get_mapper(strategy, num_rows=rows, **params)
                except ValueError as exc:
                    raise ValueError(f"strategy {strategy} at compression {compression:g} gives feature {name} "
                                     f"(train vocab {vocab}) {rows} row(s), which it refuses ({exc}); use smaller "
                                     f"compressions, or keep such features full with model.full_threshold >= "
                                     f"{vocab}") from None


def _check_batch_size(config: SweepConfig, dataset: PreparedDataset) -> None:
    note = small_data_note(int(dataset.manifest["split_sizes"]["train"]), config.train.batch_size)
    if note:
        log.warning("%s, in every trial", note)


def _absolute(config: SweepConfig, launch_dir: Path) -> SweepConfig:
    """Every path of the config made absolute, so the recorded config means the same on a resume
    from another working directory."""
    def absolute(value: Any) -> Any:
        return str((launch_dir / value).resolve()) if isinstance(value, str) and value else value

    params = dict(config.data.params)
    for key in PATH_PARAMS:
        if key in params:
            value = params[key]
            params[key] = [absolute(v) for v in value] if isinstance(value, (list, tuple)) else absolute(value)
    data = replace(config.data, params=params, prepared_dir=absolute(config.data.prepared_dir))
    return replace(config, data=data, results_dir=absolute(config.results_dir),
                   storage_path=absolute(config.storage_path))


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
    config = _absolute(config, launch_dir)
    tracking_uri = config.tracking_uri or default_tracking_uri(launch_dir)
    check_tracking_uri(tracking_uri)
    if config.results_dir:  # a clash found now, not after every trial has run
        check_owned_files(Path(config.results_dir), "pareto", PARETO_FILES, option="results_dir")
    storage_path = Path(config.storage_path or launch_dir / ".collide" / "ray_results").resolve()
    with Interrupts() as interrupts, RayOutput(verbose) as output:
        prepared = _prepare_sweep(config, launch_dir, tracking_uri, interrupts, output, storage_path)
        tracker = SweepTracker.start(tracking_uri, config.name, retry_s=config.tracking_retry_s,
                                     description=describe_sweep(config, prepared, command))
        experiment_dir = storage_path / tracker.parent_run_id
        tracker.attach_journal(experiment_dir)
        output.attach(experiment_dir)
        register(tracker)

        def body() -> SweepResult:
            recorded = _recorded(config)
            tracker.write({"op": "log_params", "ref": "parent", "params": param_texts(flatten(recorded))})
            tracker.write({"op": "log_text", "ref": "parent", "file": "sweep_config.yaml",
                           "text": yaml.safe_dump(recorded, sort_keys=False)})  # loadable with --config
            tracker.write({"op": "log_metrics", "ref": "parent", "metrics": [
                [key, value, int(time.time() * 1000), 0] for key, value in prepared.startup.metrics().items()]})
            tracker.write({"op": "set_tags", "ref": "parent", "tags": {
                EXPERIMENT_DIR_TAG: str(experiment_dir), "collide.tracking_uri": redact(tracking_uri),
                DATA_TAG: prepared.fingerprint}})
            param_space, tune_kwargs = _search(config, prepared.points)
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table honours our trimmed columns
            reporter = TableReporter(parameter_columns={f"point/{k}": v for k, v in PROGRESS_PARAMS.items()},
                                     metric_columns=PROGRESS_METRICS, max_report_frequency=15)
            callback = MlflowTrialCallback(tracker.parent_run_id, flatten(_shared_params(prepared.base)),
                                           config.strategy_params)
            tuner = tune.Tuner(
                prepared.trainable, param_space=param_space,
                tune_config=tune.TuneConfig(max_concurrent_trials=config.resources.max_concurrent_trials,
                                            reuse_actors=True,  # no new process (and torch import) per trial
                                            trial_name_creator=_trial_label, trial_dirname_creator=_trial_label,
                                            **tune_kwargs),
                run_config=RunConfig(name=tracker.parent_run_id, storage_path=str(storage_path),
                                     callbacks=[callback, ProgressCallback(tracker.parent_run_id)],
                                     progress_reporter=reporter,
                                     failure_config=FailureConfig(max_failures=0),
                                     checkpoint_config=CheckpointConfig(num_to_keep=1), verbose=1),
            )
            return _fit_and_finish(tuner, tracker, interrupts, prepared, experiment_dir, output)

        return _guarded(body, tracker, interrupts, prepared, experiment_dir)


def describe_sweep(config: SweepConfig, prepared: _Prepared, command: str | None) -> str:
    """The experiment's (and parent run's) description in the MLflow UI: the grid, the data, the command."""
    g = config.grid
    if config.search == "grid":
        size = (f"{len(g.strategies)} strategies x {len(g.compressions)} compressions x {len(g.dims)} dims x "
                f"{len(g.seeds)} seeds = {len(prepared.points)} trials (grid search)")
    else:
        size = (f"{_optuna_budget(config)} configurations sampled by Optuna from the grid below, each trained with "
                f"every seed")
    params = ", ".join(f"{k}={v}" for k, v in sorted(dict(config.data.params).items()))
    return "\n".join([
        f"collide sweep **{config.name}**, started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {size}.",
        "",
        f"- strategies: {', '.join(g.strategies)}",
        f"- compressions: {', '.join(f'{c:g}' for c in g.compressions)}; dims: "
        f"{', '.join(str(d) for d in g.dims)}; seeds: {', '.join(str(s) for s in g.seeds)}",
        f"- data: `{config.data.source}` ({params or 'defaults'}), prepared data {prepared.fingerprint[:12]}",
        f"- epochs: {config.train.epochs}, batch size {config.train.batch_size}, optimizer {config.train.optimizer}",
        f"- command: `{redact_text(command or 'sweep.run_sweep(config) (Python API)')}`",
        "",
        "Each nested run is one trial; the parent run holds pareto.csv, pareto.png, pareto.md and pareto-trials.csv.",
    ])


def _shared_params(base: TrialConfig) -> dict:
    """Params every trial run records: the trial config minus the point and the probe cache."""
    return {k: v for k, v in asdict(base).items() if k not in ("strategy", "compression", "rows", "dim", "seed",
                                                                "out_dir", "cache_dir", "mapper_params")}


def _expected_points(config: SweepConfig, points: list[dict]) -> int:
    return len(points) if config.search == "grid" else _optuna_budget(config) * len(config.grid.seeds)


def _guarded(body: Any, tracker: SweepTracker, interrupts: Interrupts, prepared: _Prepared,
             experiment_dir: Path) -> SweepResult:
    """Run `body`; whatever stops it, the parent run and every open trial run get a final state."""
    expected = _expected_points(prepared.config, prepared.points)
    try:
        return body()
    except SweepInterrupted as exc:
        return end_interrupted(tracker, prepared.config.name, exc.signal_name, expected, experiment_dir)
    except BaseException as exc:
        log.error("sweep %s failed: %s", prepared.config.name, redact_text(str(exc)))
        for trial_id in tracker.open_trials():
            tracker.end_trial(trial_id, "killed")
        tracker.write({"op": "set_tags", "ref": "parent", "tags": {"error": redact_text(str(exc))[-5000:]}})
        tracker.end_sweep("FAILED", {}, "failed")
        raise


def _fit_and_finish(tuner: Any, tracker: SweepTracker, interrupts: Interrupts, prepared: _Prepared,
                    experiment_dir: Path, output: RayOutput) -> SweepResult:
    config = prepared.config
    expected = _expected_points(config, prepared.points)
    if output.path is not None:
        print(f"Ray's own output: {output.path} (collide sweep --verbose prints it here)", flush=True)
    try:
        interrupts.in_tune = True
        # verbose: Ray prints its own table instead of the progress line
        with nullcontext() if output.verbose else SweepProgress(tracker.parent_run_id, expected):
            grid = tuner.fit()  # every MLflow write inside goes through tracker.write and its policy
    finally:
        interrupts.in_tune = False
    if interrupts.interrupted:
        return end_interrupted(tracker, config.name, interrupts.signal_name, expected, experiment_dir)
    num_failed = sum(1 for r in grid if r.error is not None)
    for trial_id in tracker.open_trials():  # Tune ended, so nothing is running any more
        tracker.end_trial(trial_id, "killed")
    base = SweepResult(config.name, tracker.parent_run_id, redact(tracker.tracking_uri), "completed", expected,
                       len(tracker.completed), num_failed, experiment_dir, experiment_id=tracker.experiment_id)
    if tracker.offline and not sync_now(tracker, experiment_dir):
        tracker.journal_op({"op": "finish_sweep", "ref": "parent", "experiment": config.name,
                            "results_dir": _results_dir(config, experiment_dir), "num_points": expected})
        return replace(base, state="tracking_lost", message=tracker.offline_reason or "")
    result = finish(tracker.client, tracker.write, config.name, tracker.parent_run_id,
                    _results_dir(config, experiment_dir), expected, base)
    if tracker.offline:  # the store went away while the sweep was being finished: not a success
        return replace(result, state="tracking_lost", message=tracker.offline_reason or "")
    return result


def _results_dir(config: SweepConfig, experiment_dir: Path) -> str:
    return str(Path(config.results_dir).resolve() if config.results_dir else experiment_dir)


def resume_sweep(experiment: str | None, parent_run_id: str | None = None, *, tracking_uri: str | None = None,
                 launch_dir: str | Path | None = None, storage_path: str | None = None,
                 overrides: dict | None = None, verbose: bool = False) -> SweepResult:
    """Continue a sweep (the latest of `experiment` unless `parent_run_id`) from its Ray Tune state.

    `overrides` may change only where it runs and writes: `address`, `results_dir`,
    `resources.num_cpus`; anything else is refused, since the stored sweep keeps its config.
    """
    from mlflow.tracking import MlflowClient
    from ray import tune

    _check_resume_overrides(overrides or {})
    launch_dir = Path(launch_dir or Path.cwd()).resolve()
    tracking_uri = tracking_uri or default_tracking_uri(launch_dir)
    check_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    if experiment is None:
        if parent_run_id is None:
            raise ValueError("resume needs the sweep's experiment name or its parent run id")
        experiment = experiment_of(client, parent_run_id)
    sweep = find_sweep(client, experiment, parent_run_id, completed=False)
    _refuse_live_driver(sweep.parent)
    stored = Path(client.download_artifacts(sweep.parent_run_id, "sweep_config.yaml"))
    values = yaml.safe_load(stored.read_text())
    values["tracking_uri"] = None  # recorded redacted; the URI in use is the one we found it with
    config = replace(load_config(values, overrides or {}), tracking_uri=tracking_uri)
    experiment_dir = Path(storage_path).resolve() / sweep.parent_run_id if storage_path else \
        Path(sweep.parent.data.tags.get(EXPERIMENT_DIR_TAG, launch_dir / ".collide" / "ray_results" /
                                        sweep.parent_run_id))
    if not (experiment_dir / "tuner.pkl").is_file():
        raise ValueError(f"sweep {sweep.parent_run_id}: no Ray Tune state at {experiment_dir} (tuner.pkl missing); "
                         "give --storage-path where its experiment directory lives")
    if pending_journal(experiment_dir) is not None:
        log.info("uploading the records this sweep stored while MLflow was unreachable")
        sync_sweep(experiment_dir, tracking_uri)
        sweep = find_sweep(client, experiment, sweep.parent_run_id, completed=False)
    done = _already_complete(sweep, experiment, experiment_dir, tracking_uri)
    if done is not None:
        return done
    recorded, now = sweep.parent.data.tags.get(DATA_TAG), fingerprint(get_source(config.data.source,
                                                                               **dict(config.data.params)))
    if recorded and recorded != now:
        raise ValueError(f"sweep {sweep.parent_run_id} trained on prepared data {recorded[:12]}, but its data "
                         f"source now gives {now[:12]} (an input file or parameter changed); resuming would mix "
                         "trials of two data sets. Start a new sweep instead")
    log.info("resuming %s from %s", sweep.describe(), experiment_dir)
    with Interrupts() as interrupts, RayOutput(verbose) as output:
        output.attach(experiment_dir)
        prepared = _prepare_sweep(config, launch_dir, tracking_uri, interrupts, output, experiment_dir.parent)
        tracker = SweepTracker.reopen(tracking_uri, sweep, retry_s=config.tracking_retry_s)
        register(tracker)
        tracker.attach_journal(experiment_dir)
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

        def body() -> SweepResult:
            # resume_errored keeps a failed trial's id (restart_errored would give it a new one, and the
            # failed attempt would count as another trial); without a checkpoint it trains from scratch
            tuner = tune.Tuner.restore(str(experiment_dir), trainable=prepared.trainable, resume_unfinished=True,
                                       resume_errored=True)
            return _fit_and_finish(tuner, tracker, interrupts, prepared, experiment_dir, output)

        return _guarded(body, tracker, interrupts, prepared, experiment_dir)


def _check_resume_overrides(overrides: dict) -> None:
    allowed = {"address", "results_dir", "resources"}
    refused = sorted(set(overrides) - allowed)
    refused += [f"resources.{k}" for k in overrides.get("resources", {}) if k != "num_cpus"]
    if refused:
        raise ValueError(f"a resumed sweep keeps its stored config; {refused} would have no effect "
                         "(allowed: address, results_dir, resources.num_cpus)")


def _already_complete(sweep: Any, experiment: str, experiment_dir: Path, tracking_uri: str) -> SweepResult | None:
    """A FINISHED sweep whose every trial completed has nothing to resume: say so, run nothing."""
    rows = trial_rows(sweep.runs)
    expected = int(sweep.parent.data.metrics.get("num_points", len(rows)))
    if sweep.parent.info.status != "FINISHED" or len(rows) < expected or any(r["excluded"] for r in rows):
        return None
    ranked = frontier_table(ranked_rows(rows)[0])
    return SweepResult(experiment, sweep.parent_run_id, redact(tracking_uri),
                       "completed", expected, len(rows), 0, experiment_dir, trials=frontier_table(rows),
                       frontier=[r for r in ranked if r["on_frontier"]], experiment_id=sweep.parent.info.experiment_id,
                       message=f"sweep {sweep.parent_run_id} had already completed: nothing to resume")


def _refuse_live_driver(parent: Any) -> None:
    """A RUNNING sweep whose driver is alive on this host must not get a second driver."""
    tags = parent.data.tags
    if parent.info.status != "RUNNING" or tags.get("collide.driver_host") != socket.gethostname():
        return
    pid = int(tags.get("collide.driver_pid", "0") or 0)
    if pid and pid != os.getpid() and Path(f"/proc/{pid}").exists():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if "python" in cmdline or "collide" in cmdline:
            raise ValueError(f"sweep {parent.info.run_id} is still running (driver pid {pid} on this host); "
                             "stop it first (Ctrl-C), then resume")
