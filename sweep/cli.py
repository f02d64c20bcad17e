"""The `collide` command line: a thin layer over the Python API.

`main(argv) -> int` so tests call it in-process. Exit codes (README, "Exit codes"):

    0    success
    1    a sweep completed, but some of its trials failed (their MLflow runs are FAILED)
    2    could not run as asked: bad input or config, an output directory collide does not
         own, an unreachable tracking store, a file or disk error; nothing was reported done
    3    the sweep's trials ran, but MLflow stayed unreachable: `collide sync DIR` uploads them
    4    an internal error (a bug in collide): the traceback is printed
    130  interrupted by SIGINT (143: SIGTERM); `collide sweep --resume` continues a sweep
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from sweep.datasets import SOURCES, PreparedDataset, prepare
from sweep.datasets.dense import SOURCE_DEFAULT
from sweep.options import add_dataclass_options, describe_dataclass, given_options
from sweep.trial import FULL_THRESHOLD

__all__ = ["CliError", "main"]

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_USAGE, EXIT_TRACKING_LOST, EXIT_INTERNAL = 0, 1, 2, 3, 4


class CliError(Exception):
    """A user-facing error: printed as `collide: error: ...`, exit code 2."""


def _add_prepare(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("prepare", help="prepare a data source into a cached columnar directory",
                                 description="Prepare SOURCE once into --out; the same call again reuses it. "
                                 "An existing --out is replaced only if collide wrote it.")
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
    transforms = [t for t in m.get("dense_transforms", []) if t["reason"] != SOURCE_DEFAULT]
    if transforms:
        lines.append("  dense transforms (statistics of the train split):")
        lines += [f"    {t['column']:<16} {t['kind']:<18} {t['reason']}" for t in transforms]
    if m.get("report"):
        lines.append(f"  report: {m['report']}")
    return "\n".join(lines)


def _run_datasets(args: argparse.Namespace) -> int:
    print("Options of `collide prepare SOURCE`. A list option takes comma-separated values "
          "(--dense a,b,c); in a sweep config they go under data.params as YAML (dense: [a, b, c]).\n")
    for name, cls in SOURCES.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"{name}: {doc}")
        for option, default, text in describe_dataclass(cls.Config):
            print(f"  {option:<28} {text} [{default}]")
        for key, text in getattr(cls, "SCHEMA_FILE_KEYS", ()):
            if key == "":
                print(f"  {text}")
            else:
                print(f"    {key:<26} {text}")
        print()
    return EXIT_OK


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train one DLRM variant end to end (no Ray, no MLflow)",
                                 description="Fit the mappers, train, evaluate and size one variant; writes "
                                 "metrics.json and one mapper bundle per feature to --out (a new or empty "
                                 "directory, or an earlier `collide train` output, replaced atomically).")
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
    parser.add_argument("--full-threshold", type=int, default=FULL_THRESHOLD,
                        help=f"features with vocab <= this keep a full table (default: {FULL_THRESHOLD})")
    parser.add_argument("--learned-min-count", type=int, default=20,
                        help="embedding strategies hash ids seen fewer times in training (default: 20)")
    parser.add_argument("--test-windows", type=int, default=1, metavar="K",
                        help="also evaluate on K consecutive time windows of the test split; needs time-ordered "
                             "data (default: 1, the whole test split)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="mapper parameter, e.g. --param hot_fraction=0.25 (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def _run_train(args: argparse.Namespace) -> int:
    import shutil
    from dataclasses import replace

    import yaml

    from models import TrainConfig
    from sweep.datasets import get_source
    from sweep.outputs import check_replaceable, replace_dir, staging_dir
    from sweep.trial import TrialConfig, run_trial

    check_replaceable(args.out, "train")
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
                         full_threshold=args.full_threshold, learned_min_count=args.learned_min_count,
                         test_windows=args.test_windows, train=train,
                         cache_dir=str(Path(".collide/probes").resolve()))

    def on_epoch(epoch: int, metrics: dict) -> None:
        print(f"epoch {epoch}: train_loss {metrics.get('train_loss', float('nan')):.4f}  "
              f"val_logloss {metrics.get('val_logloss', float('nan')):.4f}  val_auc {metrics.get('val_auc', float('nan')):.4f}",
              flush=True)

    staging = staging_dir(args.out)
    try:
        metrics = run_trial(replace(config, out_dir=str(staging)), on_epoch=on_epoch)
        replace_dir(staging, args.out, "train")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(format_metrics(metrics))
    print(f"wrote {args.out}/metrics.json and {args.out}/bundles/")
    return EXIT_OK


def format_metrics(metrics: dict) -> str:
    from sweep.frontier.pareto import format_bytes

    keys = ["features_mapped", "batch_size", "val_logloss", "test_logloss", "test_auc", "test_ne", "test_accuracy", "constant_test_logloss",
            "bayes_test_logloss", "signal_captured", "collision_rate", "unseen_value_rate", "fallback_value_rate", "train_seconds",
            "total_seconds"]
    lines = [f"{'metric':<24}{'value':>14}"]
    lines += [f"{k:<24}{metrics[k]:>14}" if isinstance(metrics[k], int) else f"{k:<24}{metrics[k]:>14.4f}"
              for k in keys if isinstance(metrics.get(k), (int, float))]
    for k in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes"):
        lines.append(f"{k:<24}{format_bytes(metrics[k]):>14}")
    if metrics.get("compression_ratio") is not None:
        lines.append(f"{'compression_ratio':<24}{metrics['compression_ratio']:>14.2f}")
    windows = sorted({int(k.split(".")[1]) for k in metrics if k.startswith("window.")})
    if windows:
        lines += ["", f"{'test window':<12}{'rows':>9}{'unseen':>9}{'rare':>9}{'test_logloss':>14}{'constant':>10}"]
        for k in windows:
            w = {key.split(".", 2)[2]: value for key, value in metrics.items() if key.startswith(f"window.{k}.")}
            lines.append(f"{k:<12}{int(w['rows']):>9}{w['unseen_value_rate']:>9.4f}{w['rare_value_rate']:>9.4f}"
                         f"{w['test_logloss']:>14.4f}{w['constant_test_logloss']:>10.4f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from sweep.cli_sweep import add_mlflow_commands

    parser = argparse.ArgumentParser(
        prog="collide",
        description="How far can your embedding tables shrink, and with which id-to-row mapping? "
        "Sweeps DLRM variants over mapping strategy x rows x dim x seed (Ray Tune + MLflow).",
        epilog="Exit codes: 0 ok, 1 some trials failed, 2 bad input or unreachable service, "
        "3 MLflow lost during a sweep (collide sync), 4 internal error, 130/143 interrupted.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_prepare(commands)
    commands.add_parser("datasets", help="list the data sources and their options (list options take "
                        "comma-separated values)")
    _add_train(commands)
    add_mlflow_commands(commands)
    return parser


def _tracking_uri_in_use(args: argparse.Namespace) -> str | None:
    return getattr(args, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")


def _handled(exc: BaseException) -> bool:
    """Errors that mean "could not run as asked" (exit 2) rather than a bug in collide."""
    if isinstance(exc, (CliError, ValueError, TypeError, OSError, EOFError)):
        return True
    return type(exc).__module__.startswith("mlflow")  # MlflowException and kin: the store said no


def main(argv: Sequence[str] | None = None) -> int:
    from sweep.tracking_uri import redact_text

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what started it, for the sweep's description
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="collide: %(message)s", force=True)
    from sweep.cli_sweep import COMMANDS
    from sweep.tune.interrupt import SweepInterrupted, exit_code_for

    commands = {"prepare": _run_prepare, "datasets": _run_datasets, "train": _run_train, **COMMANDS}
    try:
        return commands[args.command](args)
    except (SweepInterrupted, KeyboardInterrupt) as exc:
        name = getattr(exc, "signal_name", "SIGINT")
        print(f"collide: interrupted by {name}; nothing was reported done", file=sys.stderr)
        return exit_code_for(name)
    except Exception as exc:  # noqa: BLE001 - every error ends in one clear line and a documented code
        uri = _tracking_uri_in_use(args)
        if not _handled(exc):
            print(redact_text(traceback.format_exc(), uri), file=sys.stderr)
            print(f"collide: internal error: {type(exc).__name__}: {redact_text(str(exc), uri)} "
                  "(this is a bug in collide; please report it)", file=sys.stderr)
            return EXIT_INTERNAL
        if args.verbose:
            print(redact_text(traceback.format_exc(), uri), file=sys.stderr)
        text = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.filename}: {exc.strerror or exc}"
        print(f"collide: error: {redact_text(text, uri)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
