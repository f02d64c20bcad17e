"""Cluster mode: connecting to Ray, and refusing a storage path that not every node can see.

On a cluster, trial bundles travel from the trial's node to the driver as Tune checkpoints
under the storage path. A path that exists only on the driver's node (the default
`./.collide/ray_results` on a real cluster) would lose every bundle of a trial that runs
elsewhere, so with more than one node `check_storage_shared` writes a marker file there
and asks every node whether it reads the same file back. On one machine any local path
is shared; across machines it takes NFS (or another mount every node has at the same path).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweep.errors import ConfigError, UserError
from sweep.tune.interrupt import hold_signals

__all__ = ["check_prepared_shared", "check_storage_shared", "check_trial_fits", "init_ray",
           "live_nodes", "shutdown_ray"]

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 120.0


def init_ray(address: str | None, num_cpus: int | None) -> None:
    """Connect to the cluster at `address` (or RAY_ADDRESS), else start a local Ray with `num_cpus`;
    a Ray already initialised in this process (the caller's own) is used as it is.
    Token authentication: a cluster started with token auth needs the same token in this process,
    through RAY_AUTH_TOKEN_PATH (a file) or RAY_AUTH_TOKEN, or ~/.ray/auth_token.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if num_cpus is not None:
            log.warning("resources.num_cpus (--num-cpus %d) has no effect on the existing Ray "
                        "cluster at %s: its nodes' own CPUs are used (--cpus-per-trial sizes each "
                        "trial)", num_cpus, address)
        try:
            ray.init(address=address)
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            # A wrong token looks like an unreachable cluster: Ray says so only in its C++ log
            # lines.
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise UserError(f"could not connect to the Ray cluster at {address} "
                            f"({type(exc).__name__}: {first}). Check the address; a cluster with "
                            "token authentication (Ray 2.59+) also needs its token in this "
                            "process: RAY_AUTH_TOKEN_PATH (a file holding it) or RAY_AUTH_TOKEN, "
                            "with RAY_AUTH_MODE=token") from exc
    else:
        with _sessions_of_their_own():
            ray.init(num_cpus=num_cpus, include_dashboard=False)


@contextmanager
def _sessions_of_their_own() -> Iterator[None]:
    """While a local Ray starts, every process it starts (GCS, raylet, and through the raylet the
    workers and agents) begins a session of its own. A signal to collide's process group
    (`timeout`, `kill -TERM -PGID`, a scheduler, Ctrl-C) then reaches only the driver, which
    stops the trials and shuts Ray down itself, instead of Ray dying under it. The processes still
    die with the driver (Ray's kernel fate-sharing, PR_SET_PDEATHSIG)."""
    try:
        from ray._private import services

        original = services.ConsolePopen
    except (ImportError, AttributeError):  # another Ray: it keeps its processes in our group
        log.debug("Ray's process spawner was not found; its processes share collide's group")
        yield
        return

    class OwnSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["start_new_session"] = True
            super().__init__(*args, **kwargs)

    services.ConsolePopen = OwnSession
    try:
        yield
    finally:
        services.ConsolePopen = original


def shutdown_ray() -> list[str]:
    """Shut down the Ray this process started or joined (if any), with SIGINT and SIGTERM held
    off so a signal cannot cut it short and leave Ray's processes behind; returns the names of
    the signals that came meanwhile."""
    if "ray" not in sys.modules:
        return []
    import ray

    with hold_signals() as received:
        if ray.is_initialized():
            ray.shutdown()
    return received


def live_nodes() -> list[dict[str, Any]]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def check_trial_fits(cpus: float, gpus: float) -> None:
    """Raise ConfigError, naming the request and what the cluster has, when no live Ray node can
    ever hold one trial (`cpus` CPUs and `gpus` GPUs on one node): Tune would wait for it forever.
    A cluster that autoscales must have a node of that size up before the sweep starts."""
    nodes = live_nodes()
    sizes = [(node.get("NodeManagerAddress", "?"), float(node.get("Resources", {}).get("CPU", 0)),
              float(node.get("Resources", {}).get("GPU", 0))) for node in nodes]
    if any(cpu >= cpus and gpu >= gpus for _, cpu, gpu in sizes):
        return
    have = ("; ".join(f"{address}: {cpu:g} CPU, {gpu:g} GPU" for address, cpu, gpu in sizes)
            or "no node")
    raise ConfigError(f"a trial asks for {cpus:g} CPU and {gpus:g} GPU on one node "
                      "(--cpus-per-trial, --gpus-per-trial), but no Ray node has that, so no trial "
                      f"could ever start; the cluster has {have}. Ask for less, or give the local "
                      "Ray more with --num-cpus (GPUs: the ones this machine has)")


def _reads(path: str, token: str) -> tuple[str, bool]:
    try:
        seen = Path(path).read_text(encoding="utf-8") == token
    except OSError:
        seen = False
    return socket.gethostname(), seen


def _nodes_that_cannot_read(nodes: list[dict[str, Any]], file: Path,
                            token: str) -> list[tuple[dict[str, Any], str]]:
    """(node, host) of each node on which `file` does not hold `token`, asked by a task pinned to
    every node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    reads = ray.remote(num_cpus=0, max_retries=0)(_reads)
    refs = [reads.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote(str(file), token) for node in nodes]
    answers = ray.get(refs, timeout=CHECK_TIMEOUT_S)
    return [(node, host) for node, (host, seen) in zip(nodes, answers, strict=True) if not seen]


def _where(node: dict[str, Any], host: str) -> str:
    return f"Ray node {node['NodeID'][:12]} on {host} ({node.get('NodeManagerAddress')})"


def check_storage_shared(storage_path: Path) -> None:
    """Raise UserError, naming the node, when some live Ray node cannot read `storage_path`."""
    nodes = live_nodes()
    if len(nodes) < 2:
        return
    storage_path.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = storage_path / f".collide-storage-check-{token}"
    marker.write_text(token, encoding="utf-8")
    try:
        blind = _nodes_that_cannot_read(nodes, marker, token)
    finally:
        marker.unlink(missing_ok=True)
    if blind:
        raise UserError(
            f"storage_path {storage_path} is not shared: {_where(*blind[0])} cannot read a file "
            f"written there, and trial bundles reach the driver through it ({len(blind)} of "
            f"{len(nodes)} nodes cannot). On a cluster of several machines give --storage-path a "
            "directory that every node mounts at the same path, e.g. an NFS mount: "
            "--storage-path /mnt/shared/collide")
    log.info("storage path %s is readable from all %d Ray nodes", storage_path, len(nodes))


def check_prepared_shared(prepared_dir: Path) -> None:
    """Raise UserError, naming the node and the path, when some live Ray node cannot read the
    prepared data at `prepared_dir` (its manifest, compared with the driver's): trials and probe
    tasks read their rows there. Read only: nothing is written into the prepared data."""
    nodes = live_nodes()
    if len(nodes) < 2:
        return
    manifest = prepared_dir / "manifest.json"
    blind = _nodes_that_cannot_read(nodes, manifest, manifest.read_text(encoding="utf-8"))
    if blind:
        raise UserError(
            f"the prepared data {prepared_dir} is not shared: {_where(*blind[0])} cannot read "
            f"{manifest.name} there, or finds another one ({len(blind)} of {len(nodes)} nodes), "
            "and every trial reads its rows from that directory. On a cluster of several machines "
            "put it where every node mounts it at the same path: launch collide from a shared "
            "directory (the default is <launch dir>/.collide/prepared), or set "
            "data.prepared_dir, e.g. --set data.prepared_dir=/mnt/shared/collide/prepared")
    log.info("prepared data %s is readable from all %d Ray nodes", prepared_dir, len(nodes))
