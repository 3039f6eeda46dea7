"""Stable re-planning (issue 15, items 1-3): the current placement with its caps, move costs,
disruption budgets and upward-only preemption, from the input checks to the verifier."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from placement.core import domain as d
from placement.core.budgets import compute_budgets
from placement.core.energy import replica_work
from placement.core.network import latency_table
from placement.core.objective import evaluate
from placement.core.pinned import pinned_errors
from placement.core.validate import validate
from placement.core.verify import verify
from placement.run.solve import solve
from tests.builders import sample_problem
from tests.mutations import both, wl
from wire.convert import problem_from_request, request_from_problem

# ------------------------------------------------------------------ a small fleet

H = d.GpuType(
    "H", 80.0, 700, 200, 60, (d.PowerLevel(350, 70), d.PowerLevel(500, 88), d.PowerLevel(700, 100)), False
)


def two_rack_fleet(
    r1_kw: float = 100.0, r2_kw: float = 100.0, states: dict[str, d.NodeState] | None = None
) -> d.Fleet:
    """One site; racks r1 (nodes a1, a2) and r2 (b1, b2), each node 8 H GPUs and 1000 W of host.

    A node at cap c draws 1000 + 8 * 60 + 8 * (c - 60) W: 3,800 W at 350, 6,600 W at 700."""
    states = states or {}
    nodes = tuple(
        d.Node(name, "s", rack, "H", 8, 1000, states.get(name, d.NodeState.READY))
        for name, rack in (("a1", "r1"), ("a2", "r1"), ("b1", "r2"), ("b2", "r2"))
    )
    return d.Fleet(
        gpu_types=(H,),
        sites=(d.Site("s", d.SiteKind.DATACENTER, "eu", 1000.0, 1.2),),
        power_domains=(d.PowerDomain("r1", "s", r1_kw), d.PowerDomain("r2", "s", r2_kw)),
        nodes=nodes,
    )


def on(node: str, *gpus: int, cap: int = 0) -> d.CurrentReplica:
    return d.CurrentReplica(node, tuple(gpus), cap)


def plan_of(problem: d.Problem, rows: list[tuple[str, str, tuple[int, ...], int]]) -> d.Plan:
    """A hand-built plan of (workload, node, GPUs, cap) rows; budgets and objective recomputed."""
    nodes = {n.name: n for n in problem.fleet.nodes}
    seen: dict[str, int] = {}
    placements = []
    for w, n, gpus, cap in rows:
        placements.append(
            d.ReplicaPlacement(w, seen.get(w, 0), nodes[n].site, nodes[n].power_domain, n, gpus, 1000, cap)
        )
        seen[w] = seen.get(w, 0) + 1
    placements_t = tuple(placements)
    placed = {p.workload for p in placements_t}
    return d.Plan(
        placements=placements_t,
        budgets=compute_budgets(problem, placements_t),
        unplaced=tuple(d.UnplacedWorkload(w.name, ()) for w in problem.workloads if w.name not in placed),
        objective=evaluate(problem, placements_t),
        info=d.SolveInfo(status=d.SolveStatus.FEASIBLE),
    )


def quick(fleet_: d.Fleet, *workloads: d.Workload, **options: Any) -> d.Problem:
    return d.Problem(fleet_, workloads, d.SolveOptions(time_limit_s=10, **options))


# ------------------------------------------------------------------ item 1: pinned at their recorded cap

PINNED_8 = d.Workload("p", gpus=8, min_replicas=2, max_replicas=2, pinned=True)


@pytest.mark.parametrize(
    ("cap", "r1_kw", "rules"),
    [
        pytest.param(350, 7.6, [], id="capped at 350 W: exactly the rack's 7,600 W"),
        pytest.param(350, 7.599, ["domain_power"], id="capped, one watt short"),
        pytest.param(0, 13.2, [], id="uncapped (no cap recorded): 13,200 W"),
        pytest.param(0, 7.6, ["domain_power"], id="uncapped where capped fits"),
    ],
)
def test_pinned_replicas_draw_at_their_recorded_cap(cap: int, r1_kw: float, rules: list[str]) -> None:
    w = dataclasses.replace(PINNED_8, current=(on("a1", *range(8), cap=cap), on("a2", *range(8), cap=cap)))
    problem = quick(two_rack_fleet(r1_kw=r1_kw), w)
    assert validate(problem) == []
    errors = pinned_errors(problem, latency_table(problem.fleet))
    assert [e.message.split(" breaks ")[1].split(":")[0] for e in errors] == rules


def test_a_pinned_fleet_capped_yesterday_is_solved_at_its_caps() -> None:
    """Issue 15: freezing workloads with ``pinned`` failed (exit 2) where yesterday's plan had
    capped them; at the recorded caps they fit, run there, and earn the capped level's work."""
    w = dataclasses.replace(PINNED_8, current=(on("a1", *range(8), cap=350), on("a2", *range(8), cap=350)))
    other = d.Workload("o", gpus=8)
    problem = quick(two_rack_fleet(r1_kw=7.6), w, other)
    plan = solve(problem)
    assert verify(problem, plan) == []
    pinned = [p for p in plan.placements if p.workload == "p"]
    assert sorted((p.node, p.power_cap_w) for p in pinned) == [("a1", 350), ("a2", 350)]
    assert {p.node for p in plan.placements if p.workload == "o"} <= {"b1", "b2"}
    assert plan.objective.placed_work == 2 * replica_work(w, 70) + replica_work(other, 100)


