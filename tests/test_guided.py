"""The LP-guided plan: valid whatever the LP says, below the LP's bound, and ahead where power binds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.bounds.bound import GroupLP, Prices, Residual, group_lp
from placement.construct.greedy import greedy, placed_work, raise_levels, relocate, swap_tiers
from placement.construct.guided import _Budgets, _Priced, guided
from placement.core.candidates import filter_candidates
from placement.core.domain import Spread, SpreadLevel
from placement.core.objective import evaluate
from placement.core.state import Fit, FleetState
from placement.generator import generate
from tests.builders import CAPPED_WORK, FULL_WORK, ONE_GPU, one_node, two_domains, two_sites, verified


def test_power_bound_node_runs_every_gpu_capped_where_the_greedy_runs_four_at_the_top() -> None:
    """8 GPUs under 2,100 W (host 100, idle 50): 8 at 250 W draw 1,700 W and earn 8 x 80;
    best level first, the greedy runs 4 at 400 W (1,900 W), one at 250 W, then nothing fits: 480."""
    problem = one_node(2100, replace(ONE_GPU, max_replicas=8), gpu_count=8)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    prepared = filter_candidates(problem)
    plan = guided(prepared, lp)
    assert placed_work(plan) == 8 * 1000 * 80
    assert placed_work(greedy(prepared)) == 4 * 1000 * 100 + 1000 * 80
    assert lp.bound >= placed_work(plan)
    assert verified(problem, plan.to_placements()) == []


def test_budgets_taken_and_released_come_back_exactly() -> None:
    problem = one_node(10_000, replace(ONE_GPU, max_replicas=4), gpu_count=4)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    prepared = filter_candidates(problem)
    b = _Budgets(prepared, lp)
    before = {k: dict(v) for k, v in b.left.items()}
    group = prepared.groups[0].index
    levels = b.levels(0, group, (0, 1))
    assert levels == (0, 1)  # the LP runs the top level: every level up to it is allowed
    b.take(0, group, 1)
    b.take(0, group, 1)
    assert sum(sum(v.values()) for v in b.left.values()) == pytest.approx(
        sum(sum(v.values()) for v in before.values()) - 2000
    )
    b.release(0)
    assert b.left == before


def test_no_budget_no_levels() -> None:
    """A workload outside every class (never placeable for the LP) gets no level from the guide."""
    problem = one_node(10_000, replace(ONE_GPU, max_replicas=4), gpu_count=4)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    prepared = filter_candidates(problem)
    b = _Budgets(prepared, lp)
    assert b.levels(7, prepared.groups[0].index, (0, 1)) is None


def test_priced_guide_goes_where_watts_are_cheap_and_lowers_the_level_where_they_are_dear() -> None:
    """Site a's domain at 200 a watt: a top-level replica there earns 100,000 and costs
    1,000 x (400 + 100 / 8) / 1,000 x 200 = 82,500; at 250 W it earns 80,000 for 52,500. Site b
    costs nothing: its top level first, then site a at the lower level only."""
    problem = two_sites(8, 8, replace(ONE_GPU, max_replicas=4))
    prepared = filter_candidates(problem)
    prices = Prices({}, {("a", "pd-a"): 200.0}, {})
    guide = _Priced(prepared, prices)
    order = guide.order(0, list(prepared.options[0]))
    assert [prepared.cells[o.cell][0] for o in order] == ["b", "a"]
    group_of = {prepared.cells[o.cell][0]: o.fits[0] for o in order}
    assert guide.levels(0, group_of["b"].group, group_of["b"].levels) == (0, 1)
    assert guide.levels(0, group_of["a"].group, group_of["a"].levels) == (0,)
    # without prices every level and the filter's own order stay
    free = _Priced(prepared, Prices({}, {}, {}))
    assert [o.cell for o in free.order(0, list(prepared.options[0]))] == [o.cell for o in prepared.options[0]]


def test_group_lp_prices_are_the_duals_of_a_binding_domain() -> None:
    """8 GPUs under 1,500 W: the LP runs 1,500 / 262.5 = 5.7 GPUs at 250 W (80 for 262.5 W a GPU,
    host 100 / 8 included, beats 100 for 412.5 W), so a watt is worth 80 / 0.2625 a thousandth
    and a GPU (some left idle) nothing."""
    problem = one_node(1500, replace(ONE_GPU, max_replicas=8), gpu_count=8)
    lp = group_lp(problem, solution=True)
    assert lp is not None and lp.prices is not None
    assert lp.prices.domain_w[("s", "pd")] == pytest.approx(80 / 0.2625, rel=1e-6)
    assert lp.prices.gpu_milli[("s", "pd", "T", 8, 100)] == pytest.approx(0.0, abs=1e-9)
    assert lp.prices.site_w.get("s", 0.0) == pytest.approx(0.0, abs=1e-9)


def test_survival_workload_is_spread_over_both_sites() -> None:
    """Survivors 2 of max 8 on 8 + 8 GPUs: every site holds at most 6 and the plan survives a site loss."""
    w = replace(ONE_GPU, min_replicas=2, max_replicas=8, survive_site_loss_pct=100)
    problem = two_sites(8, 8, w)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    plan = guided(filter_candidates(problem), lp).to_placements()
    assert len(plan) == 8
    per_site = [sum(1 for p in plan if p.node == f"n-{s}") for s in ("a", "b")]
    assert max(per_site) <= 6, per_site
    assert verified(problem, plan) == []


@pytest.mark.parametrize("seed", range(4))
def test_generated_fleets_give_valid_plans_within_the_bound(seed: int) -> None:
    problem = generate(400, seed)
    lp = group_lp(problem, solution=True)
    assert lp is not None and lp.columns
    prepared = filter_candidates(problem)
    plan = guided(prepared, lp).to_placements()
    assert plan
    assert verified(problem, plan) == []
    assert evaluate(problem, plan).placed_work <= lp.bound
    # the squeeze of the lowest tier is kept only where it adds placed work
    plain = guided(prepared, lp, squeeze=False).to_placements()
    assert evaluate(problem, plan).placed_work >= evaluate(problem, plain).placed_work


@pytest.mark.parametrize(
    ("domain_w", "caps"), [(750, [250, 400]), (899, [250, 400]), (900, [400, 400]), (600, [250, 250])]
)
def test_raise_levels_spends_what_the_domain_has_left(domain_w: int, caps: list[int]) -> None:
    """Two GPUs at 250 W draw 600 W (host 100, idle 2 x 50); each step to 400 W adds 150 W."""
    problem = one_node(domain_w, replace(ONE_GPU, max_replicas=2), gpu_count=2)
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(0, 0, (0,), 0))
    st.add(0, Fit(0, 0, (1,), 0))
    assert raise_levels(st) == caps.count(400)
    placements = st.to_placements()
    assert sorted(p.power_cap_w for p in placements) == caps
    assert st.domain_w[prepared.nodes[0].domain_key] == 600 + 150 * caps.count(400) <= domain_w
    assert verified(problem, placements) == []


def test_a_deadline_in_the_past_still_gives_a_valid_plan() -> None:
    problem = generate(400, 1)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    plan = guided(filter_candidates(problem), lp, deadline=0.0).to_placements()
    assert verified(problem, plan) == []


def test_residual_lp_sees_only_what_is_left() -> None:
    """Half the GPUs and all but 1,000 W taken: the residual LP places at most what is left."""
    problem = one_node(10_000, replace(ONE_GPU, max_replicas=8), gpu_count=8)
    key = ("s", "pd", "T", 8, 100)
    full = group_lp(problem, solution=True)
    assert full is not None and full.bound >= 8 * 1000 * 100
    half = group_lp(problem, solution=True, residual=Residual({key: 4}, {}, {}, frozenset({0})))
    assert half is not None and 4 * 1000 * 100 <= half.bound <= 4 * 1000 * 100 + 1
    # 1,000 W left in the domain: the LP charges 262.5 W a GPU at 250 W (host 100 / 8 GPUs): 3.8 GPUs
    tight = group_lp(
        problem, solution=True, residual=Residual({key: 8}, {("s", "pd"): 9_000}, {}, frozenset({0}))
    )
    assert tight is not None and tight.bound == pytest.approx(1000 / 262.5 * 1000 * 80, rel=1e-3)
    gone = group_lp(problem, solution=True, residual=Residual({key: 8}, {}, {}, frozenset()))
    assert gone is not None and gone.bound == 0


def test_the_last_tier_is_placed_by_a_re_solved_lp() -> None:
    """Two tiers: the resolve callback is asked once, before the last, with only that tier's workloads."""
    problem = generate(400, 2)
    lp = group_lp(problem, solution=True)
    assert lp is not None
    tiers = sorted({w.priority for w in problem.workloads})
    assert len(tiers) > 1
    asked: list[Residual] = []

    def resolve(left: Residual) -> GroupLP | None:
        asked.append(left)
        return group_lp(problem, solution=True, residual=left)

    prepared = filter_candidates(problem)
    plan = guided(prepared, lp, resolve=resolve).to_placements()
    assert len(asked) == 1
    lowest = {i for i, w in enumerate(problem.workloads) if w.priority == tiers[0]}
    assert asked[0].workloads <= lowest and asked[0].workloads
    assert verified(problem, plan) == []


