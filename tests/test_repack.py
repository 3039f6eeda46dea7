"""Repacking power domains (placement.improve.polish): more placed work where watts bind, every rule kept."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from placement.construct.greedy import greedy, placed_work
from placement.core.candidates import filter_candidates
from placement.core.domain import Problem, Spread, SpreadLevel
from placement.core.objective import evaluate
from placement.core.state import Fit, FleetState
from placement.generator import generate
from placement.improve.polish import consolidate, polish, repack_domains, swap_sets
from placement.run.portfolio import Portfolio
from tests.builders import CAPPED_WORK, FULL_WORK, ONE_GPU, one_node, two_domains, verified


def test_the_last_watts_run_more_replicas_at_a_lower_level() -> None:
    """8 GPUs under 2,100 W (host 100, idle 8 x 50): the greedy's 4 at 400 W and one at 250 W
    (2,100 W, 480,000) become 8 at 250 W (2,100 W, 640,000)."""
    problem = one_node(2100, replace(ONE_GPU, max_replicas=8), gpu_count=8)
    prepared = filter_candidates(problem)
    st = greedy(prepared)
    assert placed_work(st) == 4 * FULL_WORK + CAPPED_WORK
    assert repack_domains(st) == 8 * CAPPED_WORK - (4 * FULL_WORK + CAPPED_WORK)
    assert sorted(p.power_cap_w for p in st.to_placements()) == [250] * 8
    assert st.domain_w[("s", "pd")] == 2100
    assert verified(problem, st.to_placements()) == []


def test_a_higher_tier_gets_the_watts_the_lowest_tier_gives_back() -> None:
    """One node of 3 GPUs under 800 W (250 W powered): priority 2 at 250 W, priority 1 at 400 W,
    no watts for the third GPU. Repacked, priority 2 runs at 400 W and priority 1 at 250 W:
    2 x 100 + 80 against 2 x 80 + 100."""
    high = replace(ONE_GPU, name="high", priority=2)
    low = replace(ONE_GPU, name="low", priority=1)
    problem = replace(one_node(800, high, gpu_count=3), workloads=(high, low))
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(0, 0, (0,), 0))
    st.add(1, Fit(0, 1, (1,), 0))
    assert repack_domains(st) == 1000 * (2 * 100 + 80 - (2 * 80 + 100))
    caps = {p.workload: p.power_cap_w for p in st.to_placements()}
    assert caps == {"high": 400, "low": 250}
    assert verified(problem, st.to_placements()) == []


def test_a_workload_placed_nowhere_is_all_or_nothing() -> None:
    """Min 3 replicas and 2 GPUs: never placed, however much the program would like the work."""
    problem = one_node(10_000, replace(ONE_GPU, min_replicas=3, max_replicas=3), gpu_count=2)
    st = FleetState(filter_candidates(problem))
    assert repack_domains(st) == 0
    assert st.placements == []


@pytest.mark.parametrize(("spread", "replicas"), [(None, 2), (Spread(SpreadLevel.POWER_DOMAIN, 2), 2)])
def test_a_replica_the_rules_need_stays(spread: Spread | None, replicas: int) -> None:
    """Two replicas (min 2), one capped in the tight rack pd-1, one in pd-2: repacking pd-1 may
    change its level but not drop it below the minimum, nor break the spread over two racks."""
    problem = two_domains(350, spread, replicas=replicas)
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(prepared.node_index["n1"], 0, (0,), 0))
    st.add(0, Fit(prepared.node_index["n2"], 1, (0,), 0))
    repack_domains(st)
    assert len(st.placements) == 2
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize("seed", range(6))
def test_repacked_generated_fleets_stay_valid_and_never_lose_work(seed: int) -> None:
    """Generated fleets (power binding at some racks, spread, survival, fractional and
    multi-GPU replicas): the greedy's plan repacked verifies and places at least as much."""
    problem = generate(400, seed, binding_rack_share=0.9, demand_ratio=1.5)
    prepared = filter_candidates(problem)
    st = greedy(prepared)
    before = placed_work(st)
    gained = repack_domains(st)
    assert gained >= 0
    assert placed_work(st) == before + gained
    assert evaluate(problem, st.to_placements()).placed_work == before + gained
    assert verified(problem, st.to_placements()) == []


def test_polish_repacks_where_asked_only() -> None:
    problem = one_node(2100, replace(ONE_GPU, max_replicas=8), gpu_count=8)
    prepared = filter_candidates(problem)
    plain, packed = greedy(prepared), greedy(prepared)
    assert polish(plain, None, repack=False)[2] == 0
    assert polish(packed, None, repack=True)[2] > 0
    assert placed_work(packed) == 8 * CAPPED_WORK > placed_work(plain)


