"""End to end: a real Ray, a real MLflow sqlite store, the real CLI. No mocks."""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from e2e_support import TINY, browser_missing, chromium, free_port, hooks_env, wait_until
from mlflow.tracking import MlflowClient

from mappers import load_bundle, read_bundle
from sweep.cli import main
from sweep.config import load_config
from sweep.datasets import load_prepared
from sweep.frontier import pareto_mask
from sweep.serving import load_export
from sweep.tracking.records import find_sweep
from sweep.trial import ModelConfig, TrialConfig, fit_mappers
from sweep.trial.precision import read_back

pytestmark = pytest.mark.slow


def runs_of_sweep(client: MlflowClient, experiment: str) -> tuple[str, list]:
    sweep = find_sweep(client, experiment, completed=False)
    return sweep.parent_run_id, sweep.runs


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """One launch directory (the cwd, as for a user) and one Ray for the module."""
    import ray

    path = tmp_path_factory.mktemp("launch")
    before = Path.cwd()
    os.chdir(path)
    yield path
    os.chdir(before)
    ray.shutdown()


@pytest.fixture(scope="module")
def grid_sweep(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e", "--strategies",
                 "hash,frequency_embedding",
                 "--compressions", "4,16", "--results-dir", str(launch / "results"), *TINY])
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    parent, runs = runs_of_sweep(client, "e2e")
    return code, client, parent, runs


def test_grid_gives_four_finished_nested_runs_under_one_parent(grid_sweep):
    code, client, parent, runs = grid_sweep
    assert code == 0
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent}
    assert sorted(r.info.run_name for r in runs) == [
        "frequency_embedding-c16-d8-s0", "frequency_embedding-c4-d8-s0", "hash-c16-d8-s0",
        "hash-c4-d8-s0"]
    params = client.get_run(parent).data.params
    assert params["grid.strategies"] == "['hash', 'frequency_embedding']"
    resolved = client.download_artifacts(parent, "sweep_config.yaml")
    # the parent's config runs as --config
    again = load_config(yaml.safe_load(Path(resolved).read_text()))
    assert again.name == "e2e" and again.grid.strategies == ("hash", "frequency_embedding")


def test_nested_runs_hold_params_epochs_sizes_and_bundles(grid_sweep):
    _, client, _, runs = grid_sweep
    for run in runs:
        assert run.data.params["strategy"] in ("hash", "frequency_embedding")
        assert run.data.params["train.epochs"] == "2"
        history = client.get_metric_history(run.info.run_id, "val_logloss")
        assert [m.step for m in history] == [1, 2]
        metrics = run.data.metrics
        for key in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes",
                    "test_logloss",
                    "collision_rate", "compression_ratio", "collision.C3.nmi",
                    "collision.C3.collision_rate"):
            assert key in metrics, key
        parts = ("embedding_bytes", "mapping_bytes", "dense_bytes")
        assert metrics["total_bytes"] == sum(metrics[part] for part in parts)
        # vocabs 40..3000 > 16
        assert metrics["features_mapped"] == 3 and metrics["worse_than_constant"] == 0
        assert metrics["batch_size"] == 512  # 9,600 train rows hold 16 batches of 512: kept
        assert "collide.worse_than_constant" not in run.data.tags
        bundles = [a.path for a in client.list_artifacts(run.info.run_id, "bundles")]
        assert len(bundles) == 3 and bundles[0].startswith("bundles/00-")


