"""Deadlines and status words (issue 13, item 2), on a real server on loopback: a deadline that
stops a solve says TIME_LIMIT (INTERRUPTED is the shutdown's word); an expired deadline is
DEADLINE_EXCEEDED in the metrics and logs, never CANCELLED; the margin kept for sending grows
with the send times measured on previous answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest

from server.app import Server
from server.client import from_server
from server.metrics import Metrics
from server.service import margins_s, time_box
from tests.server_support import dataset, eventually, running_server, stub
from wire.gen.placement.v1 import placement_pb2 as pb


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, str]]:
    with running_server(max_queued_solves=16) as pair:
        yield pair


def _count(server: Server, method: str, code: str) -> float:
    labels = {"method": method, "code": code}
    return server.metrics.registry.get_sample_value("fleetplace_requests_total", labels) or 0.0


CASES = [
    # deterministic: the request's own 30 s plans the work (about 4 s of it here), so only the
    # deadline's stop ends it
    ("deterministic, deadline 1 s", True, 1.0),
    ("default mode, deadline 1 s", False, 1.0),
    ("default mode, deadline 0.45 s", False, 0.45),
]


@pytest.mark.parametrize(("deterministic", "deadline_s"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_deadline_stop_is_time_limit_and_never_an_empty_feasible_plan(
    served: tuple[Server, str], deterministic: bool, deadline_s: float
) -> None:
    _, address = served
    request = dataset("mixed", time_limit_s=30)
    request.options.deterministic = deterministic
    channel, s = stub(address)
    with channel:
        plan = s.Place(request, timeout=deadline_s).plan
    assert plan.info.stop_reason != pb.STOP_REASON_INTERRUPTED, "nobody interrupted: the clock stopped it"
    assert plan.info.stop_reason == pb.STOP_REASON_TIME_LIMIT
    if plan.info.status == pb.SOLVE_STATUS_FEASIBLE:
        assert plan.placements, "a FEASIBLE plan that places nothing would empty the fleet"
    else:
        assert plan.info.status == pb.SOLVE_STATUS_NO_SOLUTION


def test_an_expired_deadline_is_counted_and_logged_as_deadline_exceeded(
    served: tuple[Server, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Deadlines from 1 ms to 40 ms on mixed: each call's server-side code is what its client saw
    (a call that expired before reaching the handler is not counted at all)."""
    server, address = served
    caplog.set_level(logging.INFO)
    assert eventually(lambda: server.metrics.in_flight == 0)  # the calls before this one are counted
    before = {c: _count(server, "Place", c) for c in ("OK", "DEADLINE_EXCEEDED", "CANCELLED")}
    seen = {"OK": 0, "DEADLINE_EXCEEDED": 0}
    channel, s = stub(address)
    with channel:
        for timeout_s in (0.001, 0.005, 0.01, 0.02, 0.02, 0.03, 0.04):
            try:
                s.Place(dataset("mixed", time_limit_s=30), timeout=timeout_s)
                seen["OK"] += 1
            except grpc.RpcError as e:
                assert e.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
                seen["DEADLINE_EXCEEDED"] += 1
    assert eventually(lambda: server.metrics.in_flight == 0)
    got = {c: _count(server, "Place", c) - before[c] for c in before}
    assert got["CANCELLED"] == 0, "nobody cancelled"
    assert got["OK"] == seen["OK"], "an answer the client never got was counted OK"
    assert 1 <= got["DEADLINE_EXCEEDED"] <= seen["DEADLINE_EXCEEDED"]
    assert "cancelled by the caller" not in caplog.text
    assert "Place DEADLINE_EXCEEDED" in caplog.text


def test_the_margins_grow_with_the_measured_send_and_stop_times() -> None:
    metrics = Metrics()
    assert metrics.send_lag_s() == 0.0
    quiet = time_box(328, 30.0, 10.0, 600.0, metrics.send_lag_s())
    for seconds in (0.002, 0.3, 0.01):  # one answer took 300 ms to leave: the server is loaded
        metrics.sent("Place", seconds)
    assert metrics.send_lag_s() == 0.3
    loaded = time_box(328, 30.0, 10.0, 600.0, metrics.send_lag_s())
    assert loaded.finish_by <= quiet.finish_by - 0.3  # (both boxes made within microseconds)
    assert loaded.time_limit_s < quiet.time_limit_s
    assert margins_s(328, 0.3)[0] >= margins_s(328, 0.0)[0] + 0.3
    assert margins_s(200_000)[1] > margins_s(1_000)[1]  # a larger plan takes longer to assemble
    # stopped solves that recently took 0.2 s longer than expected to their plan: the stop comes earlier
    assert margins_s(328, 0.0, 0.2)[1] >= margins_s(328)[1] + 0.2


def test_answers_feed_the_send_times(served: tuple[Server, str]) -> None:
    server, address = served
    count = lambda: server.metrics.registry.get_sample_value(  # noqa: E731
        "fleetplace_send_seconds_count", {"method": "Place"}
    )
    assert eventually(lambda: server.metrics.in_flight == 0)
    before = count() or 0.0
    channel, s = stub(address)
    with channel:
        s.Place(dataset("tiny", time_limit_s=1), timeout=30)
    assert eventually(lambda: (count() or 0.0) == before + 1)


def test_without_a_deadline_a_short_time_limit_still_solves(served: tuple[Server, str]) -> None:
    """The boundary of the no-time-to-solve answer: it is about the deadline, not the time limit."""
    _, address = served
    channel, s = stub(address)
    with channel:
        plan = s.Place(dataset("tiny", time_limit_s=0.01)).plan  # no deadline
    assert all("no time to solve" not in r.message for u in plan.unplaced for r in u.reasons)
    assert plan.info.wall_s > 0, "the solver ran"


def test_a_call_that_waits_past_its_deadline_for_the_interpreter_is_told_in_time(
    served: tuple[Server, str],
) -> None:
    """Python work in the server process runs ``inline_concurrency`` calls at a time; one that
    cannot start before its deadline gets the service's DEADLINE_EXCEEDED, sent in time (not
    the client's own deadline firing on a late answer)."""
    server, address = served
    slot = server.servicer._inline  # type: ignore[union-attr]
    assert slot.acquire(timeout=30)  # the slot is busy
    try:
        channel, s = stub(address)
        with channel, pytest.raises(grpc.RpcError) as err:
            s.Verify(pb.VerifyRequest(request=dataset("tiny")), timeout=0.5)
    finally:
        slot.release()
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert from_server(err.value), err.value.details()  # type: ignore[attr-defined]
    assert "no free slot" in err.value.details()  # type: ignore[attr-defined]
