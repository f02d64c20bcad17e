"""The `collide` commands that run a sweep: sweep (and --resume), and sync.

The tracking URI is checked first, so an unreachable store fails in seconds (exit 2); one
that holds a credential is refused as an argument (`sweep.cli.common`).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from sweep.cli.common import add_tracking_uri, print_runs_view, refuse_secret_argument
from sweep.config import PRESETS
from sweep.errors import EXIT_FAILED_TRIALS, EXIT_OK, EXIT_TRACKING_LOST, CliError

__all__ = ["COMMANDS", "add_sweep_commands"]

log = logging.getLogger(__name__)

# Sweep options that still mean something when resuming (the rest of the config is the stored one).
RESUME_OPTIONS = ("name", "tracking_uri", "address", "num_cpus", "storage_path", "results_dir",
                  "resume", "verbose",
                  "command", "preset", "config", "sweep_verbose", "argv")
PLAIN_OPTIONS = {"name": ("name",), "search": ("search",), "num_samples": ("num_samples",),
                 "scheduler": ("scheduler",), "address": ("address",),
                 "tracking_uri": ("tracking_uri",),
                 "storage_path": ("storage_path",), "results_dir": ("results_dir",),
                 "epochs": ("train", "epochs"),
                 "cpus_per_trial": ("resources", "cpus_per_trial"),
                 "gpus_per_trial": ("resources", "gpus_per_trial"),
                 "num_cpus": ("resources", "num_cpus"), "data_path": ("data", "params", "path")}
LIST_OPTIONS = (("strategies", str), ("compressions", float), ("dims", int), ("seeds", int))




def _add_sweep(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sweep", help="run a Ray Tune sweep; track it in MLflow; write the Pareto frontier",
        description="Exit code: 0 all trials finished, 1 some trials failed (their MLflow runs are "
                    "FAILED), 2 bad config or input, 3 MLflow lost (collide sync), 130/143 "
                    "interrupted (collide sweep --resume).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default=None, help=f"shipped preset: {', '.join(PRESETS)} "
                                                       "(default: quick)")
    source.add_argument("--config", type=Path, default=None, help="YAML sweep config")
    parser.add_argument("--resume", nargs="?", const="latest", default=None,
                        metavar="PARENT_RUN_ID",
                        help="continue an interrupted sweep: the latest one of --name (or of the "
                             "preset), or the one with this parent run id; finished trials are not "
                             "run again")
    parser.add_argument("--name", help="experiment name")
    parser.add_argument("--data-path", help="input path for the data source (movielens, criteo, "
                                            "table presets)")
    parser.add_argument("--strategies", help="comma-separated strategies")
    parser.add_argument("--compressions", help="comma-separated compression factors")
    parser.add_argument("--dims", help="comma-separated embedding dims")
    parser.add_argument("--seeds", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--search", choices=["grid", "optuna"], help="grid (default) or optuna "
                                                                     "multi-objective")
    parser.add_argument("--num-samples", type=int, help="optuna: configurations to sample "
                                                        "(strategy x compression x dim); each runs "
                                                        "once per seed, none twice (default 6)")
    parser.add_argument("--scheduler", choices=["none", "asha"], help="asha: early-stop weak "
                                                                      "trials (grid only)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs (and torch threads) per trial")
    parser.add_argument("--gpus-per-trial", type=float, help="GPU fraction per trial")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray (default: all)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local "
                                          "Ray)")
    add_tracking_uri(parser)
    parser.add_argument("--storage-path", help="Ray Tune storage path (default: "
                                               "./.collide/ray_results)")
    parser.add_argument("--results-dir", help="also write pareto.csv/png/md here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key, e.g. --set train.lr=0.01 (repeatable)")
    parser.add_argument("--verbose", dest="sweep_verbose", action="store_true",
                        help="print Ray's own output (its trial table, checkpoint lines, trial "
                             "logs) here instead of the progress line; by default it goes to "
                             "ray-output.log in the sweep's directory")


def _nest(path: tuple[str, ...], value: object) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value  # type: ignore[return-value]


def _sweep_overrides(args: argparse.Namespace) -> dict:
    from sweep.config import merge, set_override

    def listed(text: str, kind: type) -> list:
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise CliError(f"expected comma-separated {kind.__name__} values, got "
                           f"{text!r}") from exc

    o: dict = {}
    for arg, path in PLAIN_OPTIONS.items():
        value = getattr(args, arg)
        if value is not None:
            o = merge(o, _nest(path, value))
    for arg, kind in LIST_OPTIONS:
        if getattr(args, arg) is not None:
            o = merge(o, {"grid": {arg: listed(getattr(args, arg), kind)}})
    for item in args.set:
        o = merge(o, set_override(item))
    return o




def _print_result(result: Any) -> int:
    from sweep.frontier.pareto import format_bytes
    from sweep.frontier.report import format_estimate
    from sweep.tune.interrupt import exit_code_for

    where = f"MLflow parent run {result.parent_run_id} at {result.tracking_uri}"
    if result.message and result.state == "completed":
        print(result.message)
    if result.state == "interrupted":
        code = exit_code_for(result.signal_name)
        print(f"\nsweep {result.experiment} INTERRUPTED by {result.signal_name} (exit {code}): "
              f"{result.num_finished} of {result.num_points} trials finished; the running ones "
              f"were stopped and their runs, and the parent run, are KILLED ({where}). No frontier "
              f"was written.\nResume with: collide sweep --resume {result.parent_run_id} --name "
              f"{result.experiment}")
        return code
    if result.state == "tracking_lost":
        print(f"\nsweep {result.experiment}: every trial ran, but MLflow became unreachable "
              f"({result.message}). Nothing is lost: the records wait in "
              f"{result.experiment_dir}/tracking-journal.\nOnce the tracking server is back, "
              f"upload them (and the frontier) with: collide sync {result.experiment_dir}")
        return EXIT_TRACKING_LOST
    print(f"\nsweep {result.experiment}: {len(result.trials)} trials, {result.num_finished} "
          f"completed, {result.num_failed} failed; {where}")
    excluded = [row for row in result.trials if row.get("excluded")]
    for row in excluded:
        print(f"  not ranked: {row['name']}: {row['excluded']}")
    if result.frontier and "configuration" in result.frontier[0]:
        print("frontier over configurations: mean over seeds +- 95% CI")
        print(f"{'configuration':<30}{'seeds':>7}{'total_bytes':>12}{'val_logloss':>20}"
              f"{'test_logloss':>20}")
        for row in result.frontier:
            print(f"{row['configuration']:<30}{row['n_seeds']:>7}"
                  f"{format_bytes(row['total_bytes']):>12}"
                  f"{format_estimate(row, 'val_logloss', missing='-'):>20}"
                  f"{format_estimate(row, 'test_logloss', missing='-'):>20}")
    else:
        print(f"{'trial':<34}{'total_bytes':>12}{'val_logloss':>13}{'test_logloss':>14}")
        for row in result.frontier:
            test = row.get("test_logloss")
            print(f"{row['name']:<34}{format_bytes(row['total_bytes']):>12}"
                  f"{row['val_logloss']:>13.4f}"
                  f"{(f'{test:.4f}' if test is not None else '-'):>14}")
    print("pareto files: " + ", ".join(str(p) for p in result.files.values()) + " (also artifacts "
                                                                                "of the parent "
                                                                                "run)")
    if result.experiment_id:
        print_runs_view(result.tracking_uri, result.experiment_id)
    return EXIT_FAILED_TRIALS if result.num_failed else EXIT_OK




def _run_sweep(args: argparse.Namespace) -> int:
    from sweep.config import file_values, load_config, preset_values
    from sweep.tune.resume import resume_sweep
    from sweep.tune.runner import run_sweep

    overrides = _sweep_overrides(args)
    verbose = bool(args.verbose or args.sweep_verbose)
    refuse_secret_argument(args.tracking_uri)
    refuse_secret_argument(overrides.get("tracking_uri"), "--set tracking_uri")
    if args.resume is not None:
        ignored = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                         if k not in RESUME_OPTIONS and v not in (None, [], False))
        # a parent run id or --name names the sweep: a preset or config then has no say
        if args.resume != "latest" or args.name is not None:
            ignored += [f"--{k}" for k in ("preset", "config") if getattr(args, k) is not None]
        if ignored:
            raise CliError("--resume continues the sweep as it was configured; "
                           f"{', '.join(ignored)} would have no effect. Drop them (allowed with "
                           "--resume: --name, --tracking-uri, --address, --num-cpus, "
                           "--storage-path, --results-dir)")
        name = args.name
        if name is None and args.resume == "latest":
            values = (file_values(args.config) if args.config
                      else preset_values(args.preset or "quick"))
            name = values.get("name", "collide")
            source = (f"--config {args.config}" if args.config
                      else f"preset {args.preset or 'quick'}")
            log.info("resuming the latest sweep of experiment %r (the name in %s); its stored "
                     "config is what runs", name, source)
        keep = {k: v for k, v in overrides.items() if k in ("address", "results_dir", "resources")}
        result = resume_sweep(name, None if args.resume == "latest" else args.resume,
                              tracking_uri=args.tracking_uri, storage_path=args.storage_path,
                              overrides=keep,
                              verbose=verbose)
        return _print_result(result)
    values = file_values(args.config) if args.config else preset_values(args.preset or "quick")
    command = "collide " + shlex.join(getattr(args, "argv", None) or sys.argv[1:])
    return _print_result(run_sweep(load_config(values, overrides), verbose=verbose,
                                   command=command))


def _run_sync(args: argparse.Namespace) -> int:
    from sweep.tune.ending import sync_sweep

    refuse_secret_argument(args.tracking_uri)
    result = sync_sweep(args.sweep_dir, args.tracking_uri)
    if result is None:
        print(f"{args.sweep_dir}: its tracking journal was already uploaded; nothing to do")
        return EXIT_OK
    print(f"uploaded the records of sweep {result.experiment} (parent run {result.parent_run_id}) "
          f"to {result.tracking_uri}")
    if result.state != "completed":
        print(f"the sweep itself had not completed ({result.state}): {result.message}. Continue it "
              f"with: collide sweep --resume {result.parent_run_id} --name {result.experiment}")
        return EXIT_OK
    print("pareto files: " + ", ".join(str(p) for p in result.files.values()))
    return EXIT_FAILED_TRIALS if result.num_failed else EXIT_OK












def add_sweep_commands(commands: argparse._SubParsersAction) -> None:
    _add_sweep(commands)
    sync = commands.add_parser("sync", help="upload a sweep's records stored while MLflow was "
                                            "unreachable",
                               description="Replay the tracking journal of a sweep (printed by "
                                           "`collide sweep` when it lost MLflow) into the tracking "
                                           "store, then write its frontier.")
    sync.add_argument("sweep_dir", type=Path,
                      help="the sweep's directory (<storage_path>/<parent run id>)")
    add_tracking_uri(sync)


COMMANDS = {"sweep": _run_sweep, "sync": _run_sync}
