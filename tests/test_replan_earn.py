"""Moves that earn their place (issue 15, items 2 and 6): the move price, the ``earn`` search under
a budget, what each move earns, the curve, and what the report says of them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetplace.report import render
from placement.construct.keep import keep_current
from placement.core import domain as d
from placement.core.assemble import assemble
from placement.core.candidates import filter_candidates
from placement.core.objective import evaluate
from placement.core.verify import verify
from placement.improve.earn import earn
from placement.run.solve import solve

GPU = d.GpuType("X", 80.0, 700, 60, 60, (d.PowerLevel(350, 70), d.PowerLevel(700, 100)), False)
WORK_8 = 8 * 1000 * 100  # priority 1, eight whole GPUs at full throughput
PRICE_8 = WORK_8  # one move of such a replica (move_cost 1): its whole work


def racks(nodes: int = 2, rack_kw: float = 200.0) -> d.Fleet:
    """One site, one rack of ``nodes`` nodes a0, a1, ... of 8 X GPUs (plenty of watts)."""
    return d.Fleet(
        gpu_types=(GPU,),
        sites=(d.Site("s", d.SiteKind.DATACENTER, "eu", 1000.0, 1.2),),
        power_domains=(d.PowerDomain("r", "s", rack_kw),),
        nodes=tuple(d.Node(f"a{k}", "s", "r", "X", 8, 500) for k in range(nodes)),
    )


def eight(name: str, priority: int = 1, current: str = "", **kw: object) -> d.Workload:
    cur = (d.CurrentReplica(current, tuple(range(8)), 700),) if current else ()
    return d.Workload(name, gpus=8, memory_gib=320.0, priority=priority, current=cur, **kw)  # type: ignore[arg-type]


def full_fleet(newcomer: int, low_cost: int = 1, **options: object) -> d.Problem:
    """Two full nodes (``low`` on a0, ``mid`` on a1 with move_cost 20, priority 1, running) and
    ``new`` of priority ``newcomer`` with no room: it runs only if ``low`` (or ``mid``) is preempted."""
    return d.Problem(
        racks(),
        (
            eight("low", current="a0", move_cost=low_cost),
            eight("mid", current="a1", move_cost=20),
            eight("new", priority=newcomer),
        ),
        d.SolveOptions(time_limit_s=8, **options),  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------ the price of a move


@pytest.mark.parametrize(
    ("move_cost", "max_moves", "price"),
    [
        pytest.param(1, None, PRICE_8, id="priced-at-its-work"),
        pytest.param(3, None, 3 * PRICE_8, id="move-cost-three"),
        pytest.param(0, None, 0, id="free-to-move"),
        pytest.param(1, 4, 0, id="a-budget-spends-moves-freely"),
    ],
)
def test_a_moved_replica_costs_its_price_in_tier_one(
    move_cost: int, max_moves: int | None, price: int
) -> None:
    p = d.Problem(
        racks(), (eight("low", current="a0", move_cost=move_cost),), d.SolveOptions(max_moves=max_moves)
    )
    moved = (d.ReplicaPlacement("low", 0, "s", "r", "a1", tuple(range(8)), 1000, 700),)
    got = evaluate(p, moved)
    assert (got.placed_work, got.move_price, got.net_work) == (WORK_8, price, WORK_8 - price)
    kept = evaluate(p, (replace(moved[0], node="a0"),))
    assert kept.move_price == 0 and (kept.key()[0] > got.key()[0]) == (price > 0)  # tier 1: net work


# ------------------------------------------------------------------ earn: preempt only where it pays


@pytest.mark.parametrize(
    ("newcomer", "low_cost", "options", "placed"),
    [
        # newcomer of priority p in low's place: p x 0.8M gained, 0.8M lost, and the price of the
        # move, move_cost x 0.8M: it pays where (p - 1) x 0.8M exceeds the price
        pytest.param(3, 1, {}, True, id="priority-3-move-cost-1-pays"),
        pytest.param(2, 1, {}, False, id="priority-2-move-cost-1-only-breaks-even"),
        pytest.param(3, 2, {}, False, id="priority-3-move-cost-2-only-breaks-even"),
        pytest.param(4, 2, {}, True, id="priority-4-move-cost-2-pays"),
        pytest.param(2, 0, {}, True, id="free-to-move"),
        pytest.param(2, 3, {"max_moves": 1}, True, id="a-budget-of-one-buys-it-at-any-cost"),
        pytest.param(2, 1, {"max_moves": 0}, False, id="a-budget-of-zero-keeps-all"),
        pytest.param(1, 1, {}, False, id="equal-priority-never-pays"),
        pytest.param(1, 0, {"max_moves": 1}, False, id="under-a-budget-no-equal-preemption"),
    ],
)
def test_a_newcomer_preempts_only_where_the_move_pays(
    newcomer: int, low_cost: int, options: dict[str, int], placed: bool
) -> None:
    problem = full_fleet(newcomer, low_cost, **options)
    plan = solve(problem)
    assert verify(problem, plan) == []
    names = {p.workload for p in plan.placements}
    assert ("new" in names) is placed
    assert "mid" in names  # the costly one (move_cost 5) is never the one to go
    if placed:
        (gone,) = plan.displaced
        assert (gone.workload, gone.forced) == ("low", False)
        if newcomer > 1:
            assert (gone.rule, gone.evictor) == ("preempted", "new")
        assert gone.earns_work == newcomer * WORK_8  # the work started on a0, the node it left
        assert plan.move_curve[-1] == d.MovePoint(1, newcomer * WORK_8, gone.earns_energy)
    else:
        assert plan.displaced == () and plan.move_curve == ()


def test_earn_spends_at_most_the_budget_and_each_action_gains() -> None:
    """Four newcomers of priority 3 and four running workloads of priority 1 on four full nodes:
    with a budget of two moves, exactly two newcomers run."""
    fleet_ = racks(4)
    running = tuple(eight(f"old{k}", current=f"a{k}") for k in range(4))
    newcomers = tuple(eight(f"new{k}", priority=3) for k in range(4))
    problem = d.Problem(fleet_, running + newcomers, d.SolveOptions(max_moves=2))
    st = keep_current(filter_candidates(problem))
    before = evaluate(problem, st.to_placements())
    actions = earn(st)
    after = evaluate(problem, st.to_placements())
    assert [a.moved for a in actions] == [1, 1]
    assert all(a.work > 0 for a in actions)
    assert after.placed_work - before.placed_work == sum(a.work for a in actions) == 2 * (3 - 1) * WORK_8
    assert sum(1 for p in st.to_placements() if p.workload.startswith("new")) == 2


def _halves(max_moves: int | None) -> d.Problem:
    """``low`` (priority 1, eight GPUs) runs on the only node; ``n1`` and ``n2`` (priority 2, four
    GPUs each) are new. Either newcomer alone earns what ``low`` loses (4 x 2 = 8 x 1): only the
    two together, where ``low`` makes way, earn."""
    halves = tuple(d.Workload(f"n{k}", gpus=4, memory_gib=160.0, priority=2, max_replicas=1) for k in (1, 2))
    return d.Problem(racks(1), (eight("low", current="a0"), *halves), d.SolveOptions(max_moves=max_moves))


@pytest.mark.parametrize(
    ("max_moves", "runs"),
    [
        pytest.param(1, {"n1", "n2"}, id="budget-of-one-low-makes-way"),
        pytest.param(0, {"low"}, id="budget-of-none-nothing-moves"),
        pytest.param(None, {"low"}, id="priced-no-victims"),
    ],
)
def test_a_victim_makes_way_for_newcomers_that_earn_together(max_moves: int | None, runs: set[str]) -> None:
    problem = _halves(max_moves)
    prepared = filter_candidates(problem)
    st = keep_current(prepared)
    actions = earn(st)
    got = st.to_placements()
    assert {p.workload for p in got} == runs
    _plan, bad = assemble(prepared, got, d.SolveInfo(d.SolveStatus.FEASIBLE), explain_until=0.0)
    assert bad == []
    if max_moves:
        assert (
            sum(a.moved for a in actions) == 1
            and sum(a.work for a in actions) == 2 * 4 * 2 * 100_000 - WORK_8
        )


# ------------------------------------------------------------------ keep_current: a scale-up


def test_a_scaled_up_workload_is_placed_afresh_with_its_new_minimum() -> None:
    """Two replicas run, the minimum rose to three and there is room: keep_current places three
    (it was left out when all its replicas were kept)."""
    cur = tuple(d.CurrentReplica("a0", (k,), 700) for k in range(2))
    w = d.Workload("svc", gpus=1, memory_gib=40.0, min_replicas=3, max_replicas=3, current=cur)
    problem = d.Problem(racks(1), (w,), d.SolveOptions(max_moves=0))
    placements = keep_current(filter_candidates(problem)).to_placements()
    assert len(placements) == 3
    assert {p.gpu_indices for p in placements} >= {(0,), (1,)}  # the two running ones stay


def test_a_scale_up_that_cannot_fit_is_not_a_preemption() -> None:
    """Under a budget, a running workload scaled up past the fleet is left out by the change, not
    preempted by a plan: the verifier accepts the plan that leaves it out."""
    cur = tuple(d.CurrentReplica("a0", (k,), 700) for k in range(8))
    w = d.Workload("svc", gpus=1, memory_gib=40.0, min_replicas=9, max_replicas=9, current=cur)
    problem = d.Problem(racks(1), (w,), d.SolveOptions(max_moves=0, time_limit_s=5))
    plan = solve(problem)
    assert plan.placements == () and verify(problem, plan) == []
    assert not w.protected(problem.options)
    assert replace(w, min_replicas=8).protected(problem.options)


# ------------------------------------------------------------------ what the report says


def test_the_report_lists_moves_what_they_earn_and_who_runs_today() -> None:
    problem = full_fleet(3)
    text = render(problem, solve(problem))
    assert "Moves: 1 current replica not kept on their node, 0 forced by the input (preempted 1)" in text
    assert "gain against moves" in text and "1 moves 24.0" in text  # 3 x 8 GPUs of placed work
    assert "move price" in text
    left_out = render(full_fleet(1), solve(full_fleet(1)))
    assert "new" in left_out and "Moves:" not in left_out
    kept_out = solve(problem)
    assert any(u.workload == "low" for u in kept_out.unplaced)
    assert "low (runs today: 1 replicas)" in text


def test_earn_lowers_caps_in_place_before_it_moves_anything() -> None:
    """A rack of 9 kW: ``low`` runs on a0 at 700 W per GPU (6,100 W); ``new`` needs a1 at 350 W
    (3,300 W). Lowering low's cap to 350 W in place (no move) makes room: both run, nothing moves."""
    problem = d.Problem(
        racks(2, rack_kw=9.0), (eight("low", current="a0"), eight("new", priority=2)), d.SolveOptions()
    )
    st = keep_current(filter_candidates(problem))
    assert {p.workload for p in st.to_placements()} == {"low"}  # keep_current alone has no room
    (action,) = earn(st)
    got = {p.workload: p for p in st.to_placements()}
    assert (action.moved, got["low"].node, got["low"].power_cap_w, got["new"].node) == (0, "a0", 350, "a1")
    assert action.work == (2 * 70 + 70 - 100) * 8000  # new at 70%, low from 100% to 70%
    plan = solve(problem)
    assert verify(problem, plan) == [] and plan.displaced == ()
    assert {p.workload for p in plan.placements} == {"low", "new"}