def test_the_verifier_names_a_pinned_replica_not_at_its_recorded_cap() -> None:
    w = dataclasses.replace(PINNED_8, current=(on("a1", *range(8), cap=350), on("a2", *range(8))))
    problem = quick(two_rack_fleet(), w)
    good = plan_of(problem, [("p", "a1", tuple(range(8)), 350), ("p", "a2", tuple(range(8)), 700)])
    assert verify(problem, good) == []
    bad = plan_of(problem, [("p", "a1", tuple(range(8)), 700), ("p", "a2", tuple(range(8)), 700)])
    got = [(v.rule, v.subject) for v in verify(problem, bad)]
    assert got == [("pinned", "p[0]")]


# ------------------------------------------------------------------ the input


@pytest.mark.parametrize(
    ("mutation", "path", "words"),
    [
        pytest.param(wl(0, current=(d.CurrentReplica("n1", (0, 1), 500),)), "", "", id="a level is fine"),
        pytest.param(wl(0, current=(d.CurrentReplica("n1", (0, 1), 700),)), "", "", id="the top level is fine"),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 600),)),
            "workloads[0].current[0].powerCapW", "not one of the H100 levels", id="not a level",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350),), min_power_cap_pct=60),
            "", "", id="running below the floor: raised in place, not an input error",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350), d.CurrentReplica("n1", (2, 3))),
               min_power_cap_pct=60, pinned=True),
            "workloads[0].current[0].powerCapW", "below the workload's floor", id="pinned below the floor",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350), d.CurrentReplica("n1", (2, 3))),
               min_power_cap_pct=50, pinned=True),
            "", "", id="pinned exactly at the floor",
        ),
        pytest.param(
            wl(1, current=(d.CurrentReplica("n3", (1,), 40),)),
            "workloads[1].current[0].powerCapW", "runs uncapped", id="fractional capped",
        ),
        pytest.param(wl(1, current=(d.CurrentReplica("n3", (1,), 72),)), "", "", id="fractional at max"),
        pytest.param(
            wl(0, max_unavailable_count=1, max_unavailable_pct=10),
            "workloads[0].maxUnavailablePct", "not both", id="count and percent",
        ),
        pytest.param(
            both(wl(0, move_cost=-1), wl(0, max_unavailable_count=-2, max_unavailable_pct=None)),
            "workloads[0].moveCost", "negative", id="negative move cost",
        ),
    ],
)  # fmt: skip
def test_current_caps_and_budgets_are_checked(mutation: Any, path: str, words: str) -> None:
    errors = validate(mutation(sample_problem()))
    if not path:
        assert errors == []
    else:
        assert errors and errors[0].path == path and words in errors[0].message, errors


def test_several_bad_budget_values_are_reported_at_once() -> None:
    p = sample_problem()
    p = dataclasses.replace(
        p,
        options=dataclasses.replace(
            p.options, max_moves=-1, max_moves_per_site=-1, max_moves_per_power_domain=2
        ),
    )
    p = wl(0, max_unavailable_count=100_001, max_unavailable_pct=None)(p)
    assert [e.path for e in validate(p)] == [
        "workloads[0].maxUnavailableCount",
        "options.maxMoves",
        "options.maxMovesPerSite",
    ]


@pytest.mark.parametrize(
    ("count", "pct", "current", "want"),
    [
        pytest.param(None, None, 4, None, id="no budget"),
        pytest.param(0, None, 4, 0, id="count 0"),
        pytest.param(3, None, 4, 3, id="count"),
        pytest.param(None, 25, 4, 1, id="25% of 4"),
        pytest.param(None, 26, 4, 2, id="26% of 4 rounds up"),
        pytest.param(None, 0, 4, 0, id="0%"),
        pytest.param(None, 100, 3, 3, id="100%"),
    ],
)
def test_max_unavailable_as_a_pod_disruption_budget(
    count: int | None, pct: int | None, current: int, want: int | None
) -> None:
    w = d.Workload("w", max_replicas=8, max_unavailable_count=count, max_unavailable_pct=pct,
                   current=tuple(d.CurrentReplica("n", (i,)) for i in range(current)))  # fmt: skip
    assert w.max_unavailable == want


