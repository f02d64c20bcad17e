"""The `collide` command line: a thin layer over the Python API.

`main(argv) -> int` so tests call it in-process. Exit codes: 0 success, 1 a sweep finished
with failed trials, 2 bad input (a usage error or a clear message from the API).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sweep.datasets import SOURCES, PreparedDataError, PreparedDataset, prepare
from sweep.options import add_dataclass_options, describe_dataclass, given_options

__all__ = ["main"]

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing error: printed as `collide: error: ...`, exit code 2."""


def _add_prepare(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("prepare", help="prepare a data source into a cached columnar directory",
                                 description="Prepare SOURCE once into --out; the same call again reuses it.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, cls in SOURCES.items():
        doc = sys.modules[cls.__module__].__doc__ or name
        sub = sources.add_parser(name, help=doc.strip().splitlines()[0], description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        add_dataclass_options(sub, cls.Config)
        sub.add_argument("--out", type=Path, default=None,
                         help="output directory (default: .collide/prepared/SOURCE-FINGERPRINT)")
        sub.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")


def _run_prepare(args: argparse.Namespace) -> int:
    cls = SOURCES[args.source]
    source = cls.from_params(**given_options(args, cls.Config))
    started = time.perf_counter()
    dataset = prepare(source, args.out, force=args.force)
    print(_describe_prepared(dataset, time.perf_counter() - started))
    return EXIT_OK


def _describe_prepared(dataset: PreparedDataset, seconds: float) -> str:
    m = dataset.manifest
    lines = [
        f"prepared {m['source']} at {dataset.path} ({seconds:.2f} s, fingerprint {m['fingerprint'][:12]})",
        f"  rows {m['num_rows']:,}: " + ", ".join(f"{k} {m['split_sizes'][k]:,}" for k in ("train", "val", "test"))
        + f"; label rate {m['label_rate']:.4f}; dense {len(m['dense'])}",
        f"  {'feature':<16} {'multi':>5} {'train vocab':>12} {'values':>12}",
    ]
    for f in m["features"]:
        lines.append(f"  {f['name']:<16} {'yes' if f['multi_valued'] else 'no':>5} {f['vocab_size']:>12,} {f['num_values']:>12,}")
    if m.get("report"):
        lines.append(f"  report: {m['report']}")
    return "\n".join(lines)


def _run_datasets(args: argparse.Namespace) -> int:
    for name, cls in SOURCES.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"{name}: {doc}")
        for option, default, text in describe_dataclass(cls.Config):
            print(f"  {option:<22} {text} [{default}]")
        print()
    return EXIT_OK


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train one DLRM variant end to end (no Ray, no MLflow)",
                                 description="Fit the mappers, train, evaluate and size one variant; writes "
                                 "metrics.json and one mapper bundle per feature to --out.")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared dataset directory (default: prepare the default synthetic data)")
    parser.add_argument("--strategy", default="hash", help="mapping strategy (default: hash)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--compression", type=float, default=None, help="rows = ceil(vocab / compression) (default: 16)")
    size.add_argument("--rows", type=int, default=None, help="explicit rows per feature")
    parser.add_argument("--dim", type=int, default=16, help="embedding dim (default: 16)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    parser.add_argument("--batch-size", type=int, default=2048, help="training batch size (default: 2048)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the trainer's)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--full-threshold", type=int, default=256,
                        help="features with vocab <= this keep a full table (default: 256)")
    parser.add_argument("--learned-min-count", type=int, default=20,
                        help="embedding strategies hash ids seen fewer times in training (default: 20)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="mapper parameter, e.g. --param hot_fraction=0.25 (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def _run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import yaml

    from models import TrainConfig
    from sweep.datasets import get_source
    from sweep.trial import TrialConfig, run_trial

    data = args.data or prepare(get_source("synthetic")).path
    params = {}
    for item in args.param:
        if "=" not in item:
            raise CliError(f"--param takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        params[key] = yaml.safe_load(value)
    compression = args.compression if args.compression is not None or args.rows is not None else 16.0
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, num_threads=args.threads)
    if args.lr is not None:
        train = replace(train, lr=args.lr)
    config = TrialConfig(data=str(Path(data).resolve()), strategy=args.strategy,
                         compression=None if args.strategy == "full" else compression,
                         rows=args.rows, dim=args.dim, seed=args.seed, mapper_params=params,
                         full_threshold=args.full_threshold, learned_min_count=args.learned_min_count, train=train,
                         cache_dir=str(Path(".collide/probes").resolve()), out_dir=str(args.out.resolve()))

    def on_epoch(epoch: int, metrics: dict) -> None:
        print(f"epoch {epoch}: train_loss {metrics.get('train_loss', float('nan')):.4f}  "
              f"val_logloss {metrics.get('val_logloss', float('nan')):.4f}  val_auc {metrics.get('val_auc', float('nan')):.4f}",
              flush=True)

    metrics = run_trial(config, on_epoch=on_epoch)
    print(format_metrics(metrics))
    print(f"wrote {args.out}/metrics.json and {args.out}/bundles/")
    return EXIT_OK


def format_metrics(metrics: dict) -> str:
    from sweep.frontier import format_bytes

    keys = ["val_logloss", "test_logloss", "test_auc", "test_ne", "test_accuracy", "constant_test_logloss",
            "bayes_test_logloss", "signal_captured", "collision_rate", "unseen_value_rate", "fallback_value_rate", "train_seconds",
            "total_seconds"]
    lines = [f"{'metric':<24}{'value':>14}"]
    lines += [f"{k:<24}{metrics[k]:>14.4f}" for k in keys if isinstance(metrics.get(k), (int, float))]
    for k in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes"):
        lines.append(f"{k:<24}{format_bytes(metrics[k]):>14}")
    if metrics.get("compression_ratio") is not None:
        lines.append(f"{'compression_ratio':<24}{metrics['compression_ratio']:>14.2f}")
    return "\n".join(lines)


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sweep", help="run a Ray Tune sweep; track it in MLflow; write the Pareto frontier",
                                 description="Exit code: 0 all trials finished, 1 some trials failed (their "
                                 "MLflow runs are FAILED with the error), 2 bad config or input.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default=None, help="shipped preset: smoke, quick (default), movielens, criteo")
    source.add_argument("--config", type=Path, default=None, help="YAML sweep config")
    parser.add_argument("--name", help="experiment name")
    parser.add_argument("--data-path", help="input path for the data source (movielens, criteo, table presets)")
    parser.add_argument("--strategies", help="comma-separated strategies")
    parser.add_argument("--compressions", help="comma-separated compression factors")
    parser.add_argument("--dims", help="comma-separated embedding dims")
    parser.add_argument("--seeds", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--search", choices=["grid", "optuna"], help="grid (default) or optuna multi-objective")
    parser.add_argument("--num-samples", type=int, help="optuna: trials to sample")
    parser.add_argument("--scheduler", choices=["none", "asha"], help="asha: early-stop weak trials (grid only)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs (and torch threads) per trial")
    parser.add_argument("--gpus-per-trial", type=float, help="GPU fraction per trial")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray (default: all)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--storage-path", help="Ray Tune storage path (default: ./.collide/ray_results)")
    parser.add_argument("--results-dir", help="also write pareto.csv/png/md here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key, e.g. --set train.lr=0.01 (repeatable)")


def _sweep_overrides(args: argparse.Namespace) -> dict:
    from sweep.config import merge, set_override

    def listed(text: str, kind: type) -> list:
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise CliError(f"expected comma-separated {kind.__name__} values, got {text!r}") from exc

    o: dict = {}
    plain = {"name": ("name",), "search": ("search",), "num_samples": ("num_samples",), "scheduler": ("scheduler",),
             "address": ("address",), "tracking_uri": ("tracking_uri",), "storage_path": ("storage_path",),
             "results_dir": ("results_dir",), "epochs": ("train", "epochs"),
             "cpus_per_trial": ("resources", "cpus_per_trial"), "gpus_per_trial": ("resources", "gpus_per_trial"),
             "num_cpus": ("resources", "num_cpus"), "data_path": ("data", "params", "path")}
    for arg, path in plain.items():
        value = getattr(args, arg)
        if value is not None:
            o = merge(o, _nest(path, value))
    for arg, kind in (("strategies", str), ("compressions", float), ("dims", int), ("seeds", int)):
        if getattr(args, arg) is not None:
            o = merge(o, {"grid": {arg: listed(getattr(args, arg), kind)}})
    for item in args.set:
        o = merge(o, set_override(item))
    return o


def _nest(path: tuple[str, ...], value: object) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value  # type: ignore[return-value]


def _run_sweep(args: argparse.Namespace) -> int:
    from sweep.config import file_values, load_config, preset_values
    from sweep.frontier import format_bytes
    from sweep.runner import run_sweep

    values = file_values(args.config) if args.config else preset_values(args.preset or "quick")
    config = load_config(values, _sweep_overrides(args))
    result = run_sweep(config)
    print(f"\nsweep {result.experiment}: {len(result.trials)} trials, {result.num_failed} failed; "
          f"MLflow parent run {result.parent_run_id} at {result.tracking_uri}")
    print(f"{'trial':<34}{'total_bytes':>12}{'val_logloss':>13}{'test_logloss':>14}")
    for row in result.frontier:
        test = row.get("test_logloss")
        print(f"{row['name']:<34}{format_bytes(row['total_bytes']):>12}{row['val_logloss']:>13.4f}"
              f"{(f'{test:.4f}' if test is not None else '-'):>14}")
    print("pareto files: " + ", ".join(str(p) for p in result.files.values()))
    return EXIT_FAILED_TRIALS if result.num_failed else EXIT_OK


def _add_mlflow_reader(commands: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text)
    parser.add_argument("--experiment", required=True, help="the sweep's name (its MLflow experiment)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--parent-run", help="a sweep's parent run id (default: the latest sweep)")
    return parser


def _run_pareto(args: argparse.Namespace) -> int:
    from sweep.api import pareto

    table, files = pareto(args.experiment, tracking_uri=args.tracking_uri, parent_run_id=args.parent_run,
                          out_dir=args.out)
    print(f"{sum(r['on_frontier'] for r in table)} of {len(table)} trials on the frontier; wrote "
          + ", ".join(str(p) for p in files.values()))
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from sweep.api import export

    if (args.max_bytes is None) == (args.max_val_loss is None):
        raise CliError("give exactly one of --max-bytes or --max-val-loss")
    out = export(args.experiment, args.out, tracking_uri=args.tracking_uri, max_bytes=args.max_bytes,
                 max_val_loss=args.max_val_loss, parent_run_id=args.parent_run)
    print(f"exported to {out} (load it with sweep.load_export({str(out)!r}))")
    return EXIT_OK


def _run_ui(args: argparse.Namespace) -> int:
    from sweep.tracking import default_tracking_uri
    from sweep.ui import serve_ui

    return serve_ui(args.tracking_uri or default_tracking_uri(), port=args.port, host=args.host)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collide",
        description="How far can your embedding tables shrink, and with which id-to-row mapping? "
        "Sweeps DLRM variants over mapping strategy x rows x dim x seed (Ray Tune + MLflow).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_prepare(commands)
    commands.add_parser("datasets", help="list the data sources and their options")
    _add_train(commands)
    _add_sweep(commands)
    pareto = _add_mlflow_reader(commands, "pareto", "recompute a sweep's Pareto frontier from MLflow alone")
    pareto.add_argument("--out", type=Path, default=None, help="output directory (default: ./NAME-pareto)")
    export = _add_mlflow_reader(commands, "export", "export the chosen frontier point's mapping for serving")
    limit = export.add_mutually_exclusive_group(required=True)
    limit.add_argument("--max-bytes", type=float, help="lowest val loss with total_bytes <= this")
    limit.add_argument("--max-val-loss", type=float, help="smallest model with val_logloss <= this")
    export.add_argument("--out", type=Path, required=True, help="output directory")
    ui = commands.add_parser("ui", help="serve the MLflow UI on the sweep's tracking store (127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    ui.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    return parser


_COMMANDS = {"prepare": _run_prepare, "datasets": _run_datasets, "train": _run_train, "sweep": _run_sweep,
             "pareto": _run_pareto, "export": _run_export, "ui": _run_ui}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="collide: %(message)s", force=True)
    try:
        return _COMMANDS[args.command](args)
    except (CliError, ValueError, TypeError, FileNotFoundError, PreparedDataError) as exc:
        if args.verbose:
            raise
        print(f"collide: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
