"""Fair tuning, chosen on validation: the summary of results/tuning/run.sh.

    python results/tuning/summary.py --lrs 3e-4,1e-3,3e-3,1e-2 --out results/tuning/summary.md

Reads the trials.csv of each tuning sweep's `collide report` (results/tuning/tune-<data>-lr-<lr>/:
every trial's validation and test logloss per seed, its best epoch and its seconds) and writes
summary.md and summary.csv. Per dataset and configuration (strategy x compression, dim 16, fp32):

- the chosen lr: the one of lowest mean validation logloss over the seeds (test is never used
  to choose), and the mean epoch validation chose within it (early stopping, patience 1);
- the chosen lr's test logloss (mean +- 95% CI over the seeds);
- `tuned vs hash`: its test logloss minus the tuned hash's at the same compression, paired by
  seed (each seed is its own data set or split), mean +- 95% CI, the two-sided p, and Holm's
  adjustment over the dataset's cells; and `at lr 1e-3`: the same difference when every
  strategy keeps lr 1e-3 (the untuned comparison, same epochs), for contrast;
- compute: the search's seconds per seed (every lr's trials, mean over seeds) and the probe's
  training, counted once (each seed's data has one probe, shared by every lr).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from sweep.frontier.evidence_files import write_csv
from sweep.frontier.report import format_estimate, format_p
from sweep.frontier.stats import ALPHA, holm, mean_ci, p_value, paired_difference

HERE = Path(__file__).resolve().parent
DATASETS = ("synthetic", "movielens")
BASELINE, UNTUNED = "hash", "1e-3"
STRATEGIES = ("full", "hash", "double_hash", "qr", "frequency", "embedding",
              "frequency_embedding")
COLUMNS = ("data", "strategy", "compression", "chosen_lr", "incomplete_lrs", "best_epoch",
           "n_seeds", "val_logloss", "val_logloss_ci", "test_logloss", "test_logloss_ci", "vs_hash",
           "vs_hash_ci", "vs_hash_p", "vs_hash_p_holm", "untuned_vs_hash", "untuned_vs_hash_ci",
           "search_seconds", "probe_train_seconds")


def _trials(name: str) -> list[dict]:
    path = HERE / name / "trials.csv"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `bash results/tuning/run.sh path/to/ml-100k` "
                         "first")
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["precision"] == "fp32" and r["val_logloss"]
                and r["test_logloss"]]


def _number(text: str) -> float | None:
    return float(text) if text else None


def _by_cell(rows: list[dict]) -> dict[tuple, dict[int, dict]]:
    """(strategy, compression) -> seed -> trial row."""
    cells: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        cells[(r["strategy"], _number(r["compression"]))][int(r["seed"])] = r
    return cells


def _dataset(data: str, lrs: list[str]) -> list[dict]:
    sweeps = {lr: _by_cell(_trials(f"tune-{data}-lr-{lr}")) for lr in lrs}
    cells = sorted(set().union(*sweeps.values()),
                   key=lambda k: (k[1] or 0.0, STRATEGIES.index(k[0]) if k[0] in STRATEGIES
                                  else len(STRATEGIES), k[0]))
    out, tuned_test = [], {}
    for cell in cells:
        # the choice: the lr of lowest mean validation logloss over the seeds; an lr where some
        # seed failed (diverged) or is missing is no candidate, so every mean is over the same
        # seeds
        seeds = set().union(*(sweeps[lr].get(cell, {}) for lr in lrs))
        complete = [lr for lr in lrs if set(sweeps[lr].get(cell, {})) == seeds]
        val = {lr: mean_ci([float(t["val_logloss"]) for t in sweeps[lr][cell].values()])
               for lr in complete}
        chosen = min(val, key=lambda lr: val[lr].mean)
        trials = sweeps[chosen][cell]
        test = {s: float(t["test_logloss"]) for s, t in trials.items()}
        tuned_test[cell] = test
        test_estimate = mean_ci(list(test.values()))
        seconds = [sum(float(sweeps[lr][cell][s]["total_seconds"]) for lr in lrs
                       if s in sweeps[lr].get(cell, {})) for s in trials]  # a failed trial: no row
        probes = [_number(t["probe_train_seconds"]) for t in trials.values()]
        probes = [p for p in probes if p is not None]
        out.append({"data": data, "strategy": cell[0], "compression": cell[1],
                    "chosen_lr": chosen, "incomplete_lrs": " ".join(sorted(set(lrs) -
                                                                          set(complete))),
                    "best_epoch": sum(float(t["best_epoch"]) for t in trials.values())
                    / len(trials),
                    "n_seeds": len(trials), "val_logloss": val[chosen].mean,
                    "val_logloss_ci": val[chosen].half_width, "test_logloss": test_estimate.mean,
                    "test_logloss_ci": test_estimate.half_width,
                    "search_seconds": sum(seconds) / len(seconds),
                    "probe_train_seconds": sum(probes) / len(probes) if probes else None})
    untuned = sweeps.get(UNTUNED, {})
    for row in out:
        cell = (row["strategy"], row["compression"])
        baseline = (BASELINE, row["compression"])
        if row["strategy"] == BASELINE or baseline not in tuned_test:
            continue
        tuned = paired_difference(tuned_test[cell], tuned_test[baseline])
        row.update({"vs_hash": tuned.mean, "vs_hash_ci": tuned.half_width,
                    "vs_hash_p": p_value(tuned)} if tuned else {})
        if cell in untuned and baseline in untuned:
            fixed = paired_difference(
                {s: float(t["test_logloss"]) for s, t in untuned[cell].items()},
                {s: float(t["test_logloss"]) for s, t in untuned[baseline].items()})
            if fixed is not None:
                row.update({"untuned_vs_hash": fixed.mean, "untuned_vs_hash_ci": fixed.half_width})
    tested = [r for r in out if r.get("vs_hash_p") is not None]
    for r, adjusted in zip(tested, holm([r["vs_hash_p"] for r in tested]), strict=True):
        r["vs_hash_p_holm"] = adjusted
    return out


def _estimate(row: dict, metric: str, sign: bool = False) -> str:
    return format_estimate(row, metric, missing="-", sign=sign)


def _verdict(row: dict) -> str:
    p = row.get("vs_hash_p_holm")
    if p is None:
        return "-"
    if p >= ALPHA:
        return "no clear difference"
    return "better than hash" if row["vs_hash"] < 0 else "worse than hash"


def _compression(value: float | None) -> str:
    return "-" if value is None else f"{value:g}x"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", required=True, help="as run.sh ran them, comma-separated")
    parser.add_argument("--out", type=Path, required=True, help="summary.md's path; summary.csv "
                                                                "goes beside it")
    args = parser.parse_args()
    lrs = args.lrs.split(",")
    if UNTUNED not in lrs:
        raise SystemExit(f"--lrs must include {UNTUNED}, the untuned comparison's lr")
    table = [row for data in DATASETS for row in _dataset(data, lrs)]
    command = f"python results/tuning/summary.py --lrs {args.lrs} --out {args.out}"
    lines = ["# Fair tuning: every strategy's lr and epochs chosen on validation", "",
             f"Generated by `{command}` from the sweeps of `bash results/tuning/run.sh` (the main "
             "comparison's grid at dim 16, fp32; seeds 0-4, each its own data set or split). "
             f"Each strategy ran at lr {', '.join(lrs)}, up to 4 epochs (synthetic) or 8 "
             "(MovieLens) with early stopping on validation (patience 1, best epoch kept). Per "
             "configuration the lr of lowest mean validation logloss is chosen; `epoch` is the "
             "mean epoch validation kept. Test logloss is reported for the choice only: mean +- "
             "95% CI over the seeds. `tuned vs hash`: test logloss minus the tuned hash's at "
             "the same compression, paired by seed (negative: lower loss), with its p and "
             "Holm's adjustment over the dataset's cells; the verdict is after Holm. `at lr "
             f"{UNTUNED}`: the same difference with every strategy at lr {UNTUNED}. `search`: "
             "the seconds of every lr's trials together (mean per seed); `probe`: the "
             "probe's training, once per seed's data.", ""]
    for data in DATASETS:
        rows = [r for r in table if r["data"] == data]
        tested = [r for r in rows if r.get("vs_hash_p_holm") is not None]
        clear = sum(_verdict(r) != "no clear difference" for r in tested)
        edge = sum(r["chosen_lr"] in (lrs[0], lrs[-1]) for r in rows)
        incomplete = [f"`{r['strategy']}` {_compression(r['compression'])} (lr "
                      f"{r['incomplete_lrs']})" for r in rows if r["incomplete_lrs"]]
        lines += [f"## {data}", "",
                  f"{len(tested)} cells tested against the tuned hash; {clear} differ after "
                  f"Holm. {edge} of {len(rows)} configurations chose an lr at an end of the "
                  f"search ({lrs[0]} or {lrs[-1]}). "
                  + (f"Not a candidate, some seed failed or is missing: {', '.join(incomplete)}."
                     if incomplete else "Every lr ran every seed of every configuration."), "",
                  "| strategy | compression | lr | epoch | val logloss | test logloss | tuned "
                  "vs hash | p (Holm) | verdict | at lr 1e-3 | search | probe |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| `{r['strategy']}` | {_compression(r['compression'])} | {r['chosen_lr']} | "
                f"{r['best_epoch']:.1f} | {_estimate(r, 'val_logloss')} | "
                f"{_estimate(r, 'test_logloss')} | {_estimate(r, 'vs_hash', sign=True)} | "
                f"{format_p(r.get('vs_hash_p_holm'))} | {_verdict(r)} | "
                f"{_estimate(r, 'untuned_vs_hash', sign=True)} | {_seconds(r['search_seconds'])} "
                f"| {_seconds(r['probe_train_seconds'])} |")
        lines.append("")
    args.out.write_text("\n".join(lines))
    write_csv(args.out.with_suffix(".csv"), table, COLUMNS)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