def test_the_new_fields_survive_the_wire() -> None:
    p = sample_problem()
    p = wl(
        0,
        current=(d.CurrentReplica("n1", (0, 1), 500),),
        move_cost=7,
        max_unavailable_count=2,
        max_unavailable_pct=None,
    )(p)
    p = dataclasses.replace(p, options=dataclasses.replace(p.options, max_moves=0, max_moves_per_site=None))
    back = problem_from_request(request_from_problem(p))
    assert back == p
    assert back.workloads[0].current[0].power_cap_w == 500
    assert back.options.max_moves == 0 and back.options.max_moves_per_site is None
    assert back.workloads[2].move_cost == 1  # absent means 1


# ------------------------------------------------------------------ items 1-3: the current placement first

RUN_A = d.Workload("a", gpus=8, current=(on("a1", *range(8)),))
RUN_B = d.Workload("b", gpus=4, max_replicas=2, current=(on("b1", 0, 1, 2, 3), on("b1", 4, 5, 6, 7)))


def test_nothing_changed_nothing_moves_and_moves_rank_above_energy() -> None:
    # with current replicas the moves tier comes before energy; nothing changed, nothing moves
    from placement.exact.model.registry import tiers_for

    problem = quick(two_rack_fleet(), RUN_A, RUN_B, d.Workload("new", gpus=8))
    assert tiers_for(problem) == ("placed_work", "moves", "energy", "fragmentation")
    assert tiers_for(quick(two_rack_fleet(), d.Workload("new", gpus=8))) == (
        "placed_work",
        "energy",
        "moves",
        "fragmentation",
    )
    plan = solve(problem)
    assert verify(problem, plan) == []
    assert plan.objective.moves == 0 and plan.displaced == ()
    assert {p.workload for p in plan.placements} == {"a", "b", "new"}


def test_a_drained_node_forces_its_replicas_and_the_plan_says_so() -> None:
    problem = quick(two_rack_fleet(states={"a1": d.NodeState.DRAINING}), RUN_A, RUN_B, max_moves=0)
    plan = solve(problem)
    assert verify(problem, plan) == []
    assert [(x.workload, x.node, x.forced, x.rule) for x in plan.displaced] == [
        ("a", "a1", True, "node_state")
    ]
    assert "DRAINING" in plan.displaced[0].message and plan.displaced[0].to_node in {"a2", "b2"}
    assert plan.objective.moves == 1  # the forced one only: b stays on b1


@pytest.mark.parametrize(
    ("cost", "moves"),
    [pytest.param(1, 1, id="default cost 1"), pytest.param(5, 5, id="cost 5"), pytest.param(0, 0, id="free")],
)
def test_move_cost_weighs_the_moves_tier(cost: int, moves: int) -> None:
    problem = quick(two_rack_fleet(), dataclasses.replace(RUN_A, move_cost=cost))
    plan = plan_of(problem, [("a", "a2", tuple(range(8)), 700)])
    assert plan.objective.moves == moves


BUDGET_CASES = [
    pytest.param({}, [], id="no budget"),
    pytest.param({"max_moves": 1}, [], id="max_moves 1: exactly the one move"),
    pytest.param({"max_moves": 0}, [("disruption", "options.maxMoves")], id="max_moves 0"),
    pytest.param({"max_moves_per_site": 0}, [("disruption", "s")], id="per site 0"),
    pytest.param({"max_moves_per_power_domain": 0}, [("disruption", "r1")], id="per power domain 0"),
    pytest.param({"max_moves_per_power_domain": 1}, [], id="per power domain 1"),
]


@pytest.mark.parametrize(("budget", "want"), BUDGET_CASES)
def test_the_verifier_checks_the_disruption_budgets(
    budget: dict[str, int], want: list[tuple[str, str]]
) -> None:
    problem = quick(two_rack_fleet(), RUN_A, **budget)
    moved = plan_of(problem, [("a", "b1", tuple(range(8)), 700)])
    assert [(v.rule, v.subject) for v in verify(problem, moved)] == want


@pytest.mark.parametrize(
    ("count", "pct", "want"),
    [
        pytest.param(1, None, [], id="count 1: one of two moved"),
        pytest.param(0, None, [("disruption", "b")], id="count 0"),
        pytest.param(None, 50, [], id="50% of 2"),
        pytest.param(None, 49, [], id="49% of 2 rounds up to 1"),
        pytest.param(None, 0, [("disruption", "b")], id="0%"),
    ],
)
def test_max_unavailable_per_workload(
    count: int | None, pct: int | None, want: list[tuple[str, str]]
) -> None:
    b = dataclasses.replace(RUN_B, max_unavailable_count=count, max_unavailable_pct=pct)
    problem = quick(two_rack_fleet(), b)
    one_moved = plan_of(problem, [("b", "b1", (0, 1, 2, 3), 700), ("b", "b2", (0, 1, 2, 3), 700)])
    assert [(v.rule, v.subject) for v in verify(problem, one_moved)] == want