def test_the_portfolio_polishes_its_best_plan_and_drops_the_source() -> None:
    """The polished plan comes back from the child as a plan, replaces the one it was made from,
    verifies and places at least as much as every other plan received."""
    problem = generate(400, 1, binding_rack_share=0.9, demand_ratio=1.5)
    prepared = filter_candidates(problem)
    portfolio = Portfolio(prepared)
    until = time.monotonic() + 60
    try:
        while not portfolio.done and time.monotonic() < until:
            portfolio.poll(min(until, time.monotonic() + 0.5))
            portfolio.polish(until, lambda c: c.objective.placed_work)
    finally:
        portfolio.close()
    polished = [c for c in portfolio.plans if c.polished]
    assert polished
    best = max(portfolio.plans, key=lambda c: c.objective.placed_work)
    assert best.polished
    assert best.method == "lp_guided"
    assert best.objective == evaluate(problem, best.placements)
    assert verified(problem, best.placements) == []


def two_racks_for_a_swap(low_floor_pct: int = 0) -> Problem:
    """Rack pd-1 (600 W: host 100, idle 2 x 50, two GPUs at 250 W) with node n1, rack pd-2
    ample with node n2; 2 GPUs each. Workload high: priority 2, one 2-GPU replica; low:
    priority 1, two 1-GPU replicas."""
    base = two_domains(600)
    n1 = replace(base.fleet.nodes[0], gpu_count=2)
    n2 = replace(base.fleet.nodes[1], gpu_count=2)
    high = replace(ONE_GPU, name="high", gpus=2, memory_gib=20.0, priority=2)
    low = replace(
        ONE_GPU, name="low", priority=1, min_replicas=2, max_replicas=2, min_power_cap_pct=low_floor_pct
    )
    return replace(base, fleet=replace(base.fleet, nodes=(n1, n2)), workloads=(high, low))


@pytest.mark.parametrize(("floor_pct", "swapped"), [(0, True), (90, False)])
def test_swap_sets_gives_a_capped_replica_the_gpus_of_lower_tier_replicas(
    floor_pct: int, swapped: bool
) -> None:
    """high (2 GPUs) capped at 250 W on n1, the two 1-GPU low replicas at 400 W on n2: swapped,
    high runs at 400 W on n2's GPUs and low at 250 W on n1's; every GPU keeps its cap, so each
    rack draws what it drew, and the plan earns 2 x 2 x 20,000 - 2 x 20,000 more. Not where
    low may not run at 250 W (a floor of 90% of 400 W)."""
    problem = two_racks_for_a_swap(floor_pct)
    prepared = filter_candidates(problem)
    n1, n2 = prepared.node_index["n1"], prepared.node_index["n2"]
    st = FleetState(prepared)
    st.add(0, Fit(n1, 0, (0, 1), 0))
    st.add(1, Fit(n2, 1, (0,), 0))
    st.add(1, Fit(n2, 1, (1,), 0))
    before, draw = placed_work(st), dict(st.domain_w)
    assert swap_sets(st) == (1 if swapped else 0)
    where = sorted((p.workload, p.node, p.gpu_indices, p.power_cap_w) for p in st.to_placements())
    if swapped:
        assert where == [("high", "n2", (0, 1), 400), ("low", "n1", (0,), 250), ("low", "n1", (1,), 250)]
        assert placed_work(st) == before + 2 * 2 * 1000 * 20 - 2 * 1000 * 20
    else:
        assert where == [("high", "n1", (0, 1), 250), ("low", "n2", (0,), 400), ("low", "n2", (1,), 400)]
        assert placed_work(st) == before
    assert dict(st.domain_w) == draw
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize(("spread", "swapped"), [(None, 1), (Spread(SpreadLevel.POWER_DOMAIN, 2), 0)])
def test_swap_sets_keeps_a_spread(spread: Spread | None, swapped: int) -> None:
    """low has a third replica on n3 in pd-1 (at 250 W, pd-1 now 950 W): swapped, all three would
    be in pd-1, which a spread over two power domains forbids."""
    base = two_racks_for_a_swap()
    n3 = replace(base.fleet.nodes[0], name="n3", gpu_count=1)
    pd1 = replace(base.fleet.power_domains[0], capacity_kw=0.95)
    low = replace(base.workloads[1], min_replicas=3, max_replicas=3, spread=spread)
    fleet = replace(
        base.fleet, nodes=(*base.fleet.nodes, n3), power_domains=(pd1, base.fleet.power_domains[1])
    )
    problem = replace(base, fleet=fleet, workloads=(base.workloads[0], low))
    prepared = filter_candidates(problem)
    n1, n2, n3i = (prepared.node_index[n] for n in ("n1", "n2", "n3"))
    st = FleetState(prepared)
    st.add(0, Fit(n1, 0, (0, 1), 0))
    st.add(1, Fit(n2, 1, (0,), 0))
    st.add(1, Fit(n2, 1, (1,), 0))
    st.add(1, Fit(n3i, 0, (0,), 0))
    assert verified(problem, st.to_placements()) == []
    assert swap_sets(st) == swapped
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize("too_big", [False, True])
def test_an_lp_over_its_column_cap_is_given_up_at_once_and_the_polish_takes_the_greedy_plan(
    monkeypatch: pytest.MonkeyPatch, too_big: bool
) -> None:
    """Where the estimated columns pass the cap (XL; here a cap of 0), the LP child sends no
    bound and no plan, and the plan polished is the caller's own."""
    import placement.run.methods as methods_mod
    from placement.run.portfolio import Offer

    if too_big:
        monkeypatch.setattr(methods_mod, "LP_TOO_BIG", 0)
    problem = generate(400, 2, binding_rack_share=0.9, demand_ratio=1.5)
    prepared = filter_candidates(problem)
    mine = greedy(prepared).to_placements()
    in_hand = Offer("greedy", mine, evaluate(problem, mine), 0.0)
    portfolio = Portfolio(prepared)
    until = time.monotonic() + 60
    try:
        while not portfolio.done and time.monotonic() < until:
            portfolio.poll(min(until, time.monotonic() + 0.5))
            portfolio.polish(until, lambda c: c.objective.placed_work, in_hand)
    finally:
        portfolio.close()
    methods = {c.method for c in portfolio.plans}
    assert ("lp_guided" in methods) is not too_big
    polished = [c for c in portfolio.plans if c.polished]
    assert polished
    if too_big:  # the greedy's plan beats the heuristics' here, so it is the one polished
        assert [c.method for c in polished] == ["greedy"]
        assert polished[0].objective.placed_work >= in_hand.objective.placed_work


