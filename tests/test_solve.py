"""End to end: small hand-solved problems through solve() with both backends; every plan verifies."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from placement import solve, verify
from placement.construct.greedy import greedy
from placement.core.candidates import filter_candidates
from placement.core.domain import (
    Backend,
    CurrentReplica,
    Node,
    NodeState,
    PowerDomain,
    Problem,
    SolveOptions,
    SolveStatus,
    StopReason,
    Workload,
)
from placement.core.errors import InputError
from placement.core.objective import evaluate
from placement.exact.backends.base import Progress
from placement.generator import generate
from tests.builders import A, B, fleet, frac, golden, node, rack_fleet, site, verified

BACKENDS = [Backend.ORTOOLS, Backend.PULP]


@pytest.mark.parametrize("backend", BACKENDS)
def test_golden_optimum(backend: Backend) -> None:
    # a proven optimum ends the solve at once; the long limit is for a busy machine, where
    # starting CBC's process alone can take seconds
    p = golden(backend)
    p = replace(p, options=replace(p.options, time_limit_s=60))
    plan = solve(p)
    assert verify(p, plan) == []
    assert (plan.objective.placed_work, plan.objective.energy) == (360_000, 75_000_000)
    assert (plan.objective.moves, plan.objective.fragmentation) == (0, 1)
    assert sorted(x.power_cap_w for x in plan.placements) == [250, 400]
    assert plan.info.status is SolveStatus.OPTIMAL
    assert plan.info.stop_reason is StopReason.NONE
    assert plan.info.bound is None or plan.info.bound >= 360_000
    (unplaced,) = plan.unplaced
    assert unplaced.workload == "b"
    assert [r.rule for r in unplaced.reasons] == ["gpu_count"]
    assert "holds it: a (2)" in unplaced.reasons[0].message


@pytest.mark.parametrize("backend", BACKENDS)
def test_info_is_stamped(backend: Backend) -> None:
    plan = solve(golden(backend, seed=7))
    info = plan.info
    assert info.backend == backend.value
    assert info.solver_version
    assert info.seed == 7
    assert info.started_at.endswith("+00:00")
    assert info.wall_s > 0  # (no timing bound: a loaded machine may take the whole limit)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fractional_replicas_share_one_gpu(backend: Backend) -> None:
    f1 = Workload(name="f1", gpus=0, gpu_milli=500, memory_gib=10.0)
    f2 = replace(f1, name="f2")
    p = Problem(fleet((node("n1"),)), (f1, f2), SolveOptions(backend=backend, time_limit_s=10))
    plan = solve(p)
    assert verify(p, plan) == []
    assert plan.objective.placed_work == 2 * 500 * 100
    assert plan.objective.fragmentation == 2  # one node, one shared GPU
    assert {x.gpu_indices for x in plan.placements} == {(plan.placements[0].gpu_indices[0],)}
    assert {x.power_cap_w for x in plan.placements} == {400}


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_picks_the_cheaper_site(backend: Backend) -> None:
    f = fleet(
        (node("n1"), node("n2", s="cheap", pd="p2")),
        sites=(site("dc1"), replace(site("cheap"), energy_price_per_kwh=0.05)),
    )
    p = Problem(f, (replace(B, max_replicas=1),), SolveOptions(backend=backend, time_limit_s=10))
    plan = solve(p)
    (x,) = plan.placements
    assert (x.node, x.power_cap_w) == ("n2", 400)
    assert plan.objective.energy == 550 * 50_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_current_replica_stays_on_its_gpu(backend: Backend) -> None:
    w = replace(B, current=(CurrentReplica("n2", (1,)),))
    f = fleet((node("n1"), node("n2")))
    p = Problem(f, (w,), SolveOptions(backend=backend, time_limit_s=10))
    plan = solve(p)
    (x,) = plan.placements
    assert (x.node, x.gpu_indices, plan.objective.moves) == ("n2", (1,), 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spread_and_survival(backend: Backend) -> None:
    w = replace(B, min_replicas=2, max_replicas=2, survive_site_loss_pct=50)
    f = fleet(
        (node("n1"), node("n2", pd="r2"), node("n3", s="dc2", pd="r3")), sites=(site("dc1"), site("dc2"))
    )
    p = Problem(f, (w,), SolveOptions(backend=backend, time_limit_s=10))
    plan = solve(p)
    assert verify(p, plan) == []
    assert sorted(x.site for x in plan.placements) == ["dc1", "dc2"]


def test_filter_reason_for_unplaceable_workload() -> None:
    big = replace(B, name="big", memory_gib=100.0)
    p = Problem(fleet((node("n1"),)), (big,), SolveOptions(time_limit_s=5))
    plan = solve(p)
    assert plan.placements == ()
    assert plan.info.status is SolveStatus.OPTIMAL
    ((r,),) = [u.reasons for u in plan.unplaced]
    assert r.rule == "gpu_memory" and r.candidates_excluded == 1
    assert "needs 100 GiB per GPU" in r.message


def test_invalid_input_raises_with_every_error() -> None:
    bad = replace(B, min_replicas=3, max_replicas=2)
    p = Problem(fleet((node("n1"),)), (bad, replace(bad, name="c")), SolveOptions(time_limit_s=5))
    with pytest.raises(InputError) as e:
        solve(p)
    assert len(e.value.errors) >= 2


def test_progress_starts_with_greedy() -> None:
    events: list[Progress] = []
    solve(golden(Backend.ORTOOLS), progress=events.append)
    assert (events[0].tier, events[0].source) == ("placed_work", "greedy")
    assert events[0].objective > 0


def test_stop_returns_the_verified_greedy_plan() -> None:
    """A stop set as soon as the greedy's plan is verified (its progress event): the solve
    returns at least that plan, verified, FEASIBLE and INTERRUPTED (a heuristic's plan that
    had already arrived may replace it, never a worse one)."""
    p = golden(Backend.ORTOOLS)
    stop = threading.Event()

    def on_progress(event: Progress) -> None:
        if event.source == "greedy":
            stop.set()

    plan = solve(p, progress=on_progress, stop=stop)
    assert plan.info.stop_reason is StopReason.INTERRUPTED
    assert plan.info.status is SolveStatus.FEASIBLE
    assert verify(p, plan) == []
    greedy_work = evaluate(p, greedy(filter_candidates(p)).to_placements()).placed_work
    assert greedy_work > 0
    assert plan.objective.placed_work >= greedy_work


def test_stop_before_the_start_places_nothing_it_has_not_verified() -> None:
    """A stop set before the solve starts: whatever comes back is verified, and a plan that
    places nothing says NO_SOLUTION, never FEASIBLE."""
    p = golden(Backend.ORTOOLS)
    stop = threading.Event()
    stop.set()
    plan = solve(p, stop=stop)
    assert plan.info.stop_reason is StopReason.INTERRUPTED
    assert verify(p, plan) == []
    if plan.placements:
        assert plan.info.status is SolveStatus.FEASIBLE
    else:
        assert plan.info.status is SolveStatus.NO_SOLUTION


def test_tiers_switched_off_are_still_reported() -> None:
    p = golden(Backend.ORTOOLS, optimise_energy=False, optimise_moves=False, optimise_fragmentation=False)
    plan = solve(p)
    assert plan.objective.placed_work == 360_000
    assert plan.objective.energy == 75_000_000  # the only optimum of tier 1 draws 750 W


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_generated_fleet_verifies_and_beats_greedy(backend: Backend, seed: int) -> None:
    p = generate(48, seed)
    p = replace(p, options=replace(p.options, backend=backend, time_limit_s=4))
    plan = solve(p)
    assert verify(p, plan) == []
    base = greedy(filter_candidates(p)).to_placements()
    from placement.core.objective import evaluate

    # tier 1 as compared: the generated fleets run workloads today, so a move has its price
    assert plan.objective.net_work >= evaluate(p, base).net_work
    assert plan.info.wall_s < 4 + 2
    placed = {x.workload for x in plan.placements}
    assert {u.workload for u in plan.unplaced} == {w.name for w in p.workloads} - placed


def test_power_reason_when_higher_priority_work_holds_the_rack() -> None:
    # rack 550 W: a@400 W draws 100 + 2*50 + 350 = 550 W; b would need 200 W more at 250 W
    f = fleet((node("n1"),), domains=(PowerDomain("r1", "dc1", 0.55),))
    p = Problem(f, (replace(A, max_replicas=1), B), SolveOptions(time_limit_s=10))
    plan = solve(p)
    assert [(x.workload, x.power_cap_w) for x in plan.placements] == [("a", 400)]
    ((r,),) = [u.reasons for u in plan.unplaced]
    assert (r.rule, r.requested, r.available, r.unit, r.where) == ("domain_power", 200, 0, "W", "dc1/r1")
    assert "closest: n1 needs 0.2 kW" in r.message and "holds it: a (1)" in r.message


@pytest.mark.parametrize("limit_s", [0.001, 0.05, 0.5])
def test_time_limit_too_short_for_the_model_still_gives_a_verified_plan(limit_s: float) -> None:
    # at 1 ms not even the greedy may run to its end: a partial greedy plan is still valid; one
    # that places nothing is no solution (issue 13), never FEASIBLE
    p = generate(2000, 3)
    p = replace(p, options=replace(p.options, time_limit_s=limit_s))
    plan = solve(p)
    assert verify(p, plan) == []
    assert plan.info.status is (SolveStatus.FEASIBLE if plan.placements else SolveStatus.NO_SOLUTION)
    placed = {x.workload for x in plan.placements}
    assert {u.workload for u in plan.unplaced} == {w.name for w in p.workloads} - placed


# Pinned: P holds GPU 1 of n1 uncapped (400 W): 100 + 2*50 + 350 = 550 W of the rack's 750 W.
# Hand-solved: the 200 W left take one replica of a at 250 W on GPU 0 (750 W exactly);
# placed_work = P 1*1000*100 + a 2*1000*80 = 260,000; b finds no GPU; no move (P stays).
PINNED = Workload(name="p", gpus=1, memory_gib=40.0, pinned=True, current=(CurrentReplica("n1", (1,)),))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pinned_replica_stays_and_the_rest_fills_around_it(backend: Backend) -> None:
    f = fleet((node("n1"),), domains=(PowerDomain("r1", "dc1", 0.75),))
    p = Problem(f, (PINNED, A, B), SolveOptions(backend=backend, time_limit_s=10))
    plan = solve(p)
    assert verify(p, plan) == []
    pinned = [x for x in plan.placements if x.workload == "p"]
    assert [(x.node, x.gpu_indices, x.power_cap_w) for x in pinned] == [("n1", (1,), 400)]
    assert [(x.workload, x.gpu_indices, x.power_cap_w) for x in plan.placements if x.workload != "p"] == [
        ("a", (0,), 250)
    ]
    assert (plan.objective.placed_work, plan.objective.moves) == (260_000, 0)
    assert plan.info.status is SolveStatus.OPTIMAL


@pytest.mark.parametrize(
    ("case", "nodes", "current", "rule"),
    [
        ("node down", (node("n1", state=NodeState.DOWN),), ((1,),), "node_state"),
        ("two pinned at 400 W: 900 W in a 750 W rack", (node("n1"),), ((0,), (1,)), "domain_power"),
        ("one pinned at 400 W: 550 W fits", (node("n1"),), ((1,),), None),
    ],
)
def test_pinned_replica_breaking_a_hard_rule_is_an_input_error(
    case: str, nodes: tuple[Node, ...], current: tuple[tuple[int, ...], ...], rule: str | None
) -> None:
    f = fleet(nodes, domains=(PowerDomain("r1", "dc1", 0.75),))
    pinned = replace(
        PINNED, current=tuple(CurrentReplica("n1", c) for c in current), max_replicas=len(current)
    )
    p = Problem(f, (pinned,), SolveOptions(time_limit_s=5))
    if rule is None:
        assert verify(p, solve(p)) == [], case
        return
    with pytest.raises(InputError) as err:
        solve(p)
    assert [e.path for e in err.value.errors][:1] == ["workloads[0].current[0]"], case
    assert rule in str(err.value), case


@pytest.mark.slow
def test_portfolio_sends_the_heuristics_and_a_bound_and_is_killed_on_close() -> None:
    import time

    from placement.run.methods import HEURISTICS
    from placement.run.portfolio import Portfolio

    p = generate(300, 2)
    port = Portfolio(filter_candidates(p))
    port.poll(time.monotonic() + 60)
    assert port.done
    assert {c.method for c in port.plans} == {*HEURISTICS, "lp_guided"}
    guided = [c.objective.net_work for c in port.plans if c.method == "lp_guided"]
    assert guided == sorted(set(guided))  # a variant is sent only when it is better (tier 1: net work)
    assert port.bound is not None
    # the tightest bound sent is the LP child's integer bound (here no tighter than the LP's)
    from placement.bounds.bound import group_lp, integer_bound

    lp = group_lp(p, solution=True)
    assert lp is not None
    assert port.bound == integer_bound(lp) <= lp.bound
    plan = solve(replace(p, options=replace(p.options, time_limit_s=5)))
    assert plan.info.bound is not None and plan.info.bound >= plan.objective.placed_work
    # tier 1 compares net work (placed work less the moves' price: generated workloads run today)
    assert plan.objective.net_work >= max(c.objective.net_work for c in port.plans)
    port.close()
    slow = Portfolio(filter_candidates(generate(8000, 1)))  # its methods take far longer than this test
    slow.close()
    assert slow.done and not slow.plans


def test_portfolio_bound_is_the_integer_bound_where_racks_bind() -> None:
    """Profile S seed 0: 16 racks whose power binds; the integer bound is 0.4% below the LP's.

    Nothing here depends on the machine's speed: the integer bound is computed with each rack's
    program solved to optimality (the portfolio's own call, time-limited per rack, may stop
    anywhere between that and the LP bound), and the portfolio's bound is checked for what holds
    whatever its limits allowed: at most the LP's, and never below a plan it sent.
    """
    import time

    from placement.bounds.bound import group_lp, integer_bound
    from placement.generator import profile
    from placement.run.portfolio import Portfolio

    p = profile("S", 0)
    port = Portfolio(filter_candidates(p))
    try:
        port.poll(time.monotonic() + 120)
        lp = group_lp(p, solution=True)
        assert lp is not None
        exact = integer_bound(lp, per_domain_ms=None)
        assert exact is not None and exact < lp.bound
        assert port.bound is not None and port.bound <= lp.bound
        assert all(c.objective.placed_work <= min(port.bound, exact) for c in port.plans)
    finally:
        port.close()


def test_fill_adds_left_out_workloads_to_a_plan_and_keeps_it_valid() -> None:
    from placement.construct.greedy import fill
    from placement.core.objective import evaluate
    from placement.core.state import FleetState

    p = generate(300, 4)
    prepared = filter_candidates(p)
    full = greedy(prepared).to_placements()
    placed = sorted({x.workload for x in full})
    keep = set(placed[::2])  # a plan that left every other workload out
    st = FleetState.from_placements(prepared, [x for x in full if x.workload in keep])
    added = fill(st)
    assert added > 0
    filled = st.to_placements()
    assert keep < {x.workload for x in filled}
    assert evaluate(p, filled).placed_work > evaluate(p, [x for x in full if x.workload in keep]).placed_work
    assert verified(p, filled) == []


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_portfolio_children_die_with_the_process_that_started_them(tmp_path: object) -> None:
    """A solver worker killed on cancel must not leave its portfolio running (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import time

    from placement.run.portfolio import Portfolio

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: starts a portfolio that runs for long, reports its children, waits
        try:
            os.close(r)
            port = Portfolio(filter_candidates(generate(8000, 1)))
            os.write(w, (",".join(str(kid.pid) for kid in port._kids.values()) + "\n").encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        kids = [int(x) for x in f.readline().split(",")]
    assert len(kids) == 2 and all(not _gone(k) for k in kids)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    until = time.monotonic() + 10
    while time.monotonic() < until and not all(_gone(k) for k in kids):
        time.sleep(0.05)
    assert all(_gone(k) for k in kids), kids


def test_without_a_model_the_solve_ends_with_the_fgd_repack(monkeypatch: pytest.MonkeyPatch) -> None:
    """One GPU, 810 milli alone or 320 + 460 + 220 together: every greedy places the 810 first;
    where no model is built, the solve's last step (placement.construct.fgd.improve) fills the GPU."""
    import importlib

    solve_mod = importlib.import_module("placement.run.solve")
    monkeypatch.setattr(solve_mod, "MODEL_MAX_VARS", 0)

    class NoPortfolio:  # only the greedy's plan in hand (the LP-guided plan may find the fill too)
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.plans: list[object] = []
            self.bound = None
            self.done = True

        def poll(self, until: float) -> None:
            pass

        def polish(self, *args: object) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(solve_mod, "Portfolio", NoPortfolio)  # the path of fleets too big for the model
    p = Problem(
        rack_fleet((1,)),
        (frac("big", 810), frac("a", 320), frac("b", 460), frac("c", 220)),
        SolveOptions(time_limit_s=10),
    )
    plan = solve(p)
    assert verify(p, plan) == []
    assert {x.workload for x in plan.placements} == {"a", "b", "c"}


def test_without_a_model_progress_reports_the_portfolio_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No model (as at 40,000 GPUs): after the greedy, the portfolio's bound and better plans are
    reported while the solve waits for them, and the last report is what the plan holds."""
    import importlib

    monkeypatch.setattr(importlib.import_module("placement.run.solve"), "MODEL_MAX_VARS", 0)
    p = generate(300, 2)
    events: list[Progress] = []
    plan = solve(replace(p, options=replace(p.options, time_limit_s=20)), progress=events.append)
    # the first plan in hand: the greedy's, or (generated workloads run today) the current placement's
    assert events[0].tier == "placed_work" and events[0].source in ("greedy", "keep_current")
    later = [e for e in events[1:] if e.tier == "placed_work"]
    assert later and later[-1].bound is not None
    assert [e.elapsed_s for e in later] == sorted(e.elapsed_s for e in later)
    assert later[-1].objective >= events[0].objective
    assert plan.objective.placed_work >= later[-1].objective
