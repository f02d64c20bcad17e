"""Two generated tables that behave like real ones, for README's "Your own table" walk-through.

- `census.csv` (+ `census.yaml`): like a census income table. A string label (" >50K" /
  " <=50K", with the leading space such files have), raw numeric columns (age 17-90, a
  sampling weight spread over 10^4..10^6, capital_gain mostly 0 with a heavy tail up to
  10^6, hours per week) and 8 categorical columns of 2 to 50 values.
- `clicks.csv` (+ `clicks.yaml`): like a click log. 0/1 label, two raw counters, 20
  categorical columns of 8-hex-digit string ids; most have 3..200 values, and a few have
  10^3..10^4 (Zipf-distributed, so most rows hit a few popular ids).

Labels come from a logistic model with real signal in the categorical values and in the
log of the skewed numbers, so a model that uses the columns well beats the constant
predictor, and one fed raw 10^6 values does not. Same seed, same files.

    python benchmarks/example_tables.py --out tables/            # census.* and clicks.*
    python benchmarks/example_tables.py --out tables/ --rows 5000 # smaller
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

__all__ = ["CENSUS_SCHEMA", "CLICKS_SCHEMA", "write_census", "write_clicks"]

CENSUS_CATEGORICAL = {"workclass": 8, "education": 16, "marital_status": 7, "occupation": 14,
                      "relationship": 6, "race": 5, "sex": 2, "native_country": 50}
CENSUS_SCHEMA = f"""\
# The schema of census.csv (collide datasets lists every key).
label: income
label_equals: ">50K"           # compared as trimmed text: " >50K" counts
dense: [age, fnlwgt, capital_gain, hours_per_week]
dense_transform: auto          # log1p + standardize for skewed columns, standardize for the rest
categorical: [{", ".join(CENSUS_CATEGORICAL)}]
"""
CLICKS_VOCABS = (3, 4, 5, 7, 10, 12, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 1_000, 3_000, 6_000,
                 10_000)
CLICKS_SCHEMA = f"""\
# The schema of clicks.csv (collide datasets lists every key).
label: click
dense: [impressions, dwell_ms]
categorical: [{", ".join(f"c{i + 1}" for i in range(len(CLICKS_VOCABS)))}]
"""


def _zipf_index(rng: np.random.Generator, vocab: int, n: int, exponent: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, vocab + 1) ** exponent
    return rng.choice(vocab, size=n, p=weights / weights.sum())


def _logistic(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))


def write_census(out_dir: Path, num_rows: int = 30_000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 91, num_rows)
    fnlwgt = np.round(np.exp(rng.normal(12.0, 0.6, num_rows)).clip(1.2e4, 1.5e6))
    has_gain = rng.random(num_rows) < 0.09
    capital_gain = np.where(has_gain,
                            np.round(np.exp(rng.normal(8.5, 1.6, num_rows)).clip(100, 1e6)), 0)
    hours = rng.integers(1, 100, num_rows)
    logit = -2.2 + 0.05 * (np.minimum(age, 60) - 38) + 0.25 * np.log1p(capital_gain) * has_gain \
        + 0.02 * (hours - 40)
    columns = {}
    for name, vocab in CENSUS_CATEGORICAL.items():
        index = _zipf_index(rng, vocab, num_rows, exponent=0.8)
        effect = rng.normal(0.0, 0.7, vocab)
        logit += effect[index]
        columns[name] = np.array([f"{name}-{v}" for v in range(vocab)])[index]
    income = np.where(_logistic(logit, rng), " >50K", " <=50K")
    path = out_dir / "census.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["age", "fnlwgt", "capital_gain", "hours_per_week", *columns, "income"])
        for i in range(num_rows):
            writer.writerow([age[i], int(fnlwgt[i]), int(capital_gain[i]), hours[i],
                             *(values[i] for values in columns.values()), income[i]])
    (out_dir / "census.yaml").write_text(CENSUS_SCHEMA)
    return path


def write_clicks(out_dir: Path, num_rows: int = 50_000, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    impressions = np.round(np.exp(rng.normal(3.0, 1.5, num_rows))).astype(np.int64)
    dwell = np.round(np.exp(rng.normal(7.0, 2.0, num_rows))).clip(0, 5e6).astype(np.int64)
    logit = -1.6 + 0.15 * (np.log1p(dwell) - 7.0) - 0.1 * (np.log1p(impressions) - 3.0)
    columns = {}
    for i, vocab in enumerate(CLICKS_VOCABS):
        index = _zipf_index(rng, vocab, num_rows)
        effect = rng.normal(0.0, 0.5 if vocab < 1_000 else 0.8, vocab)
        logit += effect[index]
        ids = np.array([f"{v:08x}" for v in rng.choice(2**32, size=vocab, replace=False)])
        columns[f"c{i + 1}"] = ids[index]
    click = _logistic(logit, rng).astype(np.int64)
    path = out_dir / "clicks.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["click", "impressions", "dwell_ms", *columns])
        for i in range(num_rows):
            writer.writerow([click[i], impressions[i], dwell[i],
                             *(values[i] for values in columns.values())])
    (out_dir / "clicks.yaml").write_text(CLICKS_SCHEMA)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for census.* and "
                                                                "clicks.*")
    parser.add_argument("--rows", type=int, default=None, help="rows per table (default: 30,000 "
                                                               "and 50,000)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {} if args.rows is None else {"num_rows": args.rows}
    existing = [p for p in ("census.csv", "census.yaml", "clicks.csv", "clicks.yaml")
                if (args.out / p).exists()]
    if existing:
        parser.error(f"{args.out} already holds {existing}; this script writes only new files "
                     "(choose another --out)")
    for write in (write_census, write_clicks):
        print(f"wrote {write(args.out, **sizes)}")


if __name__ == "__main__":
    main()