def test_a_scaled_up_workload_placed_anew_names_its_moves_forced() -> None:
    """Two replicas run on a0; the minimum rose to three with spread over three nodes, so the
    workload is placed anew; the replicas it leaves are forced moves (rule ``replicas``)."""
    cur = tuple(d.CurrentReplica("a0", (k,), 700) for k in range(2))
    w = d.Workload(
        "svc",
        gpus=1,
        memory_gib=40.0,
        min_replicas=3,
        max_replicas=3,
        spread=d.Spread(d.SpreadLevel.NODE, 3),
        current=cur,
    )
    problem = d.Problem(racks(3), (w,), d.SolveOptions(max_moves=0, time_limit_s=5))
    plan = solve(problem)
    assert verify(problem, plan) == [] and len(plan.placements) == 3
    moved = [m for m in plan.displaced]
    assert all((m.rule, m.forced) == ("replicas", True) for m in moved)
    assert len(moved) == 2 - sum(1 for p in plan.placements if p.node == "a0")


def test_the_status_line_says_what_the_bound_is_on() -> None:
    """Where moves are priced, the bound is on placed work less their price, and the line says so."""
    priced = solve(full_fleet(3))
    assert priced.objective.move_price > 0
    assert "placed work less the moves' price" in render(full_fleet(3), priced).splitlines()[1]
    plain = d.Problem(racks(), (eight("new", priority=2),), d.SolveOptions(time_limit_s=5))
    line = render(plain, solve(plain)).splitlines()[1]
    assert "placed work" in line and "moves' price" not in line


