"""The partitioned solve on a Ray cluster reached by address: a head started here, on loopback.

The fixture starts ``ray start --head --block`` from the venv as its own process group (its
own temp dir and ports, token authentication off: loopback only), and kills that group in
teardown whatever happened. The parts must run in the cluster's worker processes (its node,
other pids than this one), the combined plan must verify, and an address with no Ray head
must fail with one line that names it, at once or after the connect timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from placement import verify
from placement.generator import generate, profile
from placement.run.executors import RayUnavailable
from placement.run.partition import (
    max_work,
    partition,
    solve_partitioned,
    solve_partitioned_stats,
    split,
)
from tests.builders import REPO, two_region_problem

RAY = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 60.0


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all sockets stay bound until every port is chosen (one at a time,
    the kernel may hand out the same port twice, and Ray refuses two components on one port)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the head's process group, 2 s later SIGKILL to whatever of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2)
    with contextlib.suppress(ProcessLookupError):  # the leader may be gone and its children not
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    import ray

    assert not ray.is_initialized()  # else the solve would use that Ray, not the address
    tmp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths live under it
    port, client_port, agent_port = _free_ports(3)
    log_path = Path(tmp) / "head.log"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [
        str(RAY),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        f"--temp-dir={tmp}",
        "--disable-usage-stats",
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"Ray runtime started" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _cluster_nodes(address: str) -> set[str]:
    import ray

    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    try:
        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_parts_run_in_the_clusters_workers_and_the_plan_verifies(ray_head: str) -> None:
    import ray

    p = profile("S", 0)
    # deterministic parts: each does a fixed amount of work, so a busy machine (Ray workers
    # starting slowly) cannot leave a part without its plan; the limit is only the safety net
    p = replace(p, options=replace(p.options, time_limit_s=30, deterministic=True))
    plan, stats = solve_partitioned_stats(p, 2, "ray", ray_head)
    assert not ray.is_initialized()  # the solve joined the cluster and left it
    assert verify(p, plan) == []
    assert plan.info.backend.endswith("+partition[ray]")
    assert plan.objective.placed_work > 0
    assert plan.info.bound is not None and plan.info.bound >= plan.objective.placed_work
    # the same parts as the split alone makes, each solved
    assert [s.workloads for s in stats.parts] == [len(sub.workloads) for sub in split(p, 2).problems]
    assert all(s.status in ("OPTIMAL", "FEASIBLE") and s.placed_work > 0 for s in stats.parts)
    # where: on the cluster's node, in two worker processes at once (2 CPUs), none of them this one
    nodes = _cluster_nodes(ray_head)
    assert len(nodes) == 1
    assert {s.node for s in stats.parts} == nodes
    pids = [s.pid for s in stats.parts]
    assert os.getpid() not in pids and 0 not in pids
    assert len(set(pids)) == 2


@pytest.mark.slow
def test_cluster_equals_the_local_executor_where_parts_reach_their_optimum(ray_head: str) -> None:
    p = two_region_problem(time_limit_s=30)  # each part proves its optimum in well under a second
    most = sum(max_work(w, 100) for sub in partition(p, 2) for w in sub.workloads)
    local, local_stats = solve_partitioned_stats(p, 2, "local", processes=1)
    remote, remote_stats = solve_partitioned_stats(p, 2, "ray", ray_head)
    assert verify(p, remote) == []
    assert remote.objective.placed_work == local.objective.placed_work == most
    assert remote.info.bound == local.info.bound
    assert {s.node for s in local_stats.parts} == {"local"}
    assert "local" not in {s.node for s in remote_stats.parts}
    assert sorted(pl.workload for pl in remote.placements) == sorted(pl.workload for pl in local.placements)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetplace.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_cli_plans_on_the_cluster_and_the_plan_verifies(ray_head: str, tmp_path: Path) -> None:
    problem_file, plan_file = str(tmp_path / "fleet.json"), str(tmp_path / "plan.json")
    assert _cli("generate", "--gpus", "300", "--seed", "1", "--out", problem_file).returncode == 0
    r = _cli(
        "plan",
        problem_file,
        "--executor",
        "ray",
        "--ray-address",
        ray_head,
        "--time-limit",
        "4",
        "--out",
        plan_file,
        "--allow-drop",  # generated fleets have running workloads; a 4 s plan may leave some out (exit 4)
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Placed ") and "backend ortools+partition[ray]" in r.stdout
    v = _cli("verify", problem_file, plan_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert '"ortools+partition[ray]"' in Path(plan_file).read_text()


# ----------------------------------------------------------------- no cluster at the address


def test_refused_address_fails_at_once_naming_it() -> None:
    (port,) = _free_ports(1)  # closed again: nothing listens there
    with pytest.raises(RayUnavailable, match=f"127.0.0.1:{port}.*refused"):
        solve_partitioned(generate(100, 0), 2, "ray", f"127.0.0.1:{port}")


def test_cli_with_an_unreachable_address_exits_3_with_one_line(tmp_path: Path) -> None:
    problem_file = str(tmp_path / "fleet.json")
    assert _cli("generate", "--gpus", "100", "--out", problem_file).returncode == 0
    (port,) = _free_ports(1)
    r = _cli("plan", problem_file, "--quiet", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert r.returncode == 3
    assert r.stderr.splitlines() == [
        f"fleetplace: cannot reach the Ray cluster at 127.0.0.1:{port}: [Errno 111] Connection refused"
    ]
    assert r.stdout == ""


def test_an_address_that_answers_but_is_no_ray_head_times_out() -> None:
    # ray.init on it would retry for minutes; run in a child, whose Ray state the abandoned
    # connection attempt leaves half made
    with socket.socket() as srv:
        srv.bind(("0.0.0.0", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        code = f"from placement.run.executors import connect_ray; connect_ray('127.0.0.1:{port}', 2)"
        r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"RayUnavailable: no Ray cluster answered at 127.0.0.1:{port} within 2 s" in r.stderr
