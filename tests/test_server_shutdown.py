"""Shutdown under SIGTERM (issue 13, item 1), on ``fleetplace serve`` as a real process on
loopback with real signals and clients: the solves in flight answer with their best verified
plan within the grace period, health ``Check`` answers NOT_SERVING during the drain, an open
``Watch`` stream ends at once, and a client whose call arrives during the drain is told that
the server is shutting down, not "Connection refused"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from placement.generator import generate
from server.client import PlacementClient
from tests.builders import REPO
from tests.server_support import dataset, stub
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture()
def serve() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetplace.cli", "serve", "--address", "127.0.0.1:0", "--grace", "3"],
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
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining the logs
        yield proc, line.strip().rsplit(" ", 1)[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _watch(channel: grpc.Channel, seen: list[object]) -> None:
    """Collect a Watch stream's statuses, then how it ended ("ended" or the error code)."""
    try:
        for answer in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60):
            seen.append(answer.status)
        seen.append("ended")
    except grpc.RpcError as e:
        seen.append(e.code())  # type: ignore[attr-defined]


@pytest.mark.slow
def test_sigterm_drains_answers_in_flight_solves_and_tells_late_callers(
    serve: tuple[subprocess.Popen[str], str],
) -> None:
    proc, address = serve
    big = convert.request_from_problem(generate(2000, seed=3))  # its plan takes a moment to assemble
    big.options.time_limit_s = 60  # far beyond --grace 3: only the stop can end it in time
    channel, s = stub(address)
    with channel:
        watched: list[object] = []
        watcher = threading.Thread(target=_watch, args=(channel, watched), daemon=True)
        watcher.start()
        place = s.Place.future(dataset("mixed", time_limit_s=60), timeout=60)
        stream = s.PlaceStream(big, timeout=60)
        first = next(stream)  # both solves hold a verified plan (mixed's greedy takes milliseconds)
        assert first.WhichOneof("event") == "progress"
        proc.send_signal(signal.SIGTERM)

        # during the drain: probes see NOT_SERVING; a new call is told why it is refused
        late: dict[str, object] = {}

        def late_call() -> None:
            with PlacementClient(address, timeout_s=30, max_attempts=5, backoff_s=0.3) as c:
                try:
                    c.place(dataset("tiny"))
                except grpc.RpcError as e:
                    late["code"], late["details"] = e.code(), e.details()  # type: ignore[attr-defined]

        health = health_pb2_grpc.HealthStub(channel)
        statuses: list[object] = []
        caller = None
        while not place.done():
            try:
                statuses.append(health.Check(health_pb2.HealthCheckRequest(), timeout=5).status)
            except grpc.RpcError as e:
                statuses.append(e.code())  # type: ignore[attr-defined]
            if statuses[-1] == NOT_SERVING and caller is None:
                caller = threading.Thread(target=late_call)
                caller.start()

        plan = place.result().plan  # answered, not cancelled at the end of the grace period
        assert plan.info.status in (pb.SOLVE_STATUS_FEASIBLE, pb.SOLVE_STATUS_OPTIMAL)
        assert plan.placements and plan.info.stop_reason == pb.STOP_REASON_INTERRUPTED
        events = list(stream)
        assert events and events[-1].WhichOneof("event") == "plan"
        assert events[-1].plan.info.status in (pb.SOLVE_STATUS_FEASIBLE, pb.SOLVE_STATUS_OPTIMAL)
        assert events[-1].plan.placements and events[-1].plan.info.stop_reason == pb.STOP_REASON_INTERRUPTED

        # SERVING until the signal lands, NOT_SERVING while the calls in flight finish, and only
        # once they are answered may the server stop (UNAVAILABLE, as the client sees the answer)
        assert NOT_SERVING in statuses, statuses
        drain = statuses.index(NOT_SERVING)
        assert set(statuses[:drain]) <= {SERVING}, statuses
        stopped = next((i for i, x in enumerate(statuses) if x not in (SERVING, NOT_SERVING)), len(statuses))
        assert set(statuses[drain:stopped]) == {NOT_SERVING}, statuses
        assert set(statuses[stopped:]) <= {grpc.StatusCode.UNAVAILABLE}, statuses
        watcher.join(timeout=30)
        assert watched[:1] == [SERVING] and NOT_SERVING in watched and watched[-1] == "ended", watched

        assert caller is not None
        caller.join(timeout=60)
        assert late["code"] is grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in str(late["details"]), late["details"]
    assert proc.wait(timeout=30) == 0