def _two_sites() -> d.Fleet:
    """Sites s1 and s2, one rack and one node of 8 X GPUs each: a0 in s1, b0 in s2."""
    return d.Fleet(
        gpu_types=(GPU,),
        sites=tuple(d.Site(s, d.SiteKind.DATACENTER, "eu", 1000.0, 1.2) for s in ("s1", "s2")),
        power_domains=(d.PowerDomain("r1", "s1", 200.0), d.PowerDomain("r2", "s2", 200.0)),
        nodes=(d.Node("a0", "s1", "r1", "X", 8, 500), d.Node("b0", "s2", "r2", "X", 8, 500)),
    )


@pytest.mark.parametrize(
    ("on_a0", "on_b0", "shape", "rule", "after"),
    [
        pytest.param(
            3, 1, {"survive_site_loss_pct": 50}, "site_survival", 2, id="survivors-raised-by-a-scale-up"
        ),
        pytest.param(
            4, 0, {"spread": d.Spread(d.SpreadLevel.SITE, 2)}, "spread", 3, id="spread-over-two-sites"
        ),
    ],
)
def test_current_replicas_that_break_their_own_rules_move_as_forced(
    on_a0: int, on_b0: int, shape: dict[str, object], rule: str, after: int
) -> None:
    """Four replicas run (min_replicas 4, raised from 2); where they run they break the workload's
    site survival (losing s1 leaves one of the two now needed) or a spread over two sites: under a
    budget of no moves the plan still re-places them, and names those moves forced by that rule."""
    cur = tuple(d.CurrentReplica("a0", (k,), 700) for k in range(on_a0)) + tuple(
        d.CurrentReplica("b0", (k,), 700) for k in range(on_b0)
    )
    w = d.Workload("svc", gpus=1, memory_gib=40.0, min_replicas=4, max_replicas=4, current=cur, **shape)  # type: ignore[arg-type]
    problem = d.Problem(_two_sites(), (w,), d.SolveOptions(max_moves=0, time_limit_s=5))
    plan = solve(problem)
    assert verify(problem, plan) == [] and len(plan.placements) == 4
    assert sum(1 for p in plan.placements if p.node == "a0") == after  # the fewest moves
    assert len(plan.displaced) == on_a0 - after
    assert all((m.rule, m.forced) == (rule, True) for m in plan.displaced)
