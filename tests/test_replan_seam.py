"""``placement.replan``: the seam of the nightly rebalance (the current placement in, a plan out).

The seam fills ``current`` (node, GPUs and power cap) from the stored plan, applies the changes,
hands ``--max-moves`` to the solve as ``SolveOptions.max_moves`` and returns today's re-plan,
whose ``migration`` is the make-before-break sequence the transient verifier checked."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetplace.datasets import tiny_problem
from placement import solve
from placement.changes import FleetChanges, Rescale
from placement.core.budgets import compute_budgets
from placement.core.domain import (
    CurrentReplica,
    NodeState,
    Plan,
    Problem,
    ReplicaPlacement,
    StepKind,
    Workload,
)
from placement.core.errors import InputError
from placement.core.verify import verify
from placement.core.verify_sequence import verify_migration
from placement.replan import ReplanBudgets, replan, running_plan, with_current

TINY = tiny_problem()
R1, R2, EDGE = "dc-a-r1-n01", "dc-a-r2-n01", "edge-b-r1-n01"


def deterministic(problem: Problem, limit_s: float = 20.0) -> Problem:
    return replace(problem, options=replace(problem.options, time_limit_s=limit_s, deterministic=True))


def rp(workload: str, replica: int, node: str, gpus: tuple[int, ...], cap: int = 560) -> ReplicaPlacement:
    n = next(x for x in TINY.fleet.nodes if x.name == node)
    return ReplicaPlacement(workload, replica, n.site, n.power_domain, node, gpus, 1000, cap)


def test_with_current_takes_the_placements_in_replica_order() -> None:
    placements = [rp("llama-3-70b-chat", 1, R1, (0, 1)), rp("llama-3-70b-chat", 0, R2, (0, 1))]
    problem = with_current(TINY, placements)
    by_name = {w.name: w for w in problem.workloads}
    assert by_name["llama-3-70b-chat"].current == (
        CurrentReplica(R2, (0, 1), 560),
        CurrentReplica(R1, (0, 1), 560),
    )
    # vision-batch ran in the input's own current, not in these placements: it runs nowhere now
    assert by_name["vision-batch"].current == ()


@pytest.mark.parametrize(
    "name, placement, kept",
    [
        ("a node of the fleet", rp("vision-batch", 0, R1, (1,)), True),
        ("an unknown node", replace(rp("vision-batch", 0, R1, (1,)), node="gone"), False),
        ("a GPU index beyond the node", rp("vision-batch", 0, R1, (2,)), False),
        ("another GPU count per replica", rp("vision-batch", 0, R1, (0, 1)), False),
    ],
)
def test_with_current_keeps_only_replicas_that_can_run_as_they_are(
    name: str, placement: ReplicaPlacement, kept: bool
) -> None:
    vision = next(w for w in with_current(TINY, [placement]).workloads if w.name == "vision-batch")
    assert (vision.current != ()) is kept, name


def test_with_current_leaves_pinned_workloads_alone() -> None:
    pinned = Workload(name="frozen", gpus=1, memory_gib=10, pinned=True, current=(CurrentReplica(R1, (1,)),))
    problem = replace(TINY, workloads=(*TINY.workloads, pinned))
    moved = [replace(rp("frozen", 0, R2, (0,)))]
    assert (
        next(w for w in with_current(problem, moved).workloads if w.name == "frozen").current
        == pinned.current
    )


def test_replan_applies_the_changes_and_plans_around_a_drained_node() -> None:
    first = solve(deterministic(TINY))
    problem = with_current(deterministic(TINY), first.placements)
    seen: list[Problem] = []

    def solve_fn(p: Problem) -> Plan:
        seen.append(p)
        return solve(p)

    out = replan(problem, FleetChanges(drain_nodes=(R2,)), ReplanBudgets(max_moves=3), solve_fn)
    assert seen == [out.problem]  # the changed instance is what was solved
    assert {n.name: n.state for n in out.problem.fleet.nodes}[R2] is NodeState.DRAINING
    assert not any(p.node == R2 for p in out.plan.placements)
    assert out.problem.options.max_moves == 3  # the budget reached the solve
    assert verify(out.problem, out.plan) == []
    migration = out.migration
    assert migration is not None and migration is out.plan.migration
    assert verify_migration(out.problem, out.plan, migration) == []
    # what ran on the drained node is stopped there; nothing starts on it
    stopped = {(s.workload, s.node) for s in migration.steps if s.kind is StepKind.STOP}
    assert {(p.workload, R2) for p in first.placements if p.node == R2} <= stopped
    assert not any(s.node == R2 for s in migration.steps if s.kind is StepKind.START)


@pytest.mark.parametrize(
    ("name", "max_moves", "unforced"),
    [
        ("no budget: vision-batch is preempted", None, 1),
        ("a budget of 0 keeps it", 0, 0),
        ("1 is enough", 1, 1),
    ],
)
def test_the_move_budget_is_held_by_the_solve(name: str, max_moves: int | None, unforced: int) -> None:
    """The tiny fleet as it runs (llama on dc-a-r2, vision-batch on dc-a-r1): unbudgeted, the re-plan
    preempts vision-batch (priority 1) for more valuable work; ``max_moves=0`` keeps it running."""
    out = replan(deterministic(TINY), FleetChanges(), ReplanBudgets(max_moves=max_moves))
    assert sum(1 for d in out.plan.displaced if not d.forced) == unforced, name
    assert verify(out.problem, out.plan) == [], name


def test_replan_reports_problems_of_added_items_under_the_change() -> None:
    bad = Workload(name="huge", gpus=2000, memory_gib=10)
    changes = FleetChanges(add_workloads=(bad,), rescale_workloads=(Rescale("embedding", max_replicas=2),))
    with pytest.raises(InputError) as raised:
        replan(TINY, changes, ReplanBudgets())
    paths = [e.path for e in raised.value.errors]
    assert paths and all(p.startswith("changes.addWorkloads[0].") for p in paths), paths


def test_running_plan_is_the_current_placement_at_its_caps_with_its_budgets() -> None:
    """Tiny's current replicas record no cap (0: the board maximum, 700 W); one at 560 W runs there."""
    plan = running_plan(TINY)
    assert sorted((p.workload, p.node, p.gpu_indices, p.power_cap_w) for p in plan.placements) == [
        ("llama-3-70b-chat", R2, (0, 1), 700),
        ("vision-batch", R1, (0,), 700),
    ]
    assert plan.budgets == compute_budgets(TINY, plan.placements)
    assert plan.objective.moves == 0
    capped = with_current(TINY, [rp("vision-batch", 0, R1, (0,), cap=560)])
    (only,) = running_plan(capped).placements
    assert (only.workload, only.power_cap_w) == ("vision-batch", 560)
