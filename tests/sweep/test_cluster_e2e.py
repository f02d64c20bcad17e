"""Cluster mode as used: `scripts/local_cluster.sh up` (a Ray head and a worker node with token
auth, an MLflow tracking server with proxied artifacts), a sweep with `--address` and an
http tracking URI, export through the server, a node-local storage path refused, `down`.
Real processes only; nothing is left running."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import TINY, hooks_env, kill_group, wait_until
from mlflow.tracking import MlflowClient

from sweep.serving import load_export
from sweep.tracking.records import find_sweep

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / "scripts" / "local_cluster.sh"
ANSI = re.compile(r"\x1b\[")
# TINY without --num-cpus: an existing cluster has its own CPUs.
ON_CLUSTER = [a for i, a in enumerate(TINY) if a != "--num-cpus"
              and (i == 0 or TINY[i - 1] != "--num-cpus")]
# Tune reuses a finished trial's actor, so with trials of a second or two the head node's actor
# could run all four before the worker node's actor had imported torch (seen in CI under load,
# even with 10-epoch trials). The sweep of both nodes therefore holds its first two trials at a
# start barrier (a test hook) until both have started: one node each, as each node has 1 CPU.
ON_CLUSTER += ["--set", "train.batch_size=128", "--set", "train.early_stopping_patience=null"]


def _ports_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def _base_port() -> int:
    for _ in range(50):
        base = random.randrange(20000, 40000, 200)
        if _ports_free(base, 200):
            return base
    raise AssertionError("no free range of 200 ports on 127.0.0.1")


def _one_trial_sweep(env: dict, cwd: Path, name: str) -> subprocess.CompletedProcess:
    """A one-trial sweep on the cluster of RAY_ADDRESS, into the helper's storage path."""
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", "sweep", "--preset", "smoke", "--name", name,
         "--strategies", "hash",
         "--compressions", "4", "--storage-path", env["COLLIDE_STORAGE_PATH"], *ON_CLUSTER],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _sessions(cluster_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in cluster_dir.glob("*.sid")]