def test_pareto_csv_flags_match_brute_force(grid_sweep, launch):
    with open(launch / "results" / "pareto.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # a point per trial and table precision (fp32 as trained, fp16, int8, int4)
    assert len(rows) == 16
    assert sorted({r["precision"] for r in rows}) == ["fp16", "fp32", "int4", "int8"]
    points = np.array([[float(r["total_bytes"]), float(r["val_logloss"])] for r in rows])
    expected = [not any((q <= p).all() and (q < p).any() for q in points) for p in points]
    assert [r["on_frontier"] == "True" for r in rows] == expected
    assert list(pareto_mask(points)) == expected
    assert (launch / "results" / "pareto.png").stat().st_size > 1000
    assert "hash" in (launch / "results" / "pareto.md").read_text()


def test_export_under_budget_picks_the_right_point_and_maps_like_the_trial(grid_sweep, launch):
    _, client, _, runs = grid_sweep
    # every point: each trial as trained (fp32) and with its tables at each lower precision
    finished = []
    for r in runs:
        m = r.data.metrics
        finished.append((m["total_bytes"], m["best_val_logloss"], "fp32", r))
        finished += [(m[f"precision.{p}.total_bytes"], m[f"precision.{p}.val_logloss"], p, r)
                     for p in ("fp16", "int8", "int4")]
    budget = sorted(b for b, _, _, _ in finished)[6]  # admits the seven smallest points
    _, _, precision, expected = min((v, b, p, r.info.run_id) for b, v, p, r in finished
                                    if b <= budget)
    out = launch / "exported"
    assert main(["export", "--experiment", "e2e", "--max-bytes", str(budget), "--out",
                 str(out)]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["source_run_id"] == expected and manifest["precision"] == precision
    mapping = load_export(out)
    run = client.get_run(expected)
    params = run.data.params
    data = load_prepared(params["data"])
    trial = TrialConfig(data=str(data.path), strategy=params["strategy"],
                        compression=float(params["compression"]),
                        dim=8, seed=0,
                        model=ModelConfig(full_threshold=int(params["model.full_threshold"])),
                        mapper_params={k.split(".", 1)[1]: yaml.safe_load(v) for k,
                                       v in params.items()
                                       if k.startswith("mapper_params.")})
    probe = None
    if trial.strategy == "frequency_embedding":
        from models import ProbeConfig
        from sweep.trial.probe_cache import probe_embeddings

        probe = probe_embeddings(data, ProbeConfig(dim=4, epochs=1, lr=0.01), 0,
                                 launch / ".collide" / "probes")
    refit = fit_mappers(trial, data, probe)
    raw = np.random.default_rng(0).integers(-2**63, 2**63 - 1, size=10_000, dtype=np.int64)
    raw[:5000] = np.asarray(data.sparse["C3"].values[:5000])  # known ids as well as unseen ones
    for feature in mapping.features:
        got, want = mapping.transform(feature, raw), refit[feature].transform(raw)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple)
                        else (want,),
                        strict=True):
            np.testing.assert_array_equal(g, w)
    # the exported tables are the trial's trained tables (its tables/ artifacts), read back at the
    # chosen precision exactly as the trial's own scoring at that precision read them back
    trained = Path(client.download_artifacts(expected, "tables", str(launch / "trained-tables")))
    for index, feature in enumerate(mapping.features):
        stored = read_bundle(trained / f"{index:02d}-{feature}")[1]
        for t, (rows, dim) in enumerate(mapping.tables(feature).shapes):
            table = stored[f"t{t}_values"]
            assert table.shape == (rows, dim) and table.dtype == np.float32
            np.testing.assert_array_equal(mapping.tables(feature).table(t),
                                          read_back(table, precision))


def test_data_and_probes_are_made_once_per_sweep_and_trials_reuse_their_actors(
    grid_sweep, launch, capsys,
                                                                              monkeypatch):
    starts = launch / "starts-seeds.jsonl"
    monkeypatch.setenv(*hooks_env(trial_start_log=str(starts)).popitem())
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-seeds", "--strategies",
                 "frequency_embedding",
                 "--compressions", "4,16", *TINY, "--seeds", "0,1"])
    assert code == 0
    out = capsys.readouterr().out
    printed = [line for line in out.splitlines() if line.startswith("before the first trial:")]
    # grid_sweep trained seed 0's probe on the same data: cached; seed 1's is trained once, by the
    # driver's task
    assert len(printed) == 1 and "(seed 1 trained; seed 0 cached)" in printed[0], printed
    # two seeds per configuration: the printed frontier is over configurations, mean +- CI
    assert "frontier over configurations: mean over seeds +- 95% CI" in out
    assert any(re.match(r"frequency_embedding-c(4|16)-d8(-fp16|-int8|-int4)? ", line)
               and " +- " in line
               for line in out.splitlines()), out
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    parent, runs = runs_of_sweep(client, "e2e-seeds")
    metrics = client.get_run(parent).data.metrics
    assert metrics["probes_trained"] == 1 and metrics["startup_ray_seconds"] > 0
    # handed, never trained; each run knows what its probe cost to train (seed 0's: when cached)
    assert len(runs) == 4 and all(r.data.metrics["probe_seconds"] < 0.05 for r in runs)
    assert all(r.data.metrics["probe_train_seconds"] > 0 for r in runs)
    assert len(list((launch / ".collide" / "probes").glob("probe-*.npz"))) == 2
    lines = [json.loads(line) for line in starts.read_text().splitlines()]
    # 2 CPUs: Tune reused the actors
    assert len(lines) == 4 and len({line["pid"] for line in lines}) <= 2


