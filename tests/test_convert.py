"""Proto <-> domain conversion: round trips, defaults for absent fields, conversion errors."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import json_format

from placement.core import domain as d
from placement.core.errors import InputError
from placement.exact.backends.base import Progress
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


def sample_problem() -> d.Problem:
    """A small valid instance that sets every field, most of them away from their defaults."""
    h100 = d.GpuType(
        name="H100",
        memory_gib=80.0,
        max_power_w=700,
        min_power_cap_w=200,
        idle_power_w=60,
        power_levels=(d.PowerLevel(350, 70), d.PowerLevel(500, 88), d.PowerLevel(700, 100)),
        shareable=False,
    )
    l4 = d.GpuType(
        name="L4",
        memory_gib=24.0,
        max_power_w=72,
        min_power_cap_w=40,
        idle_power_w=16,
        power_levels=(d.PowerLevel(72, 100),),
        shareable=True,
    )
    fleet = d.Fleet(
        gpu_types=(h100, l4),
        sites=(
            d.Site(
                name="s1",
                kind=d.SiteKind.DATACENTER,
                region="eu-west",
                capacity_kw=120.5,
                pue=1.25,
                redundancy=d.Redundancy.N_PLUS_1,
                modules=3,
                battery_minutes=10.0,
                has_generator=True,
                energy_price_per_kwh=0.21,
                carbon_g_per_kwh=120.0,
            ),
            d.Site(
                name="s2",
                kind=d.SiteKind.EDGE,
                region="eu-north",
                capacity_kw=20.0,
                pue=1.4,
                redundancy=d.Redundancy.TWO_N,
                battery_minutes=5.0,
                energy_price_per_kwh=0.1,
                carbon_g_per_kwh=30.0,
            ),
        ),
        power_domains=(
            d.PowerDomain(name="s1-a", site="s1", capacity_kw=60.0, redundancy=d.Redundancy.TWO_N),
            d.PowerDomain(name="s1-b", site="s1", capacity_kw=60.0),
            d.PowerDomain(
                name="s2-a", site="s2", capacity_kw=20.0, redundancy=d.Redundancy.N_PLUS_1, modules=4
            ),
        ),
        nodes=(
            d.Node("n1", "s1", "s1-a", "H100", 8, 1200, d.NodeState.READY, 64000, 512000),
            d.Node("n2", "s1", "s1-b", "H100", 8, 1200, d.NodeState.DRAINING),
            d.Node("n3", "s2", "s2-a", "L4", 4, 300, d.NodeState.DOWN, 16000, 0),
        ),
        regions=("eu-users",),
        links=(d.Link("eu-users", "s1", 5.5), d.Link("s1", "s2", 10.0)),
    )
    workloads = (
        d.Workload(
            name="llm",
            gpus=2,
            memory_gib=140.0,
            allowed_gpu_types=("H100",),
            min_replicas=2,
            max_replicas=4,
            spread=d.Spread(d.SpreadLevel.SITE, 2),
            survive_site_loss_pct=50,
            backup_minutes=5.0,
            user_region="eu-users",
            max_latency_ms=20.0,
            priority=3,
            min_power_cap_pct=50,
            cpu_milli=8000,
            host_memory_mib=65536,
            current=(d.CurrentReplica("n1", (0, 1)), d.CurrentReplica("n2", (2, 3))),
            move_cost=3,
            max_unavailable_pct=50,
        ),
        d.Workload(
            name="embed",
            gpus=0,
            gpu_milli=250,
            memory_gib=6.0,
            allowed_gpu_types=("L4",),
            spread=d.Spread(d.SpreadLevel.POWER_DOMAIN, 1),
            current=(d.CurrentReplica("n3", (1,)),),
            move_cost=0,
            max_unavailable_count=1,
        ),
        d.Workload(name="plain"),
    )
    options = d.SolveOptions(
        backend=d.Backend.PULP,
        time_limit_s=12.5,
        seed=7,
        workers=4,
        energy_metric=d.EnergyMetric.CARBON,
        optimise_energy=False,
        optimise_moves=False,
        optimise_fragmentation=True,
        max_moves=5,
        max_moves_per_site=2,
        max_moves_per_power_domain=0,
    )
    return d.Problem(fleet=fleet, workloads=workloads, options=options)


def sample_plan(bound: float | None = 123456.0, gap: float | None = 0.01) -> d.Plan:
    budget = d.PowerBudget(
        kind="site",
        name="s1",
        site="s1",
        redundancy=d.Redundancy.N_PLUS_1,
        feeds=3,
        capacity_kw=120.5,
        usable_kw=80.333,
        it_kw=7.8,
        facility_kw=9.75,
        headroom_kw=72.533,
        utilisation_pct=9.7,
        feed_rating_kw=40.1667,
        feed_load_kw=2.6,
        failure_feed_load_kw=3.9,
        survives_failure=True,
    )
    return d.Plan(
        placements=(
            d.ReplicaPlacement("llm", 0, "s1", "s1-a", "n1", (0, 1), 1000, 500),
            d.ReplicaPlacement("embed", 0, "s2", "s2-a", "n3", (2,), 250, 72),
        ),
        budgets=d.PowerBudgets(
            gpus=(d.GpuBudget("n1", 0, 500, 1000, ("llm",)), d.GpuBudget("n1", 2, 60, 0, ())),
            nodes=(
                d.NodeBudget("n1", "s1", "s1-a", True, 1200, 1480),
                d.NodeBudget("n2", "s1", "s1-b", False, 0, 0),
            ),
            power_domains=(
                dataclasses.replace(budget, kind="power_domain", name="s1-a", redundancy=d.Redundancy.TWO_N),
            ),
            sites=(budget,),
            energy_cost_per_h=2.05,
            carbon_kg_per_h=1.17,
        ),
        unplaced=(
            d.UnplacedWorkload(
                "plain",
                (d.Reason("latency", "no site within 20 ms", 3), d.Reason("site_power", "1.2 kW short")),
            ),
        ),
        objective=d.ObjectiveTiers(
            placed_work=90_000_000_000, energy=3_000_000_000_000, moves=1, fragmentation=2
        ),
        info=d.SolveInfo(
            status=d.SolveStatus.FEASIBLE,
            stop_reason=d.StopReason.TIME_LIMIT,
            bound=bound,
            gap=gap,
            backend="ortools",
            solver_version="9.12",
            seed=7,
            wall_s=1.5,
            code_revision="abc123",
            started_at="2026-01-01T00:00:00Z",
            method="lp_guided+polish+model",
            solvers=("glop", "cp-sat"),
        ),
        displaced=(
            d.Displaced("llm", "n2", (2, 3), True, "node_state", "node n2 is DRAINING", to_node="n1"),
            d.Displaced("embed", "n3", (1,), False, "preempted", "taken by llm (priority 3 > 1)", evictor="llm"),
        ),
    )


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
