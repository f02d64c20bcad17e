"""The `collide` commands that run or read sweeps: sweep (and --resume), sync, pareto, export,
report, ui.

Each checks the tracking URI first, so an unreachable store fails in seconds (exit 2).
A tracking URI that holds a credential is refused as a command-line argument: every user
of the machine can read process arguments. Put it in MLFLOW_TRACKING_URI, or use
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / MLFLOW_TRACKING_TOKEN. Everything
printed shows the URI redacted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from sweep.config import PRESETS
from sweep.errors import EXIT_FAILED_TRIALS, EXIT_OK, EXIT_TRACKING_LOST, CliError

__all__ = ["COMMANDS", "add_sweep_commands"]

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


def _add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                                               "or ./mlflow.db); one with a password must come "
                                               "through MLFLOW_TRACKING_URI instead")


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
    _add_tracking_uri(parser)
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


def _refuse_secret_argument(uri: str | None, option: str = "--tracking-uri") -> None:
    from sweep.tracking.uri import has_credentials, redact

    if uri and has_credentials(uri):
        raise CliError(f"{option} {redact(uri)} carries a credential, and process arguments are "
                       "visible to every user of this machine: set MLFLOW_TRACKING_URI (or "
                       "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / "
                       "MLFLOW_TRACKING_TOKEN) in the environment instead")


def _print_result(result: Any) -> int:
    from sweep.frontier.pareto import format_bytes
    from sweep.frontier.report import format_estimate
    from sweep.tune.interrupt import exit_code_for

    where = f"MLflow parent run {result.parent_run_id} at {result.tracking_uri}"
    if result.message and result.state == "completed":
        print(result.message)
    if result.state == "interrupted":
        print(f"\nsweep {result.experiment} INTERRUPTED by {result.signal_name}: "
              f"{result.num_finished} of {result.num_points} trials finished; the running ones "
              f"were stopped and their runs, and the parent run, are KILLED ({where}). No frontier "
              f"was written.\nResume with: collide sweep --resume {result.parent_run_id} --name "
              f"{result.experiment}")
        return exit_code_for(result.signal_name)
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
    _print_runs_view(result)
    return EXIT_FAILED_TRIALS if result.num_failed else EXIT_OK


def _print_runs_view(result: Any) -> None:
    from sweep.tracking.ui import runs_view_url

    if not result.experiment_id:
        return
    if result.tracking_uri.startswith(("http://", "https://")):
        print(f"MLflow runs view: {runs_view_url(result.tracking_uri, result.experiment_id)}")
    else:
        print(f"MLflow runs view: run `collide ui`, then open "
              f"{runs_view_url('http://127.0.0.1:5000', result.experiment_id)}")


def _run_sweep(args: argparse.Namespace) -> int:
    from sweep.config import file_values, load_config, preset_values
    from sweep.tune.resume import resume_sweep
    from sweep.tune.runner import run_sweep

    overrides = _sweep_overrides(args)
    verbose = bool(args.verbose or args.sweep_verbose)
    _refuse_secret_argument(args.tracking_uri)
    _refuse_secret_argument(overrides.get("tracking_uri"), "--set tracking_uri")
    if args.resume is not None:
        ignored = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                         if k not in RESUME_OPTIONS and v not in (None, [], False))
        # a parent run id names the sweep: a preset or config has no say
        if args.resume != "latest":
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

    _refuse_secret_argument(args.tracking_uri)
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


def _add_reader(commands: argparse._SubParsersAction, name: str,
                text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text + " Uses the latest completed "
                                                                     "sweep of the experiment "
                                                                     "unless --parent-run names "
                                                                     "one, and says which it "
                                                                     "used.")
    parser.add_argument("--experiment", required=True, help="the sweep's name (its MLflow "
                                                            "experiment)")
    _add_tracking_uri(parser)
    parser.add_argument("--parent-run", help="a sweep's parent run id (default: the latest "
                                             "completed sweep)")
    return parser


def _add_per_trial(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--per-trial", action="store_true",
                        help=f"{verb} single trials, not configurations. By default a sweep with "
                             "several seeds ranks each configuration (strategy x compression x "
                             "dim) by its mean over seeds, and export writes the bundles of its "
                             "median-val seed")


def _run_pareto(args: argparse.Namespace) -> int:
    from sweep.api import pareto

    _refuse_secret_argument(args.tracking_uri)
    table, files, used = pareto(args.experiment, tracking_uri=args.tracking_uri,
                                parent_run_id=args.parent_run,
                                out_dir=args.out, per_trial=args.per_trial)
    print(f"used {used.describe()}")
    what = "configurations (mean over seeds)" if table and "configuration" in table[0] else "trials"
    print(f"{sum(r['on_frontier'] for r in table)} of {len(table)} {what} on the frontier; wrote "
          + ", ".join(str(p) for p in files.values()))
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from sweep.api import export

    _refuse_secret_argument(args.tracking_uri)
    if (args.max_bytes is None) == (args.max_val_loss is None):
        raise CliError("give exactly one of --max-bytes or --max-val-loss")
    out = export(args.experiment, args.out, tracking_uri=args.tracking_uri,
                 max_bytes=args.max_bytes,
                 max_val_loss=args.max_val_loss, parent_run_id=args.parent_run,
                 per_trial=args.per_trial)
    manifest = json.loads((out / "export.json").read_text())
    selection = manifest.get("selection", {})
    if selection.get("ranked") == "configurations":
        ci = selection.get("val_logloss_ci95")
        print(f"chose configuration {selection['configuration']}: val_logloss "
              f"{selection['val_logloss_mean']:.4f}{f' +- {ci:.4f}' if ci is not None else ''} "
              f"over seeds {','.join(map(str, selection['seeds']))}; exported {manifest['trial']}, "
              "its median-val seed")
        if selection.get("note"):
            print(f"note: {selection['note']}")
    else:
        print(f"chose trial {manifest['trial']}")
    print(f"exported to {out} (load it with sweep.load_export({str(out)!r}))")
    return EXIT_OK


def _run_report(args: argparse.Namespace) -> int:
    from sweep.api import report

    _refuse_secret_argument(args.tracking_uri)
    command = "collide " + shlex.join(getattr(args, "argv", None) or sys.argv[1:])
    tables, files = report(args.experiment, args.out, tracking_uri=args.tracking_uri,
                           parent_run_id=args.parent_run,
                           command=command)
    verdicts: dict[str, int] = {}
    for row in tables["matched"]:
        verdicts[row["vs_hash_verdict"]] = verdicts.get(row["vs_hash_verdict"], 0) + 1
    print(f"{len(tables['configurations'])} configurations; frontier: "
          + (", ".join(s["strategy"] for s in tables["segments"]) or "none") + "; against hash at "
                                                                               "matched sizes: "
          + (", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "nothing to compare"))
    if tables["staleness"]:
        windows = sorted({r["window"] for r in tables["staleness"]})
        print(f"staleness: {len(windows)} test windows; staleness.csv gives each map against hash "
              "in each")
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return EXIT_OK


def _run_ui(args: argparse.Namespace) -> int:
    from sweep.tracking.ui import serve_ui
    from sweep.tracking.uri import default_tracking_uri

    _refuse_secret_argument(args.tracking_uri)
    return serve_ui(args.tracking_uri or default_tracking_uri(), port=args.port, host=args.host,
                    experiment=args.experiment)


def add_sweep_commands(commands: argparse._SubParsersAction) -> None:
    _add_sweep(commands)
    sync = commands.add_parser("sync", help="upload a sweep's records stored while MLflow was "
                                            "unreachable",
                               description="Replay the tracking journal of a sweep (printed by "
                                           "`collide sweep` when it lost MLflow) into the tracking "
                                           "store, then write its frontier.")
    sync.add_argument("sweep_dir", type=Path, help="the sweep's directory (<storage_path>/<parent "
                                                   "run id>)")
    _add_tracking_uri(sync)
    pareto = _add_reader(commands, "pareto", "recompute a sweep's Pareto frontier from MLflow "
                                             "alone")
    pareto.add_argument("--out", type=Path, default=None, help="output directory (default: "
                                                               "./NAME-pareto)")
    _add_per_trial(pareto, "rank")
    export = _add_reader(commands, "export", "export the chosen frontier point's mapping for "
                                             "serving")
    limit = export.add_mutually_exclusive_group(required=True)
    limit.add_argument("--max-bytes", type=float, help="lowest val loss with total_bytes <= this "
                                                       "(with several seeds: the configuration "
                                                       "with the lowest mean)")
    limit.add_argument("--max-val-loss", type=float, help="smallest model with val_logloss <= this "
                                                          "(with several seeds: the "
                                                          "configuration's mean val_logloss)")
    export.add_argument("--out", type=Path, required=True,
                        help="output directory: new, empty, or an earlier export (replaced "
                             "atomically)")
    _add_per_trial(export, "select from")
    report = _add_reader(commands, "report", "write a sweep's evidence report from MLflow alone: "
                                             "the frontier with and without the maps' bytes, "
                                             "strategies against hash at matched sizes (mean and "
                                             "confidence interval over seeds, paired by seed), "
                                             "collision statistics, and for a sweep with "
                                             "test_windows each map against hash window by window "
                                             "(staleness)")
    report.add_argument("--out", type=Path, required=True,
                        help="output directory, e.g. results/NAME (its report files are replaced; "
                             "nothing else)")
    ui = commands.add_parser("ui", help="serve the MLflow UI on the sweep's tracking store "
                                        "(127.0.0.1) and print each sweep's runs-view URL")
    ui.add_argument("--experiment", help="print only this sweep's runs view (default: every sweep "
                                         "in the store)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    _add_tracking_uri(ui)


COMMANDS = {"sweep": _run_sweep, "sync": _run_sync, "pareto": _run_pareto, "export": _run_export,
            "report": _run_report,
            "ui": _run_ui}