def three_nodes(domain_w: int, spread: Spread | None = None) -> Problem:
    """Nodes n1-n3 of 2 GPUs (host 100 W, idle 50 W a GPU) in one rack capped at ``domain_w``;
    high: priority 2, two 1-GPU replicas that must run at 400 W; low: priority 1, one 2-GPU replica."""
    base = one_node(domain_w, ONE_GPU)
    nodes = tuple(replace(base.fleet.nodes[0], name=f"n{i}", gpu_count=2) for i in (1, 2, 3))
    high = replace(ONE_GPU, name="high", priority=2, min_replicas=2, max_replicas=2, min_power_cap_pct=100)
    high = replace(high, spread=spread)
    low = replace(ONE_GPU, name="low", gpus=2, priority=1)
    return replace(base, fleet=replace(base.fleet, nodes=nodes), workloads=(high, low))


def high_on_two_nodes(problem: Problem) -> FleetState:
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(prepared.node_index["n1"], 1, (0,), 0))
    st.add(0, Fit(prepared.node_index["n2"], 1, (0,), 0))
    return st


def test_a_lightly_used_node_is_powered_off() -> None:
    """One of high's replicas moves to the other's node, on its free GPU at 400 W: the emptied
    node's host and idle power (200 W) go back to the rack, and no replica loses work."""
    problem = three_nodes(1500)
    st = high_on_two_nodes(problem)
    before, draw = placed_work(st), st.domain_w[("s", "pd")]
    assert draw == 2 * (100 + 2 * 50 + 350)
    assert consolidate(st) == ["s"]
    where = sorted((p.node, p.power_cap_w) for p in st.to_placements())
    assert where in ([("n1", 400), ("n1", 400)], [("n2", 400), ("n2", 400)])
    assert st.domain_w[("s", "pd")] == draw - 200
    assert placed_work(st) == before
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize(("domain_w", "spread"), [(1500, Spread(SpreadLevel.NODE, 2)), (1100 + 5000, None)])
def test_a_node_stays_powered_where_a_rule_needs_it_or_watts_do_not_bind(
    domain_w: int, spread: Spread | None
) -> None:
    """A spread over two nodes keeps high on n1 and n2; a rack with 5 kW to spare is left alone."""
    problem = three_nodes(domain_w, spread)
    st = high_on_two_nodes(problem)
    rows = sorted(st.placements)
    assert consolidate(st) == []
    assert sorted(st.placements) == rows


def test_polish_spends_the_watts_a_powered_off_node_gives_back() -> None:
    """At 1,500 W, low (2 GPUs, at least 600 W on a node of its own) fits beside high's two
    powered nodes (1,100 W) only once one of them is off; high may not run lower. Repacking
    alone cannot place it; the polish powers n2 off and places it."""
    problem = three_nodes(1500)
    alone = high_on_two_nodes(problem)
    assert repack_domains(alone) == 0
    st = high_on_two_nodes(problem)
    polish(st, None, repack=True)
    placed = sorted((p.workload, p.node) for p in st.to_placements())
    assert [w for w, _n in placed] == ["high", "high", "low"]
    assert (
        placed_work(st) == 2 * 2 * FULL_WORK + 2 * CAPPED_WORK
    )  # high: priority 2 at 400 W; low: 2 GPUs at 250 W
    assert verified(problem, st.to_placements()) == []
