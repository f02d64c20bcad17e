"""The `collide` commands that read a finished sweep back from MLflow: pareto, export, report, ui.

Each checks the tracking URI first, so an unreachable store fails in seconds (exit 2), and
uses the latest completed sweep of the experiment unless --parent-run names one.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from sweep.cli.common import add_tracking_uri, refuse_secret_argument
from sweep.errors import EXIT_OK, CliError

__all__ = ["COMMANDS", "add_reader_commands"]

log = logging.getLogger(__name__)


def _add_reader(commands: argparse._SubParsersAction, name: str,
                text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text + " Uses the latest completed "
                                                                     "sweep of the experiment "
                                                                     "unless --parent-run names "
                                                                     "one, and says which it "
                                                                     "used.")
    parser.add_argument("--experiment", required=True, help="the sweep's name (its MLflow "
                                                            "experiment)")
    add_tracking_uri(parser)
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

    refuse_secret_argument(args.tracking_uri)
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

    refuse_secret_argument(args.tracking_uri)
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
    print(f"exported to {out} (load it with sweep.load_export({str(out)!r}), or without collide "
          "with the numpy-only mappers/portable.py: docs/EXPORT.md)")
    return EXIT_OK


def _run_report(args: argparse.Namespace) -> int:
    from sweep.api import report

    refuse_secret_argument(args.tracking_uri)
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
    from sweep.tracking.ui import DEFAULT_HOST, DEFAULT_PORT, serve_ui
    from sweep.tracking.uri import default_tracking_uri

    refuse_secret_argument(args.tracking_uri)
    uri = args.tracking_uri or default_tracking_uri()
    if uri.startswith(("http://", "https://")) and (args.port, args.host) != (None, None):
        log.warning("--port and --host have no effect on a tracking server: it serves its own UI")
    return serve_ui(uri, port=args.port or DEFAULT_PORT, host=args.host or DEFAULT_HOST,
                    experiment=args.experiment)


def add_reader_commands(commands: argparse._SubParsersAction) -> None:
    pareto = _add_reader(commands, "pareto", "recompute a sweep's Pareto frontier from MLflow "
                                             "alone")
    pareto.add_argument("--out", type=Path, default=None,
                        help="output directory (default: ./NAME-pareto)")
    _add_per_trial(pareto, "rank")
    export = _add_reader(commands, "export", "export the chosen frontier point's mapping for "
                                             "serving")
    limit = export.add_mutually_exclusive_group(required=True)
    limit.add_argument("--max-bytes", type=float,
                       help="lowest val loss with total_bytes <= this (with several seeds: the "
                            "configuration with the lowest mean)")
    limit.add_argument("--max-val-loss", type=float,
                       help="smallest model with val_logloss <= this (with several seeds: the "
                            "configuration's mean val_logloss)")
    export.add_argument("--out", type=Path, required=True,
                        help="output directory: new, empty, or an earlier export (replaced "
                             "atomically)")
    _add_per_trial(export, "select from")
    report = _add_reader(commands, "report",
                         "write a sweep's evidence report from MLflow alone: the frontier with and "
                         "without the maps' bytes, strategies against hash at matched sizes (mean "
                         "and confidence interval over seeds, paired by seed), collision "
                         "statistics, and for a sweep with test_windows each map against hash "
                         "window by window (staleness)")
    report.add_argument("--out", type=Path, required=True,
                        help="output directory, e.g. results/NAME (its report files are "
                             "replaced; nothing else)")
    ui = commands.add_parser("ui", help="serve the MLflow UI on the sweep's tracking store "
                                        "(127.0.0.1) and print each sweep's runs-view URL")
    ui.add_argument("--experiment", help="print only this sweep's runs view (default: every "
                                         "sweep in the store)")
    from sweep.tracking.ui import DEFAULT_HOST, DEFAULT_PORT

    ui.add_argument("--port", type=int, default=None, help=f"port (default: {DEFAULT_PORT})")
    ui.add_argument("--host", default=None, help=f"bind address (default: {DEFAULT_HOST})")
    add_tracking_uri(ui)


COMMANDS = {"pareto": _run_pareto, "export": _run_export, "report": _run_report, "ui": _run_ui}
