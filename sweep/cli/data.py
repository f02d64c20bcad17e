"""`collide prepare`, `collide datasets`, `collide train` and `collide map`: data, single trials
and an export's map over a file; no Ray, no MLflow."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mappers import get_strategy
from models import ProbeConfig, TrainConfig
from sweep.cli.options import add_dataclass_options, describe_dataclass, given_options
from sweep.datasets import SOURCES, PreparedDataset, prepare
from sweep.datasets.dense import SOURCE_DEFAULT
from sweep.errors import EXIT_OK, CliError
from sweep.trial import ModelConfig, TrialConfig

__all__ = ["COMMANDS", "add_data_commands", "format_metrics"]

log = logging.getLogger(__name__)


def _default(cls: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def _add_prepare(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("prepare", help="prepare a data source into a cached columnar "
                                                 "directory",
                                 description="Prepare SOURCE once into --out; the same call again "
                                             "reuses it. An existing --out is replaced only if "
                                             "collide wrote it.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, cls in SOURCES.items():
        doc = sys.modules[cls.__module__].__doc__ or name
        sub = sources.add_parser(name, help=doc.strip().splitlines()[0], description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        add_dataclass_options(sub, cls.Config)
        sub.add_argument("--out", type=Path, default=None,
                         help="output directory (default: .collide/prepared/SOURCE-FINGERPRINT)")
        sub.add_argument("--force", action="store_true", help="rebuild even if a valid cache "
                                                              "exists")


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
        f"prepared {m['source']} at {dataset.path} ({seconds:.2f} s, fingerprint "
        f"{m['fingerprint'][:12]})",
        f"  rows {m['num_rows']:,}: "
        + ", ".join(f"{k} {m['split_sizes'][k]:,}" for k in ("train", "val", "test"))
        + f"; label rate {m['label_rate']:.4f}; dense {len(m['dense'])}",
        f"  {'feature':<16} {'multi':>5} {'train vocab':>12} {'values':>12}",
    ]
    for f in m["features"]:
        lines.append(f"  {f['name']:<16} {'yes' if f['multi_valued'] else 'no':>5} "
                     f"{f['vocab_size']:>12,} {f['num_values']:>12,}")
    transforms = [t for t in m.get("dense_transforms", []) if t["reason"] != SOURCE_DEFAULT]
    if transforms:
        lines.append("  dense transforms (statistics of the train split):")
        lines += [f"    {t['column']:<16} {t['kind']:<18} {t['reason']}" for t in transforms]
    if m.get("report"):
        lines.append(f"  report: {m['report']}")
    return "\n".join(lines)


def _run_datasets(args: argparse.Namespace) -> int:
    print("Options of `collide prepare SOURCE`. A list option takes comma-separated values "
          "(--dense a,b,c); in a sweep config they go under data.params as YAML (dense: [a, b, "
          "c]).\n")
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
    parser = commands.add_parser("train", help="train one DLRM variant end to end (no Ray, no "
                                               "MLflow)",
                                 description="Fit the mappers, train, evaluate and size one "
                                             "variant; writes metrics.json and one mapper bundle "
                                             "per feature to --out (a new or empty directory, or "
                                             "an earlier `collide train` output, replaced "
                                             "atomically). Every default is the sweep's.")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared dataset directory (default: prepare the default synthetic "
                             "data)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="mapper parameter, e.g. --param hot_fraction=0.25 (repeatable)")
    add_dataclass_options(parser, TrialConfig)
    add_dataclass_options(parser.add_argument_group("model"), ModelConfig)
    add_dataclass_options(parser.add_argument_group("training"), TrainConfig,
                          exclude=TRAIN_NOT_OPTIONS,
                          aliases={"num_threads": "--threads"})
    add_dataclass_options(parser.add_argument_group("probe (learned strategies)"), ProbeConfig,
                          prefix="probe-",
                          exclude=PROBE_NOT_OPTIONS)


# The trial's seed seeds training and the probe too; the probe runs with the trial's threads.
TRAIN_NOT_OPTIONS = ("seed",)
PROBE_NOT_OPTIONS = ("seed", "num_threads")


def _run_train(args: argparse.Namespace) -> int:
    import shutil
    from dataclasses import replace

    import yaml

    from sweep.datasets import get_source
    from sweep.outputs import check_replaceable, replace_dir, staging_dir
    from sweep.trial import run_trial

    check_replaceable(args.out, "train")
    params = {}
    for item in args.param:
        if "=" not in item:
            raise CliError(f"--param takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise CliError(f"--param {key}: the value {value!r} is not valid YAML "
                           f"({exc})") from None
    trial = given_options(args, TrialConfig)
    if not get_strategy(trial.get("strategy", _default(TrialConfig, "strategy"))).takes_compression:
        ignored = [f"--{k}" for k in ("compression", "rows") if trial.get(k) is not None]
        if ignored:
            log.warning("%s has no effect on strategy %s: its table has a row per training id",
                        " and ".join(ignored), trial["strategy"])
    elif "rows" in trial and "compression" not in trial:
        trial["compression"] = None  # explicit rows instead of the default compression
    try:  # options are checked before any data is prepared
        config = TrialConfig(data=str(args.data), mapper_params=params, **trial,
                             model=ModelConfig(**given_options(args, ModelConfig)),
                             train=TrainConfig(**given_options(args, TrainConfig)),
                             probe=ProbeConfig(**given_options(args, ProbeConfig, prefix="probe-")),
                             cache_dir=str(Path(".collide/probes").resolve()))
    except (TypeError, ValueError) as exc:  # a trainer or probe option models refused
        raise CliError(str(exc)) from None
    data = args.data or prepare(get_source("synthetic")).path
    config = replace(config, data=str(Path(data).resolve()))

    def on_epoch(epoch: int, metrics: dict) -> None:
        print(f"epoch {epoch}: train_loss {metrics.get('train_loss', float('nan')):.4f}  "
              f"val_logloss {metrics.get('val_logloss', float('nan')):.4f}  "
              f"val_auc {metrics.get('val_auc', float('nan')):.4f}", flush=True)

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

    keys = ["features_mapped", "batch_size", "val_logloss", "test_logloss", "test_auc", "test_ne",
            "test_accuracy", "constant_test_logloss",
            "bayes_test_logloss", "signal_captured", "collision_rate", "unseen_value_rate",
            "fallback_value_rate", "unused_row_share", "mean_ids_per_row", "train_seconds",
            "total_seconds"]
    lines = [f"{'metric':<24}{'value':>14}"]
    lines += [f"{k:<24}{metrics[k]:>14}" if isinstance(metrics[k], int)
              else f"{k:<24}{metrics[k]:>14.4f}"
              for k in keys if isinstance(metrics.get(k), (int, float))]
    for k in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes"):
        lines.append(f"{k:<24}{format_bytes(metrics[k]):>14}")
    if metrics.get("compression_ratio") is not None:
        lines.append(f"{'compression_ratio':<24}{metrics['compression_ratio']:>14.2f}")
    windows = sorted({int(k.split(".")[1]) for k in metrics if k.startswith("window.")})
    if windows:
        lines += ["",
                  f"{'test window':<12}{'rows':>9}{'unseen':>9}{'rare':>9}{'test_logloss':>14}"
                  f"{'constant':>10}"]
        for k in windows:
            w = {key.split(".", 2)[2]: value for key, value in metrics.items()
                 if key.startswith(f"window.{k}.")}
            lines.append(f"{k:<12}{int(w['rows']):>9}{w['unseen_value_rate']:>9.4f}"
                         f"{w['rare_value_rate']:>9.4f}{w['test_logloss']:>14.4f}"
                         f"{w['constant_test_logloss']:>10.4f}")
    stored = [p for p in ("fp16", "int8", "int4") if f"precision.{p}.total_bytes" in metrics]
    if stored:  # the same model with its tables stored at lower precision (no training)
        lines += ["",
                  f"{'tables in':<12}{'total_bytes':>14}{'val_logloss':>13}{'test_logloss':>14}",
                  f"{'fp32':<12}{format_bytes(metrics['total_bytes']):>14}"
                  f"{metrics['val_logloss']:>13.4f}{metrics['test_logloss']:>14.4f}"]
        for p in stored:
            lines.append(f"{p:<12}{format_bytes(metrics[f'precision.{p}.total_bytes']):>14}"
                         f"{metrics[f'precision.{p}.val_logloss']:>13.4f}"
                         f"{metrics[f'precision.{p}.test_logloss']:>14.4f}")
    return "\n".join(lines)


def _add_map(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "map", help="map a column of raw values in a Parquet or CSV file to rows, through an "
                    "export's map",
        description="Map a column of raw values, as the data holds them (strings, hex ids, "
                    "integers; a bag per row for a multi-valued feature), to embedding rows "
                    "through the map `collide export` wrote, a batch of values at a time. OUT has "
                    "one row per input row, in order: `row` (two-table strategies: `row_0`, "
                    "`row_1`), a list of rows for a multi-valued feature.")
    parser.add_argument("export", type=Path, help="a `collide export` directory")
    parser.add_argument("--input", type=Path, required=True, help="a .parquet, .csv or .tsv file")
    parser.add_argument("--column", required=True, help="the column of raw values to map")
    parser.add_argument("--feature", help="the export's feature whose map to apply (default: "
                                          "the column's name)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output .parquet or .csv: a new file, or one collide map wrote "
                             "(replaced once complete)")
    parser.add_argument("--batch-rows", type=int, default=None,
                        help="values mapped at a time, the bound on memory (default: 1048576)")


def _run_map(args: argparse.Namespace) -> int:
    from sweep.serving import MAP_BATCH_ROWS, map_column

    batch_rows = args.batch_rows if args.batch_rows is not None else MAP_BATCH_ROWS
    if batch_rows <= 0:
        raise CliError(f"--batch-rows must be a positive number of rows, got {batch_rows}")
    started = time.perf_counter()
    shown = sys.stderr.isatty()

    def progress(rows: int) -> None:
        if shown:
            print(f"\rmapped {rows:,} values", end="", file=sys.stderr, flush=True)
        else:
            log.info("mapped %d values", rows)

    summary = map_column(args.export, args.input, args.column, args.out, feature=args.feature,
                         batch_rows=batch_rows, progress=progress)
    if shown:
        print(file=sys.stderr)
    print(f"mapped {summary['rows']:,} values of {args.input} column {args.column!r} through "
          f"feature {summary['feature']!r} of {args.export} in {time.perf_counter() - started:.1f} "
          f"s; wrote {summary['out']}")
    return EXIT_OK


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    _add_prepare(commands)
    commands.add_parser("datasets", help="list the data sources and their options (list options "
                                         "take comma-separated values)")
    _add_train(commands)
    _add_map(commands)


COMMANDS = {"prepare": _run_prepare, "datasets": _run_datasets, "train": _run_train,
            "map": _run_map}