def _members(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True,
                         check=True).stdout
    return [int(pid) for pid, s in (line.split() for line in out.splitlines()) if int(s) == sid]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The helper's cluster for this module: (environment of env.sh, cluster dir, launch dir)."""
    root = tmp_path_factory.mktemp("cluster")
    cluster_dir = root / "local-cluster"
    env = {**os.environ, "COLLIDE_CLUSTER_DIR": str(cluster_dir),
           "COLLIDE_CLUSTER_PORT": str(_base_port()),
           "COLLIDE_CLUSTER_STOP_S": "15", "PYTHON": sys.executable}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
                "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    up = subprocess.run(["bash", str(HELPER), "up"], env=env, capture_output=True, text=True,
                        timeout=400)
    sessions = _sessions(cluster_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        exported = dict(re.findall(r"^export (\w+)=(.*)$", (cluster_dir / "env.sh").read_text(),
                                   re.M))
        yield {**env, **exported}, cluster_dir, root
    finally:
        down = subprocess.run(["bash", str(HELPER), "down"], env=env, capture_output=True,
                              text=True, timeout=120)
        left = {sid: _members(sid) for sid in sessions}
        assert down.returncode == 0, down.stdout + down.stderr
        assert "no process of it is left" in down.stdout
        assert not any(left.values()), f"processes left after down: {left}"
        assert not (cluster_dir / "env.sh").exists()


def test_helper_starts_two_nodes_and_a_server_with_token_auth(cluster):
    env, cluster_dir, _ = cluster
    assert env["RAY_AUTH_MODE"] == "token"
    token = Path(env["RAY_AUTH_TOKEN_PATH"])
    assert token.stat().st_mode & 0o077 == 0, "the token file is readable by others"
    assert len(_sessions(cluster_dir)) == 3  # ray head, ray worker, mlflow server
    for sid in _sessions(cluster_dir):
        assert _members(sid), f"session {sid} has no process"
        for pid in _members(sid):  # the token travels through a file, never a process argument
            assert token.read_text().strip() not in Path(f"/proc/{pid}/cmdline").read_bytes(
                ).decode(errors="replace")
    again = subprocess.run(["bash", str(HELPER), "up"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 2 and "already up" in again.stderr


@pytest.fixture(scope="module")
def cluster_sweep(cluster):
    env, _, root = cluster
    launch = root / "launch"
    launch.mkdir()
    args = [sys.executable, "-m", "sweep.cli", "sweep", "--preset", "smoke", "--name", "on-cluster",
            "--strategies", "hash,frequency", "--compressions", "4,16", "--address",
            env["RAY_ADDRESS"],
            "--tracking-uri", env["MLFLOW_TRACKING_URI"], "--storage-path",
            env["COLLIDE_STORAGE_PATH"],
            "--cpus-per-trial", "1", *ON_CLUSTER]
    barrier = hooks_env(start_barrier=[str(root / "start-barrier"), 2])
    done = subprocess.run(args, cwd=launch, env={**env, **barrier}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    return done, MlflowClient(env["MLFLOW_TRACKING_URI"]), env, launch


def test_sweep_runs_on_both_nodes_and_logs_through_the_server(cluster_sweep, tmp_path):
    done, client, env, _ = cluster_sweep
    assert done.returncode == 0, done.stdout[-5000:]
    sweep = find_sweep(client, "on-cluster")
    runs = sweep.runs
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    nodes = {r.data.tags["collide.ray_node_id"] for r in runs}
    assert len(nodes) == 2, f"trials ran on {nodes}; expected both Ray nodes\n{done.stdout[-6000:]}"
    assert all(r.data.tags["collide.host"] and r.data.tags["collide.node_ip"] for r in runs)
    for run in runs:  # artifacts are proxied by the server, and download through it
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        local = Path(client.download_artifacts(run.info.run_id, "bundles",
                                               str(tmp_path / run.info.run_id)))
        assert sorted(p.name for p in local.iterdir()) == ["00-C1", "01-C2", "02-C3"]
    parent = [a.path for a in client.list_artifacts(sweep.parent_run_id)]
    assert {"pareto.csv", "pareto.png", "pareto.md", "sweep_config.yaml"} <= set(parent)
    experiment = client.get_experiment_by_name("on-cluster")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    description = experiment.tags["mlflow.note.content"]
    assert "= 4 trials" in description
    assert "`synthetic`" in description
    assert "collide sweep --preset smoke" in description
    runs_view = f"{env['MLFLOW_TRACKING_URI']}/#/experiments/{experiment.experiment_id}/runs"
    assert runs_view in done.stdout


def test_piped_output_is_plain_with_one_line_per_trial(cluster_sweep):
    done, _, env, _ = cluster_sweep
    assert not ANSI.search(done.stdout), "ANSI codes in piped output"
    ended = [line for line in done.stdout.splitlines()
             if re.match(r"trial \S+ (done|FAILED|stopped)", line)]
    assert len(ended) == 4 and all(re.fullmatch(
        r"trial \S+-c\d+-d8-s0 done: val_logloss 0\.\d{4}, total [\d.]+ "
                                                r"KiB, [\d.]+ s", line) for line in ended), ended
    assert "progress: " in done.stdout
    assert "Checkpoint successfully created" not in done.stdout
    assert "== Status ==" not in done.stdout
    log = next(Path(env["COLLIDE_STORAGE_PATH"]).glob("*/ray-output.log")).read_text()
    assert "Checkpoint successfully created" in log and "== Status ==" in log


def test_export_and_ui_against_the_server(cluster_sweep, tmp_path):
    done, _, env, launch = cluster_sweep
    assert done.returncode == 0
    out = tmp_path / "exported"
    export = subprocess.run([sys.executable, "-m", "sweep.cli", "export", "--experiment",
                             "on-cluster",
                             "--max-bytes", "1e9", "--out", str(out), "--tracking-uri",
                             env["MLFLOW_TRACKING_URI"]],
                            cwd=launch, env=env, capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stdout + export.stderr
    mapping = load_export(out)
    assert mapping.transform("C3", [1, 2, 3]).shape == (3,)
    ui = subprocess.run([sys.executable, "-m", "sweep.cli", "ui", "--tracking-uri",
                         env["MLFLOW_TRACKING_URI"]],
                        env=env, capture_output=True, text=True, timeout=60)
    assert ui.returncode == 0
    assert f"on-cluster: {env['MLFLOW_TRACKING_URI']}/#/experiments/" in ui.stdout


@contextlib.contextmanager
def _node_that_cannot_see(env: dict, cluster_dir: Path, root: Path, *hidden_paths: str):
    """A third Ray node whose view of each of `hidden_paths` is an empty tmpfs (its own mount
    namespace), for the duration of the block; killed with its process group after it."""
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --mount is not permitted here (needs root or user namespaces)")
    base = int(env["RAY_ADDRESS"].rsplit(":", 1)[1])
    ray_start = ["ray", "start", "--block", "--address", env["RAY_ADDRESS"], "--node-ip-address",
                 "127.0.0.1",
                 "--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats",
                 "--temp-dir", (cluster_dir / "ray_tmp").read_text().strip(),
                 "--node-manager-port", str(base + 131), "--object-manager-port", str(base + 132),
                 "--dashboard-agent-listen-port", str(base + 135), "--dashboard-agent-grpc-port",
                 str(base + 136),
                 "--runtime-env-agent-port", str(base + 137), "--metrics-export-port",
                 str(base + 138),
                 "--min-worker-port", str(base + 140), "--max-worker-port", str(base + 189)]
    # sh -c SCRIPT PATH... -- RAY_START...: mount over each path, then exec `ray start`
    hidden = ('for p in "$0" "$@"; do [ "$p" = -- ] && break; '
              'mount -t tmpfs tmpfs "$p" || exit 1; done; '
              'while [ "$1" != -- ]; do shift; done; shift; exec "$@"')
    with open(root / "hidden-node.log", "a") as log:
        node = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 hidden, *hidden_paths, "--",
                                 *ray_start], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        alive = ("import ray,sys; ray.init(logging_level='ERROR', log_to_driver=False); "
                 "sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= 3 else 1)")
        wait_until(lambda: subprocess.run([sys.executable, "-c", alive], env=env,
                                          capture_output=True).returncode == 0,
                   120, "the third Ray node")
        yield
    finally:
        kill_group(node)  # SIGKILL to its whole process group: the cluster marks the node dead
        gone = ("import ray,sys; ray.init(logging_level='ERROR', log_to_driver=False); "
                "sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) == 2 else 1)")
        wait_until(lambda: subprocess.run([sys.executable, "-c", gone], env=env,
                                          capture_output=True).returncode == 0,
                   120, "the third Ray node to be marked dead")


def test_a_storage_path_or_prepared_data_one_node_cannot_see_is_refused(cluster, cluster_sweep):
    """A third node sees an empty storage path and an empty prepared-data directory (one node
    for both: starting one takes half a minute). The sweep stops before any trial, naming the
    node and the path, and says what to use instead: first for the storage path; with a storage
    path every node sees, for the prepared data, which trials read their rows from."""
    env, cluster_dir, root = cluster
    storage = env["COLLIDE_STORAGE_PATH"]
    prepared = root / "launch" / ".collide" / "prepared"  # where cluster_sweep prepared the data
    assert prepared.is_dir()
    visible = root / "visible-storage"
    visible.mkdir()
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    with _node_that_cannot_see(env, cluster_dir, root, storage, str(prepared)):
        refused = _one_trial_sweep(env, root / "launch", "hidden-storage")
        refused_data = _one_trial_sweep({**env, "COLLIDE_STORAGE_PATH": str(visible)},
                                        root / "launch", "hidden-prepared")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"storage_path {storage} is not shared" in refused.stderr
    assert "--storage-path /mnt/shared/collide" in refused.stderr
    assert not list(Path(storage).glob(".collide-storage-check-*"))  # its marker is gone

    assert refused_data.returncode == 2, refused_data.stdout + refused_data.stderr
    data = next(prepared.iterdir())
    assert re.search(rf"the prepared data {re.escape(str(data))} is not shared: Ray node "
                     r"[0-9a-f]{12} on \S+ \(\S+\) cannot read manifest.json",
                     refused_data.stderr), refused_data.stderr
    assert "--set data.prepared_dir=/mnt/shared/collide/prepared" in refused_data.stderr
    for name in ("hidden-storage", "hidden-prepared"):  # refused before any run
        experiment = client.get_experiment_by_name(name)
        assert experiment is None or not client.search_runs([experiment.experiment_id])


@pytest.mark.parametrize("token", [None, "not-the-cluster-token"])
def test_a_driver_without_the_clusters_token_is_told_what_to_set(cluster, tmp_path, token):
    env, _, _ = cluster
    env = {k: v for k, v in env.items() if k not in ("RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    if token:
        env["RAY_AUTH_TOKEN"] = token
    refused = _one_trial_sweep(env, tmp_path, "no-token")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"could not connect to the Ray cluster at {env['RAY_ADDRESS']}" in refused.stderr
    assert "RAY_AUTH_TOKEN_PATH (a file holding it) or RAY_AUTH_TOKEN" in refused.stderr
    if token:
        assert token not in refused.stdout + refused.stderr


def test_ray_job_stop_ends_a_sweep_like_sigterm(cluster, tmp_path):
    """`ray job stop` sends SIGTERM to the job's driver and every process under it, then SIGKILL
    after RAY_JOB_STOP_WAIT_TIME_S (3 s by default: README says to give collide longer). The
    sweep stops its trials, ends its runs KILLED, and says 143 in the job's log."""
    env, _, _ = cluster
    name = "job-stop"
    # 24 trials of about 20 s each: the sweep is still running when the job is stopped.
    entry = [sys.executable, "-m", "sweep.cli", "sweep", "--preset", "smoke", "--name", name,
             "--strategies", "hash,frequency", "--compressions", "2,4,8,16",
             "--tracking-uri", env["MLFLOW_TRACKING_URI"], "--storage-path",
             env["COLLIDE_STORAGE_PATH"], *ON_CLUSTER, "--seeds", "0,1,2", "--set",
             "train.batch_size=32", "--set", "data.params.num_rows=40000"]
    runtime = json.dumps({"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "60"}})
    submit = subprocess.run(["ray", "job", "submit", "--address", env["RAY_DASHBOARD"], "--no-wait",
                             "--runtime-env-json", runtime, "--", *entry],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    job_id = re.search(r"raysubmit_\w+", submit.stdout + submit.stderr).group(0)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])

    def running() -> bool:
        try:
            runs = find_sweep(client, name, completed=False).runs
        except ValueError:
            return False
        return any(r.info.status == "FINISHED" for r in runs) and \
            any(r.info.status == "RUNNING" for r in runs)

    def job(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["ray", "job", *args, "--address", env["RAY_DASHBOARD"], job_id],
                              env=env, capture_output=True, text=True, timeout=timeout)

    wait_until(running, 300, "a finished and a running trial of the job's sweep")
    stop = job("stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    wait_until(lambda: "was stopped" in job("status").stdout, 120, "the job to stop")
    logs = job("logs").stdout
    assert "INTERRUPTED by SIGTERM (exit 143)" in logs, logs[-4000:]
    stopped = find_sweep(client, name, completed=False)
    assert stopped.parent.info.status == "KILLED"
    assert {r.info.status for r in stopped.runs} <= {"FINISHED", "KILLED"}
