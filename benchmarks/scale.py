"""Data bigger than memory: what a sweep holds as its data grows, ASHA inside the first epoch,
the bounded probe, and a sweep at Criteo Kaggle's cardinalities.

Every run is a real `collide prepare` and `collide sweep` process, as a user runs them, on the
criteo-like synthetic data (26 sparse, 13 dense features). While a process runs, its whole
process tree (driver, Ray's GCS and raylet, trial workers) is sampled every second:

- held: `Pss_Anon + Pss_Shmem` from /proc/PID/smaps_rollup, the memory the OS cannot reclaim
  (heap and Ray's object store), summed over the tree;
- PSS: all of it, the page cache of the memory-mapped prepared columns included (which the OS
  reclaims when it needs the memory).

Four parts, each ending with one line `RESULT {json}`:

    python benchmarks/scale.py memory                 # 2-trial sweep at 1M, 4M, 16M rows (~15 min)
    python benchmarks/scale.py asha                   # 16 trials at 4M rows: grid, then ASHA
    python benchmarks/scale.py probe                  # probe.max_rows against every row, 3 seeds
    python benchmarks/scale.py kaggle                 # scale 1.0 (33.8M ids), 16M rows

Every sweep here trains its probes on a 1M-row sample (`probe.max_rows` 1,000,000), except
where `probe` compares that with every row.

`memory`: per size, `collide prepare` (its wall and peak) and then a sweep of `hash` and
`frequency_embedding` at c16, dim 16, 1 epoch: peak held, peak PSS, wall, the probe's seconds
and each trial's training samples/s. The targets: held at 4M <= 3 GB, held at 16M <= 1.25 x
held at 1M.

`asha`: 16 configurations (hash, frequency, embedding, frequency_embedding x c16, c64 x dim
8, 16) at 4M rows, 1 epoch, validation every 500,000 training rows. First the grid runs every
trial to its end, then the same sweep with `--scheduler asha`. It reports the trial-seconds
each spent (run start to end in MLflow), the compute saved, and whether the grid's best three
configurations by validation logloss finished under ASHA.

`probe`: frequency_embedding at c16 and c64, seeds 0-2, 4M rows, once with `probe.max_rows`
1,000,000 (`--probe-max-rows`; `--probe-lr` changes its learning rate) and once with every
training row (the default); the paired validation logloss differences (sampled - all) with a 95%
t interval, and the probe seconds of each.

`kaggle`: criteo-like at scale 1.0 (Criteo Kaggle's cardinalities, two features near 10M ids)
with 16M rows: `collide prepare`, then a sweep of `hash` and `frequency_embedding` at c64 (dim
16, 1 epoch) whose stages (probe, learned maps, training) come from its MLflow runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from mlflow.tracking import MlflowClient  # noqa: E402

from sweep.tracking.records import OUTCOME_TAG, find_sweep  # noqa: E402

GB = 1e9
TWO_TRIALS = {"strategies": ["hash", "frequency_embedding"], "compressions": [16], "dims": [16],
              "seeds": [0]}
ASHA_GRID = {"strategies": ["hash", "frequency", "embedding", "frequency_embedding"],
             "compressions": [16, 64], "dims": [8, 16], "seeds": [0]}
# what each sweep asks of Ray: --cpus and --gpus-per-trial set it (a fraction shares one card)
RESOURCES: dict = {"num_cpus": 2}
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


class TreeMemory:
    """Samples the memory of a process and all its descendants every `every` seconds."""

    def __init__(self, pid: int, every: float = 1.0):
        self.pid, self.every = pid, every
        self.peak_held = self.peak_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    @staticmethod
    def _rollup(pid: int) -> tuple[int, int]:
        """(held, pss) bytes of one process; (0, 0) once it is gone."""
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return 0, 0
        fields = {}
        for line in text.splitlines()[1:]:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                fields[key] = int(parts[0]) * 1024
        return fields.get("Pss_Anon", 0) + fields.get("Pss_Shmem", 0), fields.get("Pss", 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            held = pss = 0
            for pid in self._tree():
                h, p = self._rollup(pid)
                held, pss = held + h, pss + p
            self.peak_held, self.peak_pss = max(self.peak_held, held), max(self.peak_pss, pss)
            self.samples += 1
            self._stop.wait(self.every)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"peak_held_gb": self.peak_held / GB, "peak_pss_gb": self.peak_pss / GB,
                "samples": self.samples}


def run_measured(args: list[str], cwd: Path, log_name: str) -> dict:
    """Run `collide ARGS` in a fresh process, sampling its tree; its wall and peaks."""
    started = time.time()
    with open(cwd / f"{log_name}.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd,
                                   stdout=log, stderr=subprocess.STDOUT)
        memory = TreeMemory(process.pid)
        code = process.wait()
    out = {**memory.stop(), "wall_seconds": time.time() - started}
    if code != 0:
        tail = (cwd / f"{log_name}.log").read_text()[-3000:]
        raise SystemExit(f"collide {args[0]} exited {code}; see {cwd / log_name}.log\n{tail}")
    return out


def data_params(rows: int, scale: float) -> dict:
    return {"preset": "criteo-like", "num_rows": rows, "scale": scale}


def prepare(workdir: Path, rows: int, scale: float) -> tuple[Path, dict]:
    out = workdir / f"prepared-{rows}-{scale}"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in data_params(rows, scale).items()]
    measured = run_measured(["prepare", "synthetic", *flags, "--out", str(out)], workdir,
                            f"prepare-{rows}-{scale}")
    return out, measured


def sweep(workdir: Path, name: str, prepared: Path, rows: int, scale: float, grid: dict,
          extra: dict | None = None) -> dict:
    values = {"name": name, "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
              "data": {"source": "synthetic", "params": data_params(rows, scale),
                       "prepared_dir": str(prepared)},
              "grid": grid, "train": {"epochs": 1, "batch_size": 2048},
              "probe": {"dim": 8, "max_rows": 1_000_000},
              "resources": dict(RESOURCES), "storage_path": str(workdir / "ray_results")}
    for section, items in (extra or {}).items():
        values[section] = ({**values.get(section, {}), **items} if isinstance(items, dict)
                           else items)
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    measured = run_measured(["sweep", "--config", str(path)], workdir, name)
    client = MlflowClient(values["tracking_uri"])
    found = find_sweep(client, name)
    trials = []
    for run in found.runs:
        metrics = run.data.metrics
        trials.append({
            "name": run.info.run_name, "strategy": run.data.params.get("strategy"),
            "compression": run.data.params.get("compression"), "dim": run.data.params.get("dim"),
            "seed": run.data.params.get("seed"), "outcome": run.data.tags.get(OUTCOME_TAG),
            "run_seconds": ((run.info.end_time or run.info.start_time) - run.info.start_time)
            / 1000, **{k: metrics.get(k) for k in (
                "val_logloss", "samples_per_second", "train_seconds", "fit_seconds",
                "total_seconds")}})
    startup = client.get_run(found.parent_run_id).data.metrics
    return {**measured, "trials": trials,
            "startup": {k: v for k, v in startup.items() if k.startswith("startup_")}}


def part_memory(workdir: Path, sizes: list[int], scale: float) -> dict:
    print(f"{'rows':>11}{'prepare s':>10}{'prep held':>10}{'sweep s':>9}{'held GB':>9}"
          f"{'PSS GB':>8}{'probe s':>9}  trials (samples/s)", flush=True)
    runs = []
    for rows in sizes:
        prepared, prep = prepare(workdir, rows, scale)
        result = sweep(workdir, f"scale-{rows}", prepared, rows, scale, TWO_TRIALS)
        result["prepare"] = prep
        result["rows"] = rows
        runs.append(result)
        speeds = ", ".join(f"{t['strategy']} {t['samples_per_second']:,.0f}"
                           for t in result["trials"])
        print(f"{rows:>11,}{prep['wall_seconds']:>10.1f}{prep['peak_held_gb']:>10.2f}"
              f"{result['wall_seconds']:>9.1f}{result['peak_held_gb']:>9.2f}"
              f"{result['peak_pss_gb']:>8.2f}"
              f"{result['startup'].get('startup_probe_seconds', math.nan):>9.1f}  {speeds}",
              flush=True)
    held = {r["rows"]: r["peak_held_gb"] for r in runs}
    verdict = {}
    if 4_000_000 in held:
        verdict["held_4m_gb"] = held[4_000_000]
        verdict["held_4m_ok"] = held[4_000_000] <= 3.0
    if 1_000_000 in held and 16_000_000 in held:
        verdict["held_16m_over_1m"] = held[16_000_000] / held[1_000_000]
        verdict["held_16m_ok"] = verdict["held_16m_over_1m"] <= 1.25
    print(json.dumps(verdict))
    return {"runs": runs, "targets": verdict}


def _config_key(trial: dict) -> tuple:
    return trial["strategy"], trial["compression"], trial["dim"]


def part_asha(workdir: Path, rows: int, every: int) -> dict:
    prepared, _ = prepare(workdir, rows, 0.01)
    extra = {"train": {"epochs": 1, "batch_size": 2048, "eval_every_rows": every}}
    grid = sweep(workdir, "asha-grid", prepared, rows, 0.01, ASHA_GRID, extra)
    asha = sweep(workdir, "asha", prepared, rows, 0.01, ASHA_GRID,
                 {**extra, "scheduler": "asha"})
    ranked = sorted((t for t in grid["trials"] if t["val_logloss"] is not None),
                    key=lambda t: t["val_logloss"])
    best3 = [_config_key(t) for t in ranked[:3]]
    finished = {_config_key(t) for t in asha["trials"] if t["outcome"] == "completed"}
    grid_seconds = sum(t["run_seconds"] for t in grid["trials"])
    asha_seconds = sum(t["run_seconds"] for t in asha["trials"])
    out = {"rows": rows, "eval_every_rows": every,
           "grid_trial_seconds": grid_seconds, "asha_trial_seconds": asha_seconds,
           "compute_saved": 1 - asha_seconds / grid_seconds,
           "grid_wall_seconds": grid["wall_seconds"], "asha_wall_seconds": asha["wall_seconds"],
           "asha_completed": len(finished),
           "asha_stopped": sum(t["outcome"] == "stopped" for t in asha["trials"]),
           "grid_best3": [list(k) for k in best3],
           "grid_best3_survived": [k in finished for k in best3],
           "grid": grid, "asha": asha}
    print(f"grid: {grid_seconds:.0f} trial-s, {grid['wall_seconds']:.0f} s wall; "
          f"asha: {asha_seconds:.0f} trial-s, {asha['wall_seconds']:.0f} s wall, "
          f"{out['asha_stopped']} stopped; compute saved {out['compute_saved']:.0%}; "
          f"grid's best 3 {best3} finished under ASHA: {out['grid_best3_survived']}", flush=True)
    return out


def part_probe(workdir: Path, rows: int, max_rows: int, lr: float | None) -> dict:
    prepared, _ = prepare(workdir, rows, 0.01)
    grid = {"strategies": ["frequency_embedding"], "compressions": [16, 64], "dims": [16],
            "seeds": [0, 1, 2]}
    sampled_probe = {"dim": 8, "max_rows": max_rows, **({"lr": lr} if lr is not None else {})}
    sampled = sweep(workdir, "probe-sampled", prepared, rows, 0.01, grid,
                    {"probe": sampled_probe})
    every = sweep(workdir, "probe-all", prepared, rows, 0.01, grid,
                  {"probe": {"dim": 8, "max_rows": None}})
    by_key = {(t["compression"], t["seed"]): t["val_logloss"] for t in every["trials"]}
    diffs = [t["val_logloss"] - by_key[(t["compression"], t["seed"])] for t in sampled["trials"]]
    mean = statistics.fmean(diffs)
    half = T95[len(diffs) - 1] * statistics.stdev(diffs) / math.sqrt(len(diffs))
    probe_s = {name: r["startup"].get("startup_probe_seconds")
               for name, r in (("sampled", sampled), ("all", every))}
    out = {"rows": rows, "sampled_probe": sampled_probe, "pairs": len(diffs), "diffs": diffs,
           "mean_diff": mean,
           "ci95": [mean - half, mean + half], "probe_seconds": probe_s,
           "sampled": sampled, "all": every}
    print(f"val logloss, sampled probe - all rows: {mean:+.5f} (95% CI {mean - half:+.5f} .. "
          f"{mean + half:+.5f}, {len(diffs)} pairs); probe seconds (3 seeds): sampled "
          f"{probe_s['sampled']:.0f}, all {probe_s['all']:.0f}", flush=True)
    return out


def part_kaggle(workdir: Path, rows: int) -> dict:
    prepared, prep = prepare(workdir, rows, 1.0)
    print(f"prepare: {prep['wall_seconds']:.0f} s, peak held {prep['peak_held_gb']:.2f} GB, "
          f"PSS {prep['peak_pss_gb']:.2f} GB", flush=True)
    grid = {"strategies": ["hash", "frequency_embedding"], "compressions": [64], "dims": [16],
            "seeds": [0]}
    result = sweep(workdir, "kaggle", prepared, rows, 1.0, grid)
    print(f"sweep: {result['wall_seconds']:.0f} s, peak held {result['peak_held_gb']:.2f} GB, "
          f"PSS {result['peak_pss_gb']:.2f} GB; startup {result['startup']}", flush=True)
    for t in result["trials"]:
        print(f"  {t['name']}: fit {t['fit_seconds']:.0f} s, train {t['train_seconds']:.0f} s "
              f"({t['samples_per_second']:,.0f} samples/s), total {t['total_seconds']:.0f} s, "
              f"val logloss {t['val_logloss']:.4f}", flush=True)
    return {"rows": rows, "prepare": prep, "sweep": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["memory", "asha", "probe", "kaggle"])
    parser.add_argument("--rows", help="memory: comma-separated sizes (default "
                                       "1000000,4000000,16000000); the others: one size")
    parser.add_argument("--scale", type=float, default=0.01,
                        help="memory: criteo-like cardinality scale")
    parser.add_argument("--every", type=int, default=500_000, help="asha: eval_every_rows")
    parser.add_argument("--probe-max-rows", type=int, default=1_000_000,
                        help="probe: the sampled probe's probe.max_rows")
    parser.add_argument("--probe-lr", type=float, default=None,
                        help="probe: the sampled probe's probe.lr (default: the probe's)")
    parser.add_argument("--cpus", type=int, default=2, help="the sweeps' local Ray CPUs")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0,
                        help="a GPU fraction per trial (trials then train on CUDA)")
    parser.add_argument("--keep", help="keep the prepared data, MLflow store and logs here")
    args = parser.parse_args()
    RESOURCES.update(num_cpus=args.cpus, gpus_per_trial=args.gpus_per_trial)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local Ray
    workdir = (Path(args.keep).resolve() if args.keep
               else Path(tempfile.mkdtemp(prefix="collide-scale-")))
    workdir.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    print(f"work directory: {workdir}", flush=True)
    try:
        if args.part == "memory":
            sizes = [int(r) for r in (args.rows or "1000000,4000000,16000000").split(",")]
            result = part_memory(workdir, sizes, args.scale)
        elif args.part == "asha":
            result = part_asha(workdir, int(args.rows or 4_000_000), args.every)
        elif args.part == "probe":
            result = part_probe(workdir, int(args.rows or 4_000_000), args.probe_max_rows,
                                args.probe_lr)
        else:
            result = part_kaggle(workdir, int(args.rows or 16_000_000))
    finally:
        if not args.keep:  # the temporary directory this run made
            shutil.rmtree(workdir, ignore_errors=True)
    print("RESULT " + json.dumps({"machine": machine(), "part": args.part,
                                  "resources": RESOURCES, **result}))


if __name__ == "__main__":
    main()
