"""Overload, cancellation, deadlines of queued work, message size and graceful shutdown (SIGTERM -> exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import Server
from tests.builders import REPO
from tests.server_support import dataset, running_server, status_code, stub
from wire.gen.placement.v1 import placement_pb2 as pb


def _wait(predicate, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def one_slot() -> tuple[Server, str]:
    with running_server(max_concurrent_solves=1, max_queued_solves=0, max_message_bytes=64 * 1024) as pair:
        yield pair  # type: ignore[misc]


def test_overload_is_resource_exhausted_at_once_and_health_still_answers(
    one_slot: tuple[Server, str],
) -> None:
    server, address = one_slot
    channel, s = stub(address)
    with futures.ThreadPoolExecutor(1) as ex:
        slow = ex.submit(s.Place, dataset("mixed", time_limit_s=4), timeout=30)
        _wait(lambda: server.pool.running == 1)
        assert status_code(lambda: s.Place(dataset("tiny"), timeout=30)) is grpc.StatusCode.RESOURCE_EXHAUSTED
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1
        assert s.Verify(pb.VerifyRequest(request=dataset("tiny")), timeout=5) is not None  # no solver needed
        assert slow.result().plan.info.status in (pb.SOLVE_STATUS_FEASIBLE, pb.SOLVE_STATUS_OPTIMAL)
    channel.close()


def test_a_cancelled_call_frees_its_worker(one_slot: tuple[Server, str]) -> None:
    server, address = one_slot
    channel, s = stub(address)
    call = s.Place.future(dataset("mixed", time_limit_s=60), timeout=120)
    _wait(lambda: server.pool.running == 1)
    call.cancel()
    _wait(lambda: server.pool.running == 0, timeout_s=10)
    plan = s.Place(dataset("tiny", time_limit_s=1), timeout=30).plan  # the only worker is free again
    assert plan.info.status in (pb.SOLVE_STATUS_FEASIBLE, pb.SOLVE_STATUS_OPTIMAL)
    channel.close()


def test_requests_over_the_size_limit_are_refused(one_slot: tuple[Server, str]) -> None:
    _, address = one_slot
    channel, s = stub(address)
    big = dataset("tiny")
    big.fleet.regions.extend(f"region-{i:06d}" for i in range(10_000))  # about 150 KiB
    assert (
        status_code(lambda: s.Verify(pb.VerifyRequest(request=big), timeout=10))
        is grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    channel.close()


@pytest.mark.slow
def test_a_queued_solve_answers_no_solution_before_its_deadline() -> None:
    with running_server(max_concurrent_solves=1, max_queued_solves=1) as (server, address):
        channel, s = stub(address)
        with futures.ThreadPoolExecutor(1) as ex:
            slow = ex.submit(s.Place, dataset("mixed", time_limit_s=5), timeout=30)
            _wait(lambda: server.pool.running == 1)
            t0 = time.monotonic()
            plan = s.Place(dataset("tiny"), timeout=1.5).plan
            assert time.monotonic() - t0 < 1.5
            assert plan.info.status == pb.SOLVE_STATUS_NO_SOLUTION
            assert {u.workload for u in plan.unplaced} == {w.name for w in dataset("tiny").workloads}
            slow.result()
        channel.close()


@pytest.mark.slow
def test_sigterm_lets_the_solve_in_flight_finish_then_exits_0() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetplace.cli", "serve", "--address", "127.0.0.1:0", "--grace", "20"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert proc.stderr is not None
        line = ""
        while not line.startswith("fleetplace: serving placement.v1 on"):
            line = proc.stderr.readline()
            assert line, "server exited early"
        address = line.strip().rsplit(" ", 1)[-1]
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining the logs
        channel, s = stub(address)
        call = s.Place.future(dataset("mixed", time_limit_s=3), timeout=60)
        time.sleep(1.0)  # the solve is running
        proc.send_signal(signal.SIGTERM)
        plan = call.result().plan
        assert plan.info.status in (pb.SOLVE_STATUS_FEASIBLE, pb.SOLVE_STATUS_OPTIMAL)
        assert proc.wait(timeout=30) == 0
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
