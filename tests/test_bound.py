"""group_lp_bound: never below a proven optimum, and the rows it writes behave at their edges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.bounds.bound import group_lp, group_lp_bound, integer_bound
from placement.core.domain import (
    Problem,
    Spread,
    SpreadLevel,
    Workload,
)
from tests.builders import CAPPED_WORK, FULL_WORK, ONE_GPU, one_node, tiny_problem, two_sites
from tests.oracles import brute_force


@pytest.mark.parametrize("seed", range(30))
def test_never_below_the_brute_force_optimum(seed: int) -> None:
    """The LP bound and the integer bound (between the optimum and the LP) alike."""
    problem = tiny_problem(seed)
    best = brute_force(problem).placed_work
    bound = group_lp_bound(problem)
    assert bound is not None
    assert bound >= best, (seed, bound, best)
    lp = group_lp(problem)
    assert lp is not None
    tighter = integer_bound(lp)
    assert tighter is not None
    assert best <= tighter <= lp.bound, (seed, best, tighter, lp.bound)


@pytest.mark.parametrize(
    ("case", "domain_w", "workload", "gpu_count", "low", "high"),
    [
        # host 100 + idle 50 + (400 - 50): 500 W at the top level
        ("exactly at the cap the top level fits", 500, ONE_GPU, 1, FULL_WORK, FULL_WORK + 1),
        ("1 W under: not the top level throughout", 499, ONE_GPU, 1, CAPPED_WORK, FULL_WORK - 1),
        ("the low level alone: 350 W", 350, ONE_GPU, 1, CAPPED_WORK, CAPPED_WORK + 1),
        ("below any level: nothing", 300, ONE_GPU, 1, 0, CAPPED_WORK - 1),
        ("min replicas above what fits: never placed", 10_000, replace(ONE_GPU, min_replicas=2), 1, 0, 0),
        (
            "min replicas exactly what fits",
            10_000,
            replace(ONE_GPU, min_replicas=2, max_replicas=2),
            2,
            2 * FULL_WORK,
            2 * FULL_WORK + 1,
        ),
        (
            "spread over 2 sites with one site: never placed",
            10_000,
            replace(ONE_GPU, max_replicas=2, spread=Spread(level=SpreadLevel.SITE, min_distinct=2)),
            2,
            0,
            0,
        ),
        ("max replicas caps the work", 10_000, replace(ONE_GPU, max_replicas=1), 4, FULL_WORK, FULL_WORK + 1),
        # 3-GPU replicas on a 4-GPU node: one per node, not 4/3
        (
            "packing: one 3-GPU replica per 4-GPU node",
            10_000,
            replace(ONE_GPU, gpus=3, max_replicas=2),
            4,
            3 * FULL_WORK,
            3 * FULL_WORK + 1,
        ),
        # 400 milli shares: two per GPU, so 800 of each GPU's 1000
        (
            "shares: two 400-milli replicas per GPU",
            10_000,
            Workload(name="f", gpus=0, gpu_milli=400, max_replicas=9),
            2,
            4 * 400 * 100,
            4 * 400 * 100 + 1,
        ),
    ],
)
def test_rows_at_their_edges(
    case: str, domain_w: int, workload: Workload, gpu_count: int, low: int, high: int
) -> None:
    bound = group_lp_bound(one_node(domain_w, workload, gpu_count))
    assert bound is not None
    assert low <= bound <= high, (case, bound)


def test_an_expired_deadline_gives_no_bound() -> None:
    assert group_lp_bound(tiny_problem(0), deadline=0.0) is None


def test_alike_caps_from_different_host_resources_do_not_share_a_packing_row() -> None:
    """Each fits 2 per node (A by CPU, B by host memory), yet A, A, B fit one node together."""
    a = Workload(name="a", gpus=1, max_replicas=2, cpu_milli=4, host_memory_mib=1)
    b = Workload(name="b", gpus=1, max_replicas=2, cpu_milli=1, host_memory_mib=4)
    base = one_node(10_000, a, gpu_count=4)
    node = replace(base.fleet.nodes[0], cpu_milli=9, host_memory_mib=9)
    problem = replace(base, fleet=replace(base.fleet, nodes=(node,)), workloads=(a, b))
    bound = group_lp_bound(problem)
    assert bound is not None
    assert bound >= 3 * FULL_WORK, bound


@pytest.mark.parametrize(
    ("case", "site_w", "low", "high"),
    [
        ("site exactly at the node's top draw", 500, FULL_WORK, FULL_WORK + 1),
        ("site 1 W under: not the top level throughout", 499, CAPPED_WORK, FULL_WORK - 1),
    ],
)
def test_site_cap_binds_under_an_ample_domain(case: str, site_w: int, low: int, high: int) -> None:
    base = one_node(10_000, ONE_GPU)
    site = replace(base.fleet.sites[0], capacity_kw=site_w / 1000.0)
    bound = group_lp_bound(replace(base, fleet=replace(base.fleet, sites=(site,))))
    assert bound is not None
    assert low <= bound <= high, (case, bound)


@pytest.mark.parametrize(
    ("case", "workload", "replicas"),
    [
        # 8 + 1 GPUs, at most 8 replicas: without the survival row the LP runs all 8
        ("no survival: 8 of max 8", replace(ONE_GPU, min_replicas=2, max_replicas=8), 8),
        # survivors 2 (100% of min 2): site a holds at most 8 - 2 = 6, site b its 1
        (
            "survival: one site holds at most max - survivors",
            replace(ONE_GPU, min_replicas=2, max_replicas=8, survive_site_loss_pct=100),
            7,
        ),
        # spread over 2 sites: one site holds at most 8 - 1 = 7, site b its 1
        (
            "site spread: one site holds at most max - (k - 1)",
            replace(ONE_GPU, max_replicas=8, spread=Spread(level=SpreadLevel.SITE, min_distinct=2)),
            8,
        ),
    ],
)
def test_site_survival_and_spread_cap_one_site(case: str, workload: Workload, replicas: int) -> None:
    bound = group_lp_bound(two_sites(8, 1, workload))
    assert bound is not None
    assert replicas * FULL_WORK <= bound <= replicas * FULL_WORK + 1, (case, bound)


def test_survival_row_binds_where_the_second_site_is_big_enough() -> None:
    """8 + 8 GPUs, max 10, survivors 4: the LP may put 6 on each site, so the whole 10 (no loss)."""
    w = replace(ONE_GPU, min_replicas=4, max_replicas=10, survive_site_loss_pct=100)
    bound = group_lp_bound(two_sites(8, 8, w))
    assert bound is not None and 10 * FULL_WORK <= bound <= 10 * FULL_WORK + 1
    # with only 2 GPUs on site b: a <= 6, b <= 2
    bound = group_lp_bound(two_sites(8, 2, w))
    assert bound is not None and 8 * FULL_WORK <= bound <= 8 * FULL_WORK + 1


@pytest.mark.parametrize(
    ("case", "workload", "caps"),
    [
        ("no rule", replace(ONE_GPU, max_replicas=5), (5, 5)),
        ("survivors 2", replace(ONE_GPU, min_replicas=2, max_replicas=5, survive_site_loss_pct=100), (3, 5)),
        (
            "domain spread over 3",
            replace(ONE_GPU, max_replicas=5, spread=Spread(level=SpreadLevel.POWER_DOMAIN, min_distinct=3)),
            (5, 3),
        ),
        (
            "node spread: no site or domain cap",
            replace(ONE_GPU, max_replicas=5, spread=Spread(level=SpreadLevel.NODE, min_distinct=3)),
            (5, 5),
        ),
        (
            "survival and site spread: the tighter",
            replace(
                ONE_GPU,
                min_replicas=1,
                max_replicas=5,
                survive_site_loss_pct=100,
                spread=Spread(level=SpreadLevel.SITE, min_distinct=3),
            ),
            (3, 5),
        ),
    ],
)
def test_entity_caps(case: str, workload: Workload, caps: tuple[int, int]) -> None:
    from placement.bounds.bound import _entity_caps

    assert _entity_caps(workload) == caps, case


def test_an_lp_over_the_column_cap_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_COLUMNS (memory), no bound rather than gigabytes; at the cap it is built."""
    import placement.bounds.bound as bound_mod

    problem = one_node(10_000, replace(ONE_GPU, max_replicas=4), gpu_count=4)  # 1 group x 2 levels
    monkeypatch.setattr(bound_mod, "MAX_COLUMNS", 3)  # the estimate counts 3 levels a whole-GPU class
    assert group_lp_bound(problem) is not None
    monkeypatch.setattr(bound_mod, "MAX_COLUMNS", 2)
    assert group_lp_bound(problem) is None