def test_relocate_moves_a_capped_replica_to_a_rack_with_watts() -> None:
    """n1's rack holds 350 W: the replica runs at 250 W there (100 + 50 + 200); on n2 it runs at 400 W."""
    problem = two_domains(350)
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(prepared.node_index["n1"], 0, (0,), 0))
    assert placed_work(st) == CAPPED_WORK
    assert relocate(st) == 1
    (p,) = st.to_placements()
    assert (p.node, p.power_cap_w) == ("n2", 400)
    assert placed_work(st) == FULL_WORK
    assert st.domain_w[("s", "pd-1")] == 0
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize(
    ("spread", "moved"), [(None, 1), (Spread(level=SpreadLevel.NODE, min_distinct=2), 0)]
)
def test_relocate_keeps_a_node_spread(spread: Spread | None, moved: int) -> None:
    """Two replicas, one capped on n1, one on n2 (a GPU free there): spread over two nodes,
    the capped one may not join the other; without the spread it does."""
    problem = two_domains(350, spread, replicas=2)
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    n1, n2 = prepared.node_index["n1"], prepared.node_index["n2"]
    st.add(0, Fit(n1, 0, (0,), 0))
    st.add(0, Fit(n2, 1, (0,), 0))
    assert relocate(st) == moved
    where = sorted((p.node, p.power_cap_w) for p in st.to_placements())
    assert where == ([("n2", 400), ("n2", 400)] if moved else [("n1", 250), ("n2", 400)])
    assert verified(problem, st.to_placements()) == []


