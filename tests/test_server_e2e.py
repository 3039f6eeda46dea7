"""End to end over a real server on loopback: Place, PlaceStream, Verify, Explain, health, reflection, metrics."""

from __future__ import annotations

import dataclasses
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from placement.core.domain import (
    CurrentReplica,
    NodeState,
    Problem,
    ReplicaPlacement,
    SolveStatus,
    StepKind,
    Workload,
)
from placement.core.sequence import migration
from placement.core.verify import verify
from placement.generator import generate
from server.answers import no_solution_plan
from server.app import Server
from server.client import PlacementClient
from server.errors import field_violations
from tests.builders import build_plan, fleet, node
from tests.server_support import dataset, running_server
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, str]]:
    with running_server(metrics_port=0) as pair:
        yield pair


@pytest.fixture(scope="module")
def address(served: tuple[Server, str]) -> str:
    return served[1]


@pytest.fixture(scope="module")
def client(address: str) -> Iterator[PlacementClient]:
    with PlacementClient(address, timeout_s=30) as c:
        yield c


@pytest.fixture(scope="module")
def tiny_plan(client: PlacementClient) -> pb.Plan:
    return client.place(dataset("tiny"))


def test_place_returns_a_plan_that_passes_the_local_verifier(tiny_plan: pb.Plan) -> None:
    request = dataset("tiny")
    problem = convert.problem_from_request(request)
    plan = convert.plan_from_proto(tiny_plan)
    assert plan.info.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert plan.placements, "the tiny fleet places work"
    assert verify(problem, plan) == []
    assert {b.name for b in plan.budgets.sites} == {s.name for s in problem.fleet.sites}


def test_verify_accepts_the_plan_and_names_a_tampered_one(
    client: PlacementClient, tiny_plan: pb.Plan
) -> None:
    request = dataset("tiny")
    assert client.verify(request, tiny_plan).valid
    bad = pb.Plan()
    bad.CopyFrom(tiny_plan)
    bad.placements[0].node = bad.placements[0].node + "-nope"
    answer = client.verify(request, bad)
    assert not answer.valid
    assert answer.violations and all(v.rule for v in answer.violations)


def test_verify_replays_the_migration_a_plan_carries(client: PlacementClient) -> None:
    """w runs on a1 and a2, both DRAINING, and moves to b1 and b2: a valid plan whose migration stops
    the old copy before the new one is ready is INVALID, the step named (as ``fleetplace verify``)."""
    drained = NodeState.DRAINING
    nodes = (node("a1", state=drained), node("a2", state=drained), node("b1"), node("b2"))
    current = (CurrentReplica("a1", (0,)), CurrentReplica("a2", (0,)))
    w = Workload("w", gpus=1, memory_gib=10.0, min_replicas=2, max_replicas=2, current=current)
    problem = Problem(fleet(nodes), (w,))
    rows = tuple(
        ReplicaPlacement("w", i, "dc1", "r1", n, (0,), 1000, 400) for i, n in enumerate(("b1", "b2"))
    )
    plan = build_plan(problem, rows, ())
    steps = migration(problem, plan)  # START b1, WAIT_READY b1, STOP a1, START b2, ...
    request = convert.request_from_problem(problem)
    assert client.verify(request, convert.plan_to_proto(dataclasses.replace(plan, migration=steps))).valid
    first_stop = next(i for i, s in enumerate(steps.steps) if s.kind is StepKind.STOP)
    order = (steps.steps[first_stop], *steps.steps[:first_stop], *steps.steps[first_stop + 1 :])
    broken = dataclasses.replace(plan, migration=dataclasses.replace(steps, steps=order))
    answer = client.verify(request, convert.plan_to_proto(broken))
    assert not answer.valid
    assert ("floor", "step 1") in {(v.rule, v.subject) for v in answer.violations}


def test_stream_sends_progress_then_the_plan_last(client: PlacementClient) -> None:
    events = list(client.place_stream(dataset("mixed", time_limit_s=3)))
    assert isinstance(events[-1], pb.Plan)
    assert all(isinstance(e, pb.Progress) for e in events[:-1])
    assert len(events) >= 2, "at least the greedy start is reported"
    assert events[-1].info.status in (pb.SOLVE_STATUS_OPTIMAL, pb.SOLVE_STATUS_FEASIBLE)


def test_explain_gives_rules_with_numbers_and_reads_the_plan(client: PlacementClient) -> None:
    request = dataset("mixed", time_limit_s=2)
    plan = client.place(request)
    unplaced = plan.unplaced[0].workload
    answer = client.explain(request, unplaced, plan=plan)
    assert not answer.placed
    assert answer.reasons and all(r.rule and r.message for r in answer.reasons)
    placed = plan.placements[0].workload
    assert client.explain(request, placed, plan=plan).placed


@pytest.mark.parametrize(
    ("workload", "site", "path"),
    [("no-such-workload", "", "workload"), ("", "", "workload"), (None, "no-such-site", "site")],
    ids=["unknown workload", "missing workload", "unknown site"],
)
def test_explain_bad_names_are_invalid_argument(
    client: PlacementClient, workload: str | None, site: str, path: str
) -> None:
    request = dataset("tiny")
    name = request.workloads[0].name if workload is None else workload
    with pytest.raises(grpc.RpcError) as err:
        client.explain(request, name, site=site)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert [f.path for f in field_violations(err.value)] == [path]


def test_health_reports_each_service(client: PlacementClient) -> None:
    health = health_pb2_grpc.HealthStub(client.channel)
    for name in ("", "placement.v1.PlacementService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        health.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_reflection_lists_the_services(client: PlacementClient) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    answers = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"placement.v1.PlacementService", "grpc.health.v1.Health"} <= names


def test_request_id_comes_back_and_metrics_count_calls(
    served: tuple[Server, str], client: PlacementClient
) -> None:
    _, call = client.stub.Verify.with_call(
        pb.VerifyRequest(request=dataset("tiny")), timeout=10, metadata=(("x-request-id", "req-42"),)
    )
    assert ("x-request-id", "req-42") in tuple(call.initial_metadata())
    port = served[0].metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'fleetplace_requests_total{code="OK",method="Verify"}' in text
    assert "fleetplace_solve_seconds_count" in text
    assert "fleetplace_solves_queued" in text


def test_large_instance_answers_before_a_2s_deadline(client: PlacementClient) -> None:
    problem = generate(2000, seed=3)
    request = convert.request_from_problem(problem)
    request.options.time_limit_s = 30  # the deadline, not the time limit, must bound the solve
    t0 = time.monotonic()
    plan = client.place(request, timeout_s=2.0)
    assert time.monotonic() - t0 < 2.0
    domain_plan = convert.plan_from_proto(plan)
    assert domain_plan.info.status in (SolveStatus.FEASIBLE, SolveStatus.OPTIMAL, SolveStatus.NO_SOLUTION)
    assert verify(problem, domain_plan) == []


def test_the_no_solution_plan_passes_the_verifier() -> None:
    problem = convert.problem_from_request(dataset("mixed"))
    plan = no_solution_plan(problem, "no plan in time", convert.d.StopReason.TIME_LIMIT)
    assert verify(problem, plan) == []
    assert {u.workload for u in plan.unplaced} == {w.name for w in problem.workloads}