def two_one_gpu_nodes(domain_w: int) -> Problem:
    base = one_node(domain_w, replace(ONE_GPU, max_replicas=2))
    second = replace(base.fleet.nodes[0], name="n2")
    return replace(base, fleet=replace(base.fleet, nodes=(base.fleet.nodes[0], second)))


def test_integer_bound_pays_a_whole_node_where_the_lp_pays_a_share() -> None:
    # two 1-GPU nodes under 750 W: each node at the 250 W level draws 100 + 50 + 200 = 350 W,
    # at the top 500 W; both low (700 W) is the best plan, 2 * CAPPED_WORK. The LP runs a third of
    # a GPU at the top level on the 50 W left (its 150 W more a GPU at the top, in thirds).
    lp = group_lp(two_one_gpu_nodes(750))
    assert lp is not None
    assert lp.bound >= 2 * CAPPED_WORK + (FULL_WORK - CAPPED_WORK) / 3
    assert integer_bound(lp) == pytest.approx(2 * CAPPED_WORK, abs=1)


def test_integer_bound_equals_the_lp_where_power_is_ample() -> None:
    lp = group_lp(two_one_gpu_nodes(10_000))
    assert lp is not None
    assert integer_bound(lp) == lp.bound == 2 * FULL_WORK + 1


def test_integer_bound_past_its_deadline_is_none() -> None:
    lp = group_lp(two_one_gpu_nodes(750))
    assert lp is not None
    assert integer_bound(lp, deadline=0.0) is None


def test_integer_bound_per_rack_limits_only_loosen_it() -> None:
    """Profile S seed 0 (16 racks whose power binds): each rack's program solved to optimality
    gives the bound any machine gets; cut short (1 ms a rack, as a loaded machine may), it lies
    between that and the LP's, never below it, so a test may compare against the first only."""
    from placement.generator import profile

    lp = group_lp(profile("S", 0))
    assert lp is not None
    exact = integer_bound(lp, per_domain_ms=None)
    assert exact is not None and exact < lp.bound
    assert integer_bound(lp, per_domain_ms=None) == exact
    short = integer_bound(lp, per_domain_ms=1)
    assert short is not None and exact <= short <= lp.bound
