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
    return parser


_COMMANDS = {"prepare": _run_prepare, "datasets": _run_datasets}


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