def test_data_that_varies_with_the_seed_gives_each_seed_its_own_data_and_probe(
        grid_sweep, launch, capsys):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-replicates", "--strategies",
                 "hash,frequency_embedding", "--compressions", "16", *TINY, "--seeds", "0,1",
                 "--set", "data.vary_with_seed=true", "--set", "model.full_threshold=64"])
    assert code == 0
    out, err = capsys.readouterr()
    # both data sets keep the 40-id feature full: said once, not once per seed's data
    assert err.count("1 of 3 features keep a full table in every trial") == 1, err
    # seed 0's data is grid_sweep's (generator seed 0 + 0), so its probe is cached; seed 1's data
    # is new, and so is its probe
    assert "(seed 1 trained; seed 0 cached)" in out, out
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-replicates")
    assert len(runs) == 4
    vocab = {(r.data.params["strategy"], int(r.data.params["seed"])): r.data.metrics[
        "vocab.all.ids"] for r in runs}
    assert vocab[("hash", 0)] == vocab[("frequency_embedding", 0)]  # one dataset per seed
    assert vocab[("hash", 1)] == vocab[("frequency_embedding", 1)]
    assert vocab[("hash", 0)] != vocab[("hash", 1)]  # and the two seeds' data differ
    _, grid_runs = runs_of_sweep(client, "e2e")
    assert vocab[("hash", 0)] == grid_runs[0].data.metrics["vocab.all.ids"]
    assert all("data" not in r.data.params for r in runs)  # no one path for every trial
    # the report's vocabulary table shows the range over the two data sets
    assert main(["report", "--experiment", "e2e-replicates", "--out",
                 str(launch / "report-replicates")]) == 0
    report = (launch / "report-replicates" / "report.md").read_text()
    low, high = sorted({int(v) for v in vocab.values()})
    assert f"| all | {low:,} to {high:,} |" in report


def test_failed_trial_is_isolated_and_recorded(launch, monkeypatch):
    monkeypatch.setenv(*hooks_env(fail_trials=["hash-c16-d8-s0"]).popitem())
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-fail", "--strategies", "hash",
                 "--compressions", "4,16", *TINY])
    assert code == 1  # documented: some trials failed
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-fail")
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {"hash-c4-d8-s0": "FINISHED", "hash-c16-d8-s0": "FAILED"}
    failed = next(r for r in runs if r.info.status == "FAILED")
    assert "injected failure for trial hash-c16-d8-s0" in failed.data.tags["error"]


def test_a_diverging_trial_is_a_failed_trial_with_the_hint(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-diverge", "--strategies", "hash",
                 "--compressions", "16", *TINY, "--set", "train.lr=1e30"])
    assert code == 1  # a failed trial, not a bug in collide (4)
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, (run,) = runs_of_sweep(client, "e2e-diverge")
    assert run.info.status == "FAILED"
    assert "training loss became nan at epoch 1" in run.data.tags["error"]
    assert "try a lower lr" in run.data.tags["error"]


