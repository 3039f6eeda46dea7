"""``placement.diff``: what changes between two plans, the reasons taken from ``Plan.displaced``.

Table-driven on the hand-solved tiny fleet (``datasets/tiny``): each case gives the placements
before and after, the displaced records the engine would give, and the changes expected,
boundaries included (a replica on the same node with other GPUs is a retune, not a move; a removed
workload's evictions are no moves; a forced move is outside the move budget). Then the diff
against real re-plans: its moves are the plan's ``displaced``, replica for replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from fleetplace.datasets import tiny_problem
from placement import solve
from placement.changes import FleetChanges, apply_changes
from placement.core.budgets import compute_budgets
from placement.core.domain import (
    Displaced,
    NodeState,
    ObjectiveTiers,
    Plan,
    Problem,
    Reason,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    UnplacedWorkload,
)
from placement.core.moves import displaced
from placement.diff import diff_plans
from placement.generator import generate
from placement.replan import with_current

TINY = tiny_problem()
R1, R2, EDGE = "dc-a-r1-n01", "dc-a-r2-n01", "edge-b-r1-n01"
LLAMA, VISION, EMBED, WHISPER = "llama-3-70b-chat", "vision-batch", "embedding", "whisper-edge"


def rp(
    workload: str, node: str, gpus: tuple[int, ...], cap: int = 700, milli: int = 1000
) -> ReplicaPlacement:
    n = next(x for x in TINY.fleet.nodes if x.name == node)
    return ReplicaPlacement(workload, 0, n.site, n.power_domain, node, gpus, milli, cap)


def plan_of(
    placements: list[ReplicaPlacement],
    unplaced: tuple[UnplacedWorkload, ...] = (),
    moves: tuple[Displaced, ...] = (),
) -> Plan:
    numbered = []
    seen: dict[str, int] = {}
    for p in placements:
        numbered.append(replace(p, replica=seen.get(p.workload, 0)))
        seen[p.workload] = seen.get(p.workload, 0) + 1
    return Plan(
        placements=tuple(numbered),
        budgets=compute_budgets(TINY, numbered),
        unplaced=unplaced,
        objective=ObjectiveTiers(placed_work=100 * len(numbered)),
        info=SolveInfo(status=SolveStatus.FEASIBLE),
        displaced=moves,
    )


def not_placed(workload: str) -> UnplacedWorkload:
    return UnplacedWorkload(workload, (Reason("gpu_count", "every GPU is taken", 2),))


def chosen(workload: str, node: str, gpus: tuple[int, ...], to: str = "") -> Displaced:
    return Displaced(workload, node, gpus, False, "moved", f"{workload} on {node}: moved by the plan", "", to)


def forced_off(workload: str, node: str, gpus: tuple[int, ...]) -> Displaced:
    return Displaced(workload, node, gpus, True, "node_state", f"{workload} on {node}: node is DRAINING")


@dataclass(frozen=True)
class Case:
    before: list[ReplicaPlacement]
    after: list[ReplicaPlacement]
    unplaced: tuple[UnplacedWorkload, ...] = ()
    moves_in: tuple[Displaced, ...] = ()  # the after plan's ``displaced``
    added: int = 0
    moved: int = 0
    evicted: tuple[str, ...] = ()  # the rule of each eviction
    retuned: int = 0
    moves: int = 0
    unforced: int = 0
    dropped: tuple[str, ...] = ()
    forced: tuple[bool, ...] = field(default=())  # of each move, in order


PREEMPTED = Displaced(VISION, R1, (0,), False, "preempted", "vision-batch: llama took its place", LLAMA)

CASES = {
    "nothing changes": Case([rp(LLAMA, R2, (0, 1))], [rp(LLAMA, R2, (0, 1))]),
    "moved to another rack by choice": Case(
        [rp(VISION, R1, (0,))],
        [rp(VISION, R2, (0,))],
        moves_in=(chosen(VISION, R1, (0,), R2),),
        moved=1,
        moves=1,
        unforced=1,
        forced=(False,),
    ),
    "moved off a drained node: forced, outside the budget": Case(
        [rp(VISION, R1, (0,))],
        [rp(VISION, R2, (0,))],
        moves_in=(forced_off(VISION, R1, (0,)),),
        moved=1,
        moves=1,
        forced=(True,),
    ),
    "same node, other cap: retune, no move": Case(
        [rp(LLAMA, R2, (0, 1), cap=700)], [rp(LLAMA, R2, (0, 1), cap=560)], retuned=1
    ),
    "same node, other GPU: retune, no move": Case([rp(VISION, R1, (0,))], [rp(VISION, R1, (1,))], retuned=1),
    "preempted: evicted with the engine's reason, dropped": Case(
        [rp(VISION, R1, (0,))],
        [rp(LLAMA, R2, (0, 1))],
        unplaced=(not_placed(VISION),),
        moves_in=(PREEMPTED,),
        added=1,
        evicted=("preempted",),
        moves=1,
        unforced=1,
        dropped=(VISION,),
    ),
    "removed from the input: evicted, no move": Case(
        [rp(VISION, R1, (0,)), rp(LLAMA, R2, (0, 1))],
        [rp(LLAMA, R2, (0, 1))],
        evicted=("removed",),
    ),
    "rescaled below what ran (not current any more): forced": Case(
        [rp(LLAMA, R1, (0, 1), cap=560), rp(LLAMA, R2, (0, 1))],
        [rp(LLAMA, R2, (0, 1))],
        evicted=("replicas",),
        moves=1,
    ),
    "its node is gone from the fleet: forced": Case(
        [replace(rp(VISION, R1, (0,)), node="dc-a-r1-n99")],
        [rp(VISION, R1, (0,))],
        moved=1,
        moves=1,
        forced=(True,),
    ),
    "a new replica: added": Case(
        [rp(LLAMA, R2, (0, 1))], [rp(LLAMA, R2, (0, 1)), rp(WHISPER, EDGE, (0,))], added=1
    ),
    "from nothing": Case([], [rp(LLAMA, R2, (0, 1)), rp(EMBED, EDGE, (1,), 72, 500)], added=2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_diff_cases(name: str) -> None:
    case = CASES[name]
    diff = diff_plans(plan_of(case.before), plan_of(case.after, case.unplaced, case.moves_in))
    assert len(diff.added) == case.added, name
    assert len(diff.moved) == case.moved, name
    assert tuple(e.why.rule for e in diff.evicted) == case.evicted, name
    assert len(diff.retuned) == case.retuned, name
    assert diff.moves == case.moves, name
    assert diff.unforced_moves == case.unforced, name
    assert tuple(m.why.forced for m in diff.moved) == case.forced, name
    assert diff.dropped == case.dropped, name
    assert diff.changed == bool(case.added or case.moved or case.evicted or case.retuned), name


def test_a_move_names_both_ends_with_their_caps() -> None:
    diff = diff_plans(plan_of([rp(VISION, R1, (0,), cap=420)]), plan_of([rp(VISION, R2, (1,), cap=700)]))
    (move,) = diff.moved
    assert (move.source.node, move.source.gpu_indices, move.source.power_cap_w) == (R1, (0,), 420)
    assert (move.target.node, move.target.gpu_indices, move.target.power_cap_w) == (R2, (1,), 700)
    assert (move.source.power_domain, move.target.power_domain) == ("dc-a-r1", "dc-a-r2")


def test_a_leaving_replica_pairs_with_an_arrival_in_its_own_site() -> None:
    """One embedding replica leaves dc-a-r1; two arrive, at the edge and in dc-a-r2: the move goes to
    dc-a (same site), the edge one is an addition, whatever order the plan lists them in."""
    before = plan_of([rp(EMBED, R1, (1,), 700, 500)])
    for after in ([rp(EMBED, EDGE, (1,), 72, 500), rp(EMBED, R2, (1,), 700, 500)],
                  [rp(EMBED, R2, (1,), 700, 500), rp(EMBED, EDGE, (1,), 72, 500)]):  # fmt: skip
        diff = diff_plans(before, plan_of(after))
        assert [m.target.node for m in diff.moved] == [R2]
        assert [a.at.node for a in diff.added] == [EDGE]


def test_the_displaced_records_to_node_decides_the_target() -> None:
    """The same two arrivals, but the engine says the replica went to the edge: the move follows it."""
    before = plan_of([rp(EMBED, R1, (1,), 700, 500)])
    after = plan_of(
        [rp(EMBED, R2, (1,), 700, 500), rp(EMBED, EDGE, (1,), 72, 500)],
        moves=(chosen(EMBED, R1, (1,), EDGE),),
    )
    diff = diff_plans(before, after)
    assert [m.target.node for m in diff.moved] == [EDGE]
    assert [a.at.node for a in diff.added] == [R2]


def test_reasons_are_the_engines_not_guessed() -> None:
    before = plan_of([rp(LLAMA, R1, (0, 1), cap=560), rp(LLAMA, R2, (0, 1)), rp(VISION, R1, (0,))])
    after = plan_of([rp(LLAMA, R2, (0, 1))], (not_placed(VISION),), (PREEMPTED,))
    why = {e.workload: e.why for e in diff_plans(before, after).evicted}
    assert (why[VISION].rule, why[VISION].message, why[VISION].evictor) == (
        "preempted",
        PREEMPTED.message,
        LLAMA,
    )
    assert why[LLAMA].rule == "replicas" and why[LLAMA].forced
    assert why[LLAMA].message == f"{LLAMA} on {R1} GPUs [0, 1]: rescaled, 1 replicas run after"


def test_power_changes_per_site_and_power_domain_from_the_budgets() -> None:
    before = plan_of([rp(VISION, R1, (0,))])
    after = plan_of([rp(VISION, R2, (0,))])
    diff = diff_plans(before, after)
    changes = {(c.kind, c.name): c for c in diff.power}
    # the site's draw is unchanged (the same node model in both racks): only the two racks appear
    assert set(changes) == {("power_domain", "dc-a-r1"), ("power_domain", "dc-a-r2")}
    r1, r2 = changes[("power_domain", "dc-a-r1")], changes[("power_domain", "dc-a-r2")]
    node_w = 2185 + 65 + 700  # host, the idle GPU, the replica's GPU at its cap
    assert (r1.before_w, r1.after_w, r1.delta_w) == (node_w, 0, -node_w)
    assert (r2.before_w, r2.after_w, r2.usable_w) == (0, node_w, 4000)
    assert r2.after_pct == pytest.approx(100 * node_w / 4000)
    assert diff_plans(before, before).power == ()


def _deterministic(problem: Problem, limit_s: float = 20.0) -> Problem:
    return replace(problem, options=replace(problem.options, time_limit_s=limit_s, deterministic=True))


@pytest.mark.parametrize(
    "name, problem, drained",
    [
        ("tiny, the busiest node drained", _deterministic(TINY), 1),
        pytest.param(
            "300 GPUs, 4 used nodes drained",
            _deterministic(generate(300, seed=4)),
            4,
            marks=pytest.mark.slow,
        ),
    ],
)
def test_diff_moves_are_the_plans_displaced(name: str, problem: Problem, drained: int) -> None:
    """Plan, then re-plan with the first plan as the current placement and used nodes drained: the
    diff's moves are the second plan's ``displaced``, replica for replica, reasons included; and
    ``core.moves.displaced`` of the instance as planned gives the same records (what ``fleetplace
    diff ID1 ID2`` computes for two stored plans)."""
    first = solve(problem)
    used = sorted({p.node for p in first.placements})[:drained]
    current = with_current(problem, first.placements)
    changed = apply_changes(current, FleetChanges(drain_nodes=tuple(used)))
    already = {n.name for n in problem.fleet.nodes if n.state is NodeState.DRAINING}
    assert {n.name for n in changed.fleet.nodes if n.state is NodeState.DRAINING} == set(used) | already
    second = solve(changed)
    diff = diff_plans(first, second)
    assert diff.moves == len(second.displaced) == second.objective.moves, name
    assert diff.unforced_moves == sum(1 for d in second.displaced if not d.forced), name
    leaving = sorted((x.why.rule, x.why.message) for x in (*diff.moved, *diff.evicted))
    assert leaving == sorted((d.rule, d.message) for d in second.displaced), name
    assert diff.moves >= sum(1 for p in first.placements if p.node in used), name  # the forced ones at least
    assert not any(a.at.node in used for a in diff.added), name
    assert not any(m.target.node in used for m in diff.moved), name
    assert displaced(changed, second.placements) == second.displaced, name