@pytest.mark.parametrize(("floor_pct", "swapped"), [(0, True), (90, False)])
def test_swap_tiers_gives_the_higher_tier_the_higher_cap(floor_pct: int, swapped: bool) -> None:
    """One 2-GPU node: priority 2 capped at 250 W on GPU 0, priority 1 at 400 W on GPU 1. Swapped,
    each GPU keeps its cap (same draw) and the plan earns (2 - 1) x (100 - 80) x 1,000 more;
    not where the lower tier may not run at 250 W (a floor of 90% of 400 W)."""
    high = replace(ONE_GPU, name="high", priority=2)
    low = replace(ONE_GPU, name="low", priority=1, min_power_cap_pct=floor_pct)
    base = one_node(600 + 150, high, gpu_count=2)
    problem = replace(base, workloads=(high, low))
    prepared = filter_candidates(problem)
    st = FleetState(prepared)
    st.add(0, Fit(0, 0, (0,), 0))
    st.add(1, Fit(0, 1, (1,), 0))
    before, draw = placed_work(st), dict(st.domain_w)
    assert swap_tiers(st) == (1 if swapped else 0)
    caps = {p.workload: (p.gpu_indices, p.power_cap_w) for p in st.to_placements()}
    if swapped:
        assert caps == {"high": ((1,), 400), "low": ((0,), 250)}
        assert placed_work(st) == before + (2 - 1) * (100 - 80) * 1000
    else:
        assert caps == {"high": ((0,), 250), "low": ((1,), 400)}
        assert placed_work(st) == before
    assert dict(st.domain_w) == draw
    assert verified(problem, st.to_placements()) == []