def test_optuna_proposes_configurations_runs_each_once_per_seed_and_learns_their_mean(
    launch, capsys):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-optuna", "--search", "optuna",
                 "--num-samples", "3",
                 "--strategies", "hash,frequency,qr", "--compressions", "2,4,8,16", *TINY,
                 "--seeds", "0,1"])
    assert code == 0
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    parent, runs = runs_of_sweep(client, "e2e-optuna")
    names = sorted(r.info.run_name for r in runs)
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"} and len(set(names)) == 6
    configurations = {name.rsplit("-s", 1)[0] for name in names}
    assert len(configurations) == 3 and names == sorted(f"{c}-s{s}" for c in configurations
                                                        for s in (0, 1))
    # Optuna itself ran two objectives, and learned each configuration's mean over its seeds
    experiment_dir = Path(client.get_run(parent).data.tags["collide.experiment_dir"])
    (state_file,) = experiment_dir.glob("searcher-state-*.pkl")
    # Ray Tune's own searcher state from this very run (Tune's restore reads it)
    with open(state_file, "rb") as f:
        study = pickle.load(f)["study"]
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 3 and all(len(t.values) == 2 for t in done)
    by_name = {r.info.run_name: r.data.metrics for r in runs}
    for configuration in configurations:
        mean = [np.mean([by_name[f"{configuration}-s{s}"][k] for s in (0, 1)])
                for k in ("val_logloss", "total_bytes")]
        assert any(np.allclose(t.values, mean) for t in done), configuration
    # Two seeds per configuration: the frontier ranks configurations by their mean over seeds
    assert main(["pareto", "--experiment", "e2e-optuna", "--out",
                 str(launch / "optuna-pareto")]) == 0
    with open(launch / "optuna-pareto" / "pareto.csv", newline="") as f:
        ranked = list(csv.DictReader(f))
    # each configuration as trained and at each lower table precision
    assert sorted(r["configuration"] for r in ranked) == sorted(
        f"{c}{p}" for c in configurations for p in ("", "-fp16", "-int8", "-int4")) and any(
        r["on_frontier"] == "True" for r in ranked)
    for row in (r for r in ranked if r["precision"] == "fp32"):
        values = [by_name[f"{row['configuration']}-s{s}"]["best_val_logloss"] for s in (0, 1)]
        assert float(row["val_logloss"]) == pytest.approx(np.mean(values))
        assert float(row["val_logloss_ci"]) == pytest.approx(
            12.7062 * np.std(values, ddof=1) / np.sqrt(2), rel=1e-4)
        assert int(row["median_seed"]) == int(np.argmin(values))  # of two seeds, the lower val
    with open(launch / "optuna-pareto" / "pareto-trials.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6 * 4
    # export picks the best configuration under the budget, then its median-val seed, and says so
    largest = max(float(r["total_bytes"]) for r in ranked)
    assert main(["export", "--experiment", "e2e-optuna", "--max-bytes", str(largest), "--out",
                 str(launch / "optuna-export")]) == 0
    best = min((float(r["val_logloss"]), r["configuration"]) for r in ranked
               if r["on_frontier"] == "True")[1]
    row = next(r for r in ranked if r["configuration"] == best)
    manifest = json.loads((launch / "optuna-export" / "export.json").read_text())
    name, stored = (best.rsplit("-", 1) if row["precision"] != "fp32" else (best, None))
    assert manifest["trial"] == f"{name}-s{row['median_seed']}" + (f"-{stored}" if stored else "")
    assert manifest["selection"]["configuration"] == best and manifest["selection"]["seeds"] == [
        0, 1]
    assert f"chose configuration {best}" in capsys.readouterr().out


def test_optuna_asked_for_more_samples_than_configurations_runs_each_once_and_says_so(
    launch, capsys):
    # The case: 6 samples of a 4-configuration grid once trained frequency_embedding-c16
    # three times.
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-optuna-small", "--search", "optuna",
                 "--num-samples", "6", *TINY])
    assert code == 0
    assert "num_samples 6 is more than the 4 configurations of the grid" in capsys.readouterr().err
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-optuna-small")
    assert sorted(r.info.run_name for r in runs) == [
        "frequency_embedding-c16-d8-s0", "frequency_embedding-c4-d8-s0", "hash-c16-d8-s0",
        "hash-c4-d8-s0"]


