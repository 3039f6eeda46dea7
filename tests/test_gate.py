"""``placement.gate``: each rule passes at its boundary and refuses one step past it, with its numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetplace.datasets import tiny_problem
from placement.core.budgets import compute_budgets
from placement.core.domain import (
    BlockedMove,
    CurrentReplica,
    Downtime,
    Migration,
    ObjectiveTiers,
    Plan,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
)
from placement.diff import REMOVED, Addition, Eviction, Move, PlanDiff, ReplicaAt, Why
from placement.gate import Gate, check, dropped_running

TINY = tiny_problem()
AT = ReplicaAt("n", "s", "d", (0,), 1000, 700)
CHOSEN = Why("moved", "moved by the plan", False)  # the optimiser's choice: counts against max_moves
FORCED = Why("node_state", "node n is DRAINING", True)  # forced by the input: it does not


def diff_with(
    moved: int = 0,
    evicted: int = 0,
    removed: int = 0,
    dropped: tuple[str, ...] = (),
    forced: int = 0,
) -> PlanDiff:
    """``moved`` unforced moves, ``evicted`` unforced evictions, ``forced`` forced moves,
    ``removed`` evictions of a workload gone from the input."""
    return PlanDiff(
        added=(Addition("w", AT),),
        evicted=tuple(Eviction("w", AT, CHOSEN) for _ in range(evicted))
        + tuple(Eviction("gone", AT, Why(REMOVED, "removed", False)) for _ in range(removed)),
        moved=tuple(Move("w", AT, AT, CHOSEN) for _ in range(moved))
        + tuple(Move("w", AT, AT, FORCED) for _ in range(forced)),
        retuned=(),
        power=(),
        dropped=dropped,
        placed_work_before=0,
        placed_work_after=0,
    )


# the tiny fleet with one replica on dc-a-r2 (its 4,000 W rack): node draw 2,185 + 65 + 700 = 2,950 W,
# 73.75% of the rack; the site dc-a (10,000 W usable) draws 29.5%
ONE_REPLICA = (ReplicaPlacement("vision-batch", 0, "dc-a", "dc-a-r2", "dc-a-r2-n01", (0,), 1000, 700),)
PLAN = Plan(
    ONE_REPLICA, compute_budgets(TINY, ONE_REPLICA), (), ObjectiveTiers(), SolveInfo(SolveStatus.FEASIBLE)
)

CASES = {
    "no rules": (Gate(), diff_with(moved=5), None, []),
    "moves at the limit pass": (Gate(max_moves=5), diff_with(moved=3, evicted=2), None, []),
    "one move over fails": (Gate(max_moves=4), diff_with(moved=3, evicted=2), None, ["moves"]),
    "a removed workload's evictions are no moves": (
        Gate(max_moves=3),
        diff_with(moved=3, removed=4),
        None,
        [],
    ),
    "move budget at the limit passes": (Gate(), diff_with(moved=2), 2, []),
    "move budget one over fails": (Gate(), diff_with(moved=3), 2, ["move_budget"]),
    "forced moves are outside the move budget": (Gate(), diff_with(moved=2, forced=5), 2, []),
    "forced moves count for --fail-if moves": (
        Gate(max_moves=6),
        diff_with(moved=2, forced=5),
        None,
        ["moves"],
    ),
    "a move budget of 0 with forced moves only passes": (Gate(), diff_with(forced=3), 0, []),
    "a dropped running workload fails": (Gate(), diff_with(dropped=("chat",)), None, ["dropped"]),
    "allowed to drop": (Gate(allow_drop=True), diff_with(dropped=("chat",)), None, []),
    "site power at the limit passes": (Gate(max_site_power_pct=29.5), diff_with(), None, []),
    "site power above the limit fails": (Gate(max_site_power_pct=29.4), diff_with(), None, ["site_power"]),
    "domain power at the limit passes": (Gate(max_domain_power_pct=73.75), diff_with(), None, []),
    "domain power above the limit fails": (
        Gate(max_domain_power_pct=73.7),
        diff_with(),
        None,
        ["domain_power"],
    ),
    "every rule at once": (
        Gate(max_moves=0, max_site_power_pct=1, max_domain_power_pct=1),
        diff_with(moved=1, dropped=("chat",)),
        0,
        ["move_budget", "moves", "dropped", "site_power", "domain_power"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gate_rules(name: str) -> None:
    gate, diff, budget, rules = CASES[name]
    assert [f.rule for f in check(gate, diff, PLAN, budget)] == rules


UNSAFE = Migration(
    blocked=(BlockedMove("w", "n", (0,), "site_power", "site s is full"),),
    downtime=(Downtime("w", "m", (1,), 1, 2, False), Downtime("v", "m", (2,), 2, 1, True)),
    safe=False,
)


@pytest.mark.parametrize(
    ("asked", "migration", "rules"),
    [
        pytest.param(True, UNSAFE, ["unsafe_migration"], id="unsafe-refused"),
        pytest.param(True, Migration(), [], id="safe-passes"),
        pytest.param(True, None, [], id="no-migration-nothing-to-check"),
        pytest.param(False, UNSAFE, [], id="unsafe-not-asked"),
    ],
)
def test_unsafe_migration_is_refused_where_asked(
    asked: bool, migration: Migration | None, rules: list[str]
) -> None:
    got = check(Gate(safe_migration=asked), diff_with(), replace(PLAN, migration=migration))
    assert [f.rule for f in got] == rules
    if rules:
        assert "1 blocked move(s), 1 replica(s) down beyond their budget" in got[0].message


def test_failures_carry_their_numbers() -> None:
    failures = check(Gate(max_moves=4, max_domain_power_pct=50), diff_with(moved=3, evicted=2), PLAN, 3)
    text = [str(f) for f in failures]
    assert text[0] == "[move_budget] 5 unforced moves exceed the move budget of 3"
    assert text[1] == "[moves] 5 moves > 4"
    assert (
        text[2]
        == "[domain_power] power domain dc-a/dc-a-r2 draws 3.0 kW, 73.8% of its usable 4.0 kW (limit 50%)"
    )


def test_a_plan_without_solution_is_refused() -> None:
    nothing = replace(PLAN, info=SolveInfo(SolveStatus.NO_SOLUTION))
    assert [f.rule for f in check(Gate(), diff_with(), nothing)] == ["no_solution"]


def test_dropped_running_names_workloads_with_current_replicas_left_out() -> None:
    # tiny: llama and vision-batch run today; the plan places vision-batch only
    assert dropped_running(TINY, PLAN) == ["llama-3-70b-chat"]
    everything = replace(
        TINY,
        workloads=tuple(
            replace(w, current=()) if w.name == "llama-3-70b-chat" else w for w in TINY.workloads
        ),
    )
    assert dropped_running(everything, PLAN) == []
    also = replace(
        TINY,
        workloads=tuple(
            replace(w, current=(CurrentReplica("edge-b-r1-n01", (0,)),)) if w.name == "whisper-edge" else w
            for w in TINY.workloads
        ),
    )
    assert dropped_running(also, PLAN) == ["llama-3-70b-chat", "whisper-edge"]


def test_fail_if_reads_unsafe_migration() -> None:
    from fleetplace.cli_ops import parse_fail_if

    assert parse_fail_if(["unsafe-migration", "moves>3"]) == ({"safe_migration": True, "max_moves": 3}, [])
    _fields, errors = parse_fail_if(["unsafe"])
    assert [e.path for e in errors] == ["--fail-if[0]"] and "unsafe-migration" in errors[0].message
