"""Proto <-> domain conversion: round trips, defaults for absent fields, conversion errors."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import json_format

from placement.core import domain as d
from placement.core.errors import InputError
from placement.exact.backends.base import Progress
from tests.builders import sample_plan, sample_problem
from wire.convert import (
    plan_from_proto,
    plan_to_proto,
    problem_and_errors_from_request,
    problem_from_request,
    progress_to_proto,
    reason_to_proto,
    request_from_problem,
    violation_to_proto,
)
from wire.gen.placement.v1 import placement_pb2 as pb

# ------------------------------------------------------------------------ round trips


def test_problem_round_trip() -> None:
    problem = sample_problem()
    assert problem_from_request(request_from_problem(problem)) == problem


def test_problem_round_trip_through_json() -> None:
    problem = sample_problem()
    text = json_format.MessageToJson(request_from_problem(problem))
    msg = json_format.Parse(text, pb.PlaceRequest(), ignore_unknown_fields=False)
    assert problem_from_request(msg) == problem


def test_default_problem_round_trip() -> None:
    problem = d.Problem(fleet=d.Fleet((), (), (), ()), workloads=(d.Workload(name="w"),))
    assert problem_from_request(request_from_problem(problem)) == problem


def test_repeated_fields_become_tuples() -> None:
    problem = problem_from_request(request_from_problem(sample_problem()))
    assert isinstance(problem.fleet.nodes, tuple)
    assert isinstance(problem.fleet.gpu_types[0].power_levels, tuple)
    assert isinstance(problem.workloads[0].current[0].gpu_indices, tuple)
    assert isinstance(problem.workloads[0].allowed_gpu_types, tuple)


@pytest.mark.parametrize(
    "bound,gap", [(123456.0, 0.01), (None, None), (0.0, 0.0)], ids=["bound", "no bound", "zero bound"]
)
def test_plan_round_trip(bound: float | None, gap: float | None) -> None:
    plan = sample_plan(bound, gap)
    assert plan_from_proto(plan_to_proto(plan)) == plan


def test_plan_round_trip_through_json_keeps_int64() -> None:
    plan = sample_plan()
    text = json_format.MessageToJson(plan_to_proto(plan))
    assert plan_from_proto(json_format.Parse(text, pb.Plan())) == plan


def test_node_budget_it_w_is_written() -> None:
    msg = plan_to_proto(sample_plan())
    assert msg.budgets.nodes[0].it_w == 1200 + 1480
    assert msg.budgets.nodes[1].it_w == 0


def test_absent_bound_stays_absent_and_zero_bound_present() -> None:
    assert not plan_to_proto(sample_plan(None, None)).info.HasField("bound")
    zero = plan_to_proto(sample_plan(0.0, 0.0)).info
    assert zero.HasField("bound") and zero.bound == 0.0


# ------------------------------------------------------------------------- defaults


def _workload(**fields: object) -> d.Workload:
    msg = pb.PlaceRequest(workloads=[pb.Workload(name="w", **fields)])  # type: ignore[arg-type]
    return problem_from_request(msg).workloads[0]


@pytest.mark.parametrize(
    "fields,expect",
    [
        ({}, {"gpus": 1, "gpu_milli": 0}),
        ({"gpu_milli": 250}, {"gpus": 0, "gpu_milli": 250}),
        ({"gpus": 4}, {"gpus": 4, "gpu_milli": 0}),
        ({"gpus": 0}, {"gpus": 0, "gpu_milli": 0}),  # explicit 0 is kept for validate to report
        ({"gpus": 2, "gpu_milli": 500}, {"gpus": 2, "gpu_milli": 500}),  # both: kept, validate reports
        ({}, {"min_replicas": 1, "max_replicas": 1}),
        ({"min_replicas": 3}, {"min_replicas": 3, "max_replicas": 3}),
        ({"min_replicas": 3, "max_replicas": 5}, {"min_replicas": 3, "max_replicas": 5}),
        ({"max_replicas": 5}, {"min_replicas": 1, "max_replicas": 5}),
        ({"min_replicas": 0}, {"min_replicas": 0, "max_replicas": 0}),
        ({}, {"priority": 1, "spread": None}),
        ({"priority": 0}, {"priority": 0}),
        ({"priority": 5}, {"priority": 5}),
    ],
    ids=[
        "nothing: one whole GPU",
        "gpu_milli only: fractional",
        "gpus only",
        "explicit zero gpus",
        "both set",
        "replicas absent: 1..1",
        "max absent: equals min",
        "both replicas",
        "min absent: 1",
        "explicit zero min",
        "priority absent: 1, no spread",
        "explicit zero priority",
        "priority 5",
    ],
)
def test_workload_defaults(fields: dict[str, object], expect: dict[str, object]) -> None:
    w = _workload(**fields)
    assert {k: getattr(w, k) for k in expect} == expect


def test_absent_options_are_the_domain_defaults() -> None:
    assert problem_from_request(pb.PlaceRequest()).options == d.SolveOptions()
    assert problem_from_request(pb.PlaceRequest(options=pb.SolveOptions())).options == d.SolveOptions()


@pytest.mark.parametrize(
    "fields,expect",
    [
        ({"time_limit_s": 0.0}, {"time_limit_s": 0.0}),  # explicit 0 kept for validate to report
        ({"workers": 0}, {"workers": 0}),
        ({"optimise_energy": False}, {"optimise_energy": False, "optimise_moves": True}),
        ({"backend": pb.BACKEND_PULP}, {"backend": d.Backend.PULP}),
        ({"energy_metric": pb.ENERGY_METRIC_CARBON}, {"energy_metric": d.EnergyMetric.CARBON}),
    ],
    ids=["explicit zero time", "explicit zero workers", "one switch off", "backend", "metric"],
)
def test_options_presence(fields: dict[str, object], expect: dict[str, object]) -> None:
    options = problem_from_request(pb.PlaceRequest(options=pb.SolveOptions(**fields))).options  # type: ignore[arg-type]
    assert {k: getattr(options, k) for k in expect} == expect


def test_unspecified_enums_read_as_domain_defaults() -> None:
    msg = pb.PlaceRequest(
        fleet=pb.Fleet(
            sites=[pb.Site(name="s")],
            power_domains=[pb.PowerDomain(name="p", site="s")],
            nodes=[pb.Node(name="n")],
        )
    )
    fleet = problem_from_request(msg).fleet
    assert fleet.sites[0].kind is d.SiteKind.DATACENTER
    assert fleet.sites[0].redundancy is d.Redundancy.N
    assert fleet.sites[0].modules == 2
    assert fleet.power_domains[0].modules == 2
    assert fleet.nodes[0].state is d.NodeState.READY


def test_explicit_modules_are_kept() -> None:
    msg = pb.PlaceRequest(fleet=pb.Fleet(sites=[pb.Site(name="s", modules=1)]))
    assert problem_from_request(msg).fleet.sites[0].modules == 1


def test_unspecified_spread_level_is_an_input_error_with_its_path() -> None:
    msg = pb.PlaceRequest(
        workloads=[pb.Workload(name="a"), pb.Workload(name="b", spread=pb.Spread(min_distinct=2))],
        fleet=pb.Fleet(nodes=[pb.Node(name="n", state=99)]),  # type: ignore[arg-type]
    )
    with pytest.raises(InputError) as err:
        problem_from_request(msg)
    paths = {e.path: e.message for e in err.value.errors}
    assert set(paths) == {"workloads[1].spread.level", "fleet.nodes[0].state"}
    assert "required" in paths["workloads[1].spread.level"]
    assert "99" in paths["fleet.nodes[0].state"]


def test_plan_with_unspecified_status_reads_as_feasible() -> None:
    plan = plan_from_proto(pb.Plan())
    assert plan.info.status is d.SolveStatus.FEASIBLE
    assert plan.info.stop_reason is d.StopReason.NONE
    assert plan.info.bound is None
    assert plan.placements == ()


# ------------------------------------------------------------------------ small ones


@dataclasses.dataclass(frozen=True)
class _Violation:
    rule: str
    subject: str
    message: str


def test_violation_and_reason_to_proto() -> None:
    v = violation_to_proto(_Violation("site_power", "s1", "8.1 kW > 8.0 kW"))
    assert (v.rule, v.subject, v.message) == ("site_power", "s1", "8.1 kW > 8.0 kW")
    r = reason_to_proto(d.Reason("latency", "25 ms > 20 ms", 4))
    assert (r.rule, r.message, r.candidates_excluded) == ("latency", "25 ms > 20 ms", 4)


def test_progress_to_proto_bound_presence() -> None:
    with_bound = progress_to_proto(Progress("placed_work", 10.0, 12.0, 0.5))
    assert with_bound.HasField("bound") and with_bound.bound == 12.0
    assert not progress_to_proto(Progress("energy", 10.0, None, 0.5)).HasField("bound")


def test_collecting_conversion_does_not_raise() -> None:
    msg = pb.PlaceRequest(workloads=[pb.Workload(name="a", spread=pb.Spread(min_distinct=2))])
    problem, errors = problem_and_errors_from_request(msg)
    assert [e.path for e in errors] == ["workloads[0].spread.level"]
    assert problem.workloads[0].spread is not None and problem.workloads[0].spread.min_distinct == 2