def test_forced_moves_are_outside_the_budgets() -> None:
    problem = quick(two_rack_fleet(states={"a1": d.NodeState.DOWN}), RUN_A, max_moves=0, max_moves_per_site=0)
    assert verify(problem, plan_of(problem, [("a", "a2", tuple(range(8)), 700)])) == []


@pytest.mark.parametrize(
    ("taker_priority", "rules"),
    [
        pytest.param(2, [], id="higher priority may evict"),
        pytest.param(1, [("preemption", "a")], id="equal priority may not"),
    ],
)
def test_preemption_upward_only_under_a_budget(taker_priority: int, rules: list[tuple[str, str]]) -> None:
    _preemption(taker_priority, rules)


def test_without_a_budget_a_running_workload_may_be_left_out() -> None:
    """No budget: leaving it out is not a rule broken (its work and its move's price are lost)."""
    problem = quick(two_rack_fleet(), RUN_A, d.Workload("t", gpus=8))
    plan = plan_of(problem, [("t", "a1", tuple(range(8)), 700)])
    assert verify(problem, plan) == []
    assert plan.objective.move_price == 8 * 1000 * 100  # a's one replica, its own work


@pytest.mark.parametrize(
    ("taker_priority", "rules"),
    [pytest.param(2, [], id="higher"), pytest.param(1, [("preemption", "a")], id="equal")],
)
def test_preemption_with_the_options_budget(taker_priority: int, rules: list[tuple[str, str]]) -> None:
    taker = d.Workload("t", gpus=8, priority=taker_priority)
    problem = quick(two_rack_fleet(), RUN_A, taker, max_moves=5)
    assert [
        (v.rule, v.subject) for v in verify(problem, plan_of(problem, [("t", "a1", tuple(range(8)), 700)]))
    ] == rules


def _preemption(taker_priority: int, rules: list[tuple[str, str]]) -> None:
    taker = d.Workload("t", gpus=8, priority=taker_priority)
    problem = quick(two_rack_fleet(), dataclasses.replace(RUN_A, max_unavailable_count=1), taker)
    plan = plan_of(problem, [("t", "a1", tuple(range(8)), 700)])
    assert [(v.rule, v.subject) for v in verify(problem, plan)] == rules
    if not rules:
        from placement.core.moves import displaced

        got = displaced(problem, plan.placements)
        assert [(x.rule, x.evictor, x.forced) for x in got] == [("preempted", "t", False)]


def test_a_budget_of_zero_keeps_the_current_placement() -> None:
    problem = quick(two_rack_fleet(), RUN_A, RUN_B, d.Workload("new", gpus=8, priority=5), max_moves=0)
    plan = solve(problem)
    assert verify(problem, plan) == []
    assert plan.objective.moves == 0
    assert {(p.workload, p.node) for p in plan.placements if p.workload != "new"} == {
        ("a", "a1"),
        ("b", "b1"),
    }


@pytest.mark.parametrize(
    ("r1_kw", "rule", "forced"),
    [
        pytest.param(10.0, "domain_power", True, id="rack-cut-below-what-runs"),
        pytest.param(14.0, "moved", False, id="rack-holds-what-runs"),
    ],
)
def test_a_rack_whose_capacity_fell_forces_its_moves(r1_kw: float, rule: str, forced: bool) -> None:
    """Two replicas at 700 W per GPU draw 13,200 W in r1; cut to 10 kW, moving one is forced (the
    plan says so, with the watts) and outside a budget of 0; at 14 kW it is the plan's choice."""
    two = d.Workload(
        "w", gpus=8, max_replicas=2, current=(on("a1", *range(8), cap=700), on("a2", *range(8), cap=700))
    )
    problem = quick(two_rack_fleet(r1_kw=r1_kw), two, max_moves=0)
    plan = plan_of(problem, [("w", "a1", tuple(range(8)), 700), ("w", "b1", tuple(range(8)), 700)])
    from placement.core.moves import displaced

    (gone,) = displaced(problem, plan.placements)
    assert (gone.node, gone.rule, gone.forced) == ("a2", rule, forced)
    if forced:
        assert "13,200 W" in gone.message and "10,000 W" in gone.message
    assert [v.rule for v in verify(problem, plan)] == ([] if forced else ["disruption"])