def test_bad_config_fails_before_ray_starts(tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    config = tmp_path / "bad.yaml"
    config.write_text("name: bad\ngrid:\n  strategies: [hash, nosuch]\n")
    assert main(["sweep", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "grid: strategies ['nosuch'] are unknown; valid:" in err
    config.write_text("name: bad\ntrain:\n  epoch: 3\n")
    assert main(["sweep", "--config", str(config)]) == 2
    assert "unknown key train.epoch" in capsys.readouterr().err
    assert ray.is_initialized() == was_running
    with pytest.raises(ValueError, match="unknown key grid.strategy; valid keys of grid"):
        load_config({"grid": {"strategy": ["hash"]}})


def _tree(root: int) -> set[int]:
    """root and every live descendant (by /proc parent links)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return tree


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_ui_serves_the_sweep_runs_and_its_whole_tree_ends_on_a_signal(grid_sweep, launch, signum):
    port = free_port()
    uri = f"sqlite:///{launch / 'mlflow.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "ui", "--port", str(port),
                             "--tracking-uri", uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"

        def experiment() -> dict | None:
            try:
                with urllib.request.urlopen(f"{base}/experiments/get-by-name?experiment_name=e2e",
                                            timeout=5) as r:
                    return json.load(r)["experiment"]
            except OSError:
                assert proc.poll() is None, "collide ui exited"
                return None

        found = wait_until(experiment, 90, "the MLflow UI to answer")
        body = json.dumps({"experiment_ids": [found["experiment_id"]], "max_results": 100}).encode()
        request = urllib.request.Request(f"{base}/runs/search", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            names = {run["info"]["run_name"] for run in json.load(r)["runs"]}
        assert {"hash-c4-d8-s0", "frequency_embedding-c16-d8-s0"} <= names
        def full_tree() -> set[int] | None:
            tree = _tree(proc.pid)
            # collide, mlflow, uvicorn, its workers, the job runner
            return tree if len(tree) >= 4 else None

        tree = wait_until(full_tree, 60, "the UI's worker processes")
    finally:
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 0
    wait_until(lambda: not any(_alive(pid) for pid in tree), 30, "every process of the UI tree to "
                                                                 "exit")


def test_the_ui_in_a_real_browser_shows_the_sweep_its_trials_and_a_bundle(
    grid_sweep, launch, tmp_path):
    """Headless Chromium on `collide ui`: the printed runs-view URL opens the sweep (model training,
    not the GenAI home), the parent run expands to its nested trials, a trial shows its bundles.
    Screenshots stay in tmp_path."""
    missing = browser_missing()
    if missing:
        if os.environ.get("COLLIDE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"COLLIDE_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from selenium.webdriver.common.by import By

    _, client, parent, _ = grid_sweep
    experiment = client.get_experiment_by_name("e2e")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "hash, frequency_embedding" in experiment.tags["mlflow.note.content"]
    port = free_port()
    printed = tmp_path / "ui.out"
    with open(printed, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "ui", "--port", str(port),
                                 "--tracking-uri",
                                 f"sqlite:///{launch / 'mlflow.db'}", "--experiment", "e2e"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    driver = None
    try:
        url = wait_until(lambda: next((line.split(": ", 1)[1]
                                       for line in printed.read_text().splitlines()
                                       if line.strip().startswith("e2e: http")), None), 90,
                         "collide ui's URL")
        assert url == f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
        driver = chromium(tmp_path / "chromium-profile")

        def find(by: str, what: str):
            found = driver.find_elements(by, what)
            return found[0] if found else None

        driver.get(url)
        parent_name = client.get_run(parent).info.run_name
        link = wait_until(lambda: find(By.LINK_TEXT, parent_name), 60, "the sweep's parent run in "
                                                                       "the runs view")
        # the model-training view: the UI may draw the run table before it switches to the view
        # its experiment's kind asks for (seen once in CI)
        wait_until(lambda: "Training runs" in driver.find_element(By.TAG_NAME, "body").text, 30,
                   "the model-training view")
        for close in driver.find_elements(By.XPATH, "//button[@aria-label='Close']"):
            close.click()  # the assistant side panel
        link.find_element(By.XPATH, "./ancestor::*[@role='gridcell'][1]").find_element(
            By.TAG_NAME, "button").click()
        trial = wait_until(lambda: find(By.LINK_TEXT, "hash-c4-d8-s0"), 30, "the nested trial runs")
        names = {e.text for e in driver.find_elements(By.XPATH, "//a[contains(@href, '/runs/')]")}
        assert {"hash-c4-d8-s0", "hash-c16-d8-s0", "frequency_embedding-c4-d8-s0",
                "frequency_embedding-c16-d8-s0"} <= names
        driver.save_screenshot(str(tmp_path / "runs-view.png"))
        trial.click()
        tab = wait_until(lambda: find(By.XPATH, "//*[@role='tab' and "
                                                "normalize-space()='Artifacts']"), 30,
                         "the trial's run page")
        driver.save_screenshot(str(tmp_path / "trial-run.png"))
        tab.click()
        wait_until(lambda: find(By.XPATH, "//*[normalize-space()='bundles']"), 30,
                   "the bundles artifact").click()
        wait_until(lambda: find(By.XPATH, "//*[normalize-space()='00-C1']"), 30, "a bundle inside "
                                                                                 "bundles/")
        driver.save_screenshot(str(tmp_path / "trial-artifacts.png"))
    finally:
        if driver is not None:
            driver.quit()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    for shot in ("runs-view.png", "trial-run.png", "trial-artifacts.png"):
        assert (tmp_path / shot).stat().st_size > 10_000, shot
    if os.environ.get("COLLIDE_SCREENSHOT_DIR"):  # README's picture: see docs/img/README.md
        target = Path(os.environ["COLLIDE_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        (target / "mlflow-runs-view.png").write_bytes((tmp_path / "runs-view.png").read_bytes())


def test_bundle_artifact_round_trips(grid_sweep, tmp_path):
    _, client, _, runs = grid_sweep
    local = client.download_artifacts(runs[0].info.run_id, "bundles", str(tmp_path))
    mapper = load_bundle(next(Path(local).iterdir()))
    assert mapper.transform(np.arange(10)).shape == (10,)


def test_asha_stops_weak_trials_inside_their_first_epoch_with_eval_every_rows(launch, capsys):
    """train.eval_every_rows reports validation within the epoch, each a Tune iteration: with
    one epoch, ASHA can only stop a trial there."""
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-asha-rows", "--scheduler", "asha",
                 "--strategies", "hash", "--compressions", "2,8,32,128", *TINY, "--epochs", "1",
                 "--set", "train.eval_every_rows=1000", "--set", "train.eval_sample_rows=500",
                 "--set", "resources.max_concurrent_trials=1"])
    assert code == 0
    out = capsys.readouterr().out
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-asha-rows")
    outcomes = {r.info.run_name: r.data.tags["collide.outcome"] for r in runs}
    stopped = [r for r in runs if outcomes[r.info.run_name] == "stopped"]
    assert stopped and len(stopped) < len(runs), f"outcomes: {outcomes}"
    for run in stopped:  # inside the first epoch: validation samples, never an epoch's result
        history = sorted(client.get_metric_history(run.info.run_id, "midway_val_logloss"),
                         key=lambda m: m.step)
        assert history and all(0 < m.step < 9600 for m in history)  # 9,600 training rows
        # at the first batch (of 512) that reaches each multiple of 1000
        assert all(0 <= m.step - 1000 * i < 512 for i, m in enumerate(history, start=1))
        assert "val_logloss" not in run.data.metrics and "test_logloss" not in run.data.metrics
        assert (f"not ranked: {run.info.run_name}: stopped early by the scheduler after "
                f"{history[-1].step:,} training rows, inside its first epoch") in out
    for run in (r for r in runs if outcomes[r.info.run_name] == "completed"):
        assert len(client.get_metric_history(run.info.run_id, "midway_val_logloss")) == 9
        assert "test_logloss" in run.data.metrics


def test_asha_stops_weak_trials_which_are_excluded_from_the_frontier_with_a_reason(launch, capsys):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-asha", "--scheduler", "asha",
                 "--strategies", "hash",
                 "--compressions", "2,8,32,128", *TINY, "--epochs", "3", "--set",
                 "train.early_stopping_patience=null",
                 "--set", "resources.max_concurrent_trials=1"])
    assert code == 0
    out = capsys.readouterr().out
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-asha")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    outcomes = {r.info.run_name: r.data.tags["collide.outcome"] for r in runs}
    stopped = [r for r in runs if outcomes[r.info.run_name] == "stopped"]
    assert stopped, f"ASHA stopped no trial: {outcomes}"
    # really stopped early: fewer epochs than asked, no test metrics, no bundles
    for run in stopped:
        assert run.data.metrics["epochs_run"] < 3
        assert "test_logloss" not in run.data.metrics
        assert client.list_artifacts(run.info.run_id, "bundles") == []
        assert f"not ranked: {run.info.run_name}: stopped early by the scheduler" in out
    table, _, _ = __import__("sweep.api", fromlist=["pareto"]).pareto(
        "e2e-asha", out_dir=launch / "asha-pareto", log_to_mlflow=False)
    assert not any(row["on_frontier"] for row in table if row["excluded"])
    # every point that can be on the frontier can be exported, whatever the budget
    for row in (r for r in table if r["on_frontier"]):
        out_dir = launch / f"asha-export-{row['trial_id']}"
        assert main(["export", "--experiment", "e2e-asha", "--max-bytes", str(row["total_bytes"]),
                     "--out", str(out_dir)]) == 0
        assert load_export(out_dir).manifest["source_run_id"] == row["run_id"]
