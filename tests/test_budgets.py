"""Power budgets (placement.core.budgets) against numbers computed by hand.

The fleet: site dc1 (TWO_N, 100 kW, PUE 1.25, 0.10 $/kWh, 400 g/kWh) with power domains
rackA (N_PLUS_1, 4 modules, 8 kW) and rackB (TWO_N, 6 kW); site edge1 (N, 2 kW, PUE 1.5,
0.20 $/kWh, 100 g/kWh) with domain e1 (N, 2 kW).

h100: idle 60 W, levels 400 / 550 / 700 W.  l4 (shareable): idle 16 W, max 72 W.

n1 (rackA, 4 x h100, host 800 W): big on GPUs 0,1 at 550 W, small on GPU 2 at 400 W, GPU 3 idle
    = 800 + 550 + 550 + 400 + 60 = 2360 W
n2 (rackA, 4 x h100, host 800 W): empty, off = 0 W
n3 (rackB, 2 x h100, host 500 W): big on GPUs 0,1 at 700 W = 500 + 700 + 700 = 1900 W
e1n1 (e1, 2 x l4, host 150 W): two 500-milli replicas share GPU 0 (72 W), GPU 1 idle (16 W)
    = 150 + 72 + 16 = 238 W

rackA 2360 W, rackB 1900 W, e1 238 W; dc1 4260 W, edge1 238 W.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from placement.core.budgets import compute_budgets
from placement.core.domain import (
    EnergyMetric,
    Fleet,
    GpuType,
    Node,
    PowerBudget,
    PowerDomain,
    PowerLevel,
    Problem,
    Redundancy,
    ReplicaPlacement,
    Site,
    SiteKind,
    SolveOptions,
    Workload,
)
from placement.core.objective import evaluate
from tests.builders import L4, h100

# The docstring's levels and lowest cap, not the reference fleet's.
H100_LOW_CAP = h100(
    min_power_cap_w=200, levels=(PowerLevel(400, 70), PowerLevel(550, 88), PowerLevel(700, 100))
)


def dc_and_edge_fleet() -> Fleet:
    return Fleet(
        gpu_types=(H100_LOW_CAP, L4),
        sites=(
            Site(
                name="dc1",
                kind=SiteKind.DATACENTER,
                region="eu",
                capacity_kw=100.0,
                pue=1.25,
                redundancy=Redundancy.TWO_N,
                energy_price_per_kwh=0.10,
                carbon_g_per_kwh=400.0,
            ),
            Site(
                name="edge1",
                kind=SiteKind.EDGE,
                region="eu",
                capacity_kw=2.0,
                pue=1.5,
                redundancy=Redundancy.N,
                energy_price_per_kwh=0.20,
                carbon_g_per_kwh=100.0,
            ),
        ),
        power_domains=(
            PowerDomain("rackB", "dc1", 6.0, Redundancy.TWO_N),
            PowerDomain("rackA", "dc1", 8.0, Redundancy.N_PLUS_1, modules=4),
            PowerDomain("e1", "edge1", 2.0, Redundancy.N),
        ),
        nodes=(
            Node("n3", "dc1", "rackB", "h100", 2, host_power_w=500),
            Node("n1", "dc1", "rackA", "h100", 4, host_power_w=800),
            Node("n2", "dc1", "rackA", "h100", 4, host_power_w=800),
            Node("e1n1", "edge1", "e1", "l4", 2, host_power_w=150),
        ),
    )


WORKLOADS = (
    Workload("big", gpus=2, memory_gib=100.0, max_replicas=2),
    Workload("small", gpus=1, memory_gib=20.0),
    Workload("frac", gpus=0, gpu_milli=500, memory_gib=8.0, max_replicas=2),
)

PLACEMENTS = (
    ReplicaPlacement("big", 0, "dc1", "rackA", "n1", (0, 1), 1000, 550),
    ReplicaPlacement("small", 0, "dc1", "rackA", "n1", (2,), 1000, 400),
    ReplicaPlacement("big", 1, "dc1", "rackB", "n3", (0, 1), 1000, 700),
    ReplicaPlacement("frac", 0, "edge1", "e1", "e1n1", (0,), 500, 72),
    ReplicaPlacement("frac", 1, "edge1", "e1", "e1n1", (0,), 500, 72),
)


def _problem() -> Problem:
    return Problem(fleet=dc_and_edge_fleet(), workloads=WORKLOADS)


def _by_name(entries: tuple[PowerBudget, ...]) -> dict[str, PowerBudget]:
    return {b.name: b for b in entries}


def test_node_draws() -> None:
    b = compute_budgets(_problem(), PLACEMENTS)
    nodes = {n.node: (n.on, n.host_w, n.gpu_w, n.it_w) for n in b.nodes}
    assert nodes == {
        "e1n1": (True, 150, 88, 238),
        "n1": (True, 800, 1560, 2360),
        "n2": (False, 0, 0, 0),
        "n3": (True, 500, 1400, 1900),
    }
    assert [n.node for n in b.nodes] == ["e1n1", "n1", "n2", "n3"]


def test_gpu_budgets_cap_idle_shared_and_off() -> None:
    b = compute_budgets(_problem(), PLACEMENTS)
    gpus = {(g.node, g.index): (g.power_cap_w, g.used_milli, g.workloads) for g in b.gpus}
    assert gpus[("n1", 0)] == (550, 1000, ("big",))
    assert gpus[("n1", 2)] == (400, 1000, ("small",))
    assert gpus[("n1", 3)] == (60, 0, ())  # unused GPU of a powered node: idle
    assert gpus[("n2", 0)] == (0, 0, ())  # node off: 0 W
    assert gpus[("e1n1", 0)] == (72, 1000, ("frac",))  # shared: max_power_w
    assert gpus[("e1n1", 1)] == (16, 0, ())
    assert len(b.gpus) == 12  # every GPU of every node, off nodes included
    assert [(g.node, g.index) for g in b.gpus] == sorted(gpus)


def test_n_plus_1_domain_with_four_modules() -> None:
    a = _by_name(compute_budgets(_problem(), PLACEMENTS).power_domains)["rackA"]
    assert (a.kind, a.site, a.redundancy, a.feeds) == ("power_domain", "dc1", Redundancy.N_PLUS_1, 4)
    assert a.capacity_kw == pytest.approx(8.0)
    assert a.usable_kw == pytest.approx(6.0)  # 8 * 3/4
    assert a.it_kw == pytest.approx(2.36)
    assert a.facility_kw == pytest.approx(2.95)  # 2.36 * 1.25 (PUE of dc1)
    assert a.headroom_kw == pytest.approx(3.64)
    assert a.utilisation_pct == pytest.approx(39.3333333)
    assert a.feed_rating_kw == pytest.approx(2.0)
    assert a.feed_load_kw == pytest.approx(0.59)
    assert a.failure_feed_load_kw == pytest.approx(2.36 / 3)
    assert a.survives_failure is True


def test_two_n_domain() -> None:
    b = _by_name(compute_budgets(_problem(), PLACEMENTS).power_domains)["rackB"]
    assert (b.feeds, b.usable_kw, b.feed_rating_kw) == (2, pytest.approx(3.0), pytest.approx(3.0))
    assert b.it_kw == pytest.approx(1.9)
    assert b.facility_kw == pytest.approx(2.375)
    assert b.headroom_kw == pytest.approx(1.1)
    assert b.utilisation_pct == pytest.approx(63.3333333)
    assert b.feed_load_kw == pytest.approx(0.95)
    assert b.failure_feed_load_kw == pytest.approx(1.9)  # the survivor carries all of it
    assert b.survives_failure is True


def test_n_domain_loses_its_load() -> None:
    e = _by_name(compute_budgets(_problem(), PLACEMENTS).power_domains)["e1"]
    assert (e.feeds, e.usable_kw, e.it_kw) == (1, pytest.approx(2.0), pytest.approx(0.238))
    assert e.facility_kw == pytest.approx(0.357)  # PUE of edge1
    assert e.feed_load_kw == pytest.approx(0.238)
    assert e.failure_feed_load_kw == 0.0
    assert e.survives_failure is False


def test_sites_and_energy() -> None:
    b = compute_budgets(_problem(), PLACEMENTS)
    sites = _by_name(b.sites)
    assert [s.name for s in b.sites] == ["dc1", "edge1"]
    assert [d.name for d in b.power_domains] == ["e1", "rackA", "rackB"]
    dc1, edge1 = sites["dc1"], sites["edge1"]
    assert (dc1.kind, dc1.site) == ("site", "dc1")
    assert dc1.usable_kw == pytest.approx(50.0)
    assert dc1.it_kw == pytest.approx(4.26)
    assert dc1.facility_kw == pytest.approx(5.325)
    assert dc1.headroom_kw == pytest.approx(45.74)
    assert dc1.utilisation_pct == pytest.approx(8.52)
    assert dc1.feed_load_kw == pytest.approx(2.13)
    assert dc1.failure_feed_load_kw == pytest.approx(4.26)
    assert dc1.survives_failure is True
    assert edge1.facility_kw == pytest.approx(0.357)
    assert edge1.survives_failure is False
    # 5.325 kW * 0.10 + 0.357 kW * 0.20
    assert b.energy_cost_per_h == pytest.approx(0.6039)
    # 5.325 * 400 / 1000 + 0.357 * 100 / 1000
    assert b.carbon_kg_per_h == pytest.approx(2.1657)


def test_empty_plan_everything_off() -> None:
    b = compute_budgets(_problem(), ())
    assert all(not n.on and n.it_w == 0 for n in b.nodes)
    assert all(g.power_cap_w == 0 for g in b.gpus)
    assert all(s.it_kw == 0 and s.survives_failure for s in b.sites + b.power_domains)
    assert b.energy_cost_per_h == 0.0
    assert b.carbon_kg_per_h == 0.0


def test_order_of_placements_does_not_matter() -> None:
    shuffled = list(PLACEMENTS)
    random.Random(7).shuffle(shuffled)
    assert compute_budgets(_problem(), shuffled) == compute_budgets(_problem(), PLACEMENTS)


def _one_node_problem(
    redundancy: Redundancy, capacity_kw: float, modules: int, load_w: int
) -> tuple[Problem, tuple[ReplicaPlacement, ...]]:
    """A domain holding one node whose draw is exactly load_w when its one GPU runs at 100 W."""
    gpu = GpuType("g", 10.0, 100, 50, 0, (PowerLevel(100, 100),), False)
    fleet = Fleet(
        gpu_types=(gpu,),
        sites=(Site("s", SiteKind.DATACENTER, "eu", 1000.0, 1.0),),
        power_domains=(PowerDomain("d", "s", capacity_kw, redundancy, modules),),
        nodes=(Node("n", "s", "d", "g", 1, host_power_w=load_w - 100),),
    )
    placements = (ReplicaPlacement("w", 0, "s", "d", "n", (0,), 1000, 100),)
    return Problem(fleet=fleet, workloads=(Workload("w"),)), placements


@pytest.mark.parametrize(
    ("redundancy", "capacity_kw", "modules", "load_w", "survives"),
    [
        pytest.param(Redundancy.TWO_N, 6.0, 2, 3000, True, id="2N exactly at one feed's rating survives"),
        pytest.param(Redundancy.TWO_N, 6.0, 2, 3001, False, id="2N 1 W over one feed fails"),
        pytest.param(Redundancy.N_PLUS_1, 8.0, 4, 6000, True, id="N+1 of 4 exactly at usable survives"),
        pytest.param(Redundancy.N_PLUS_1, 8.0, 4, 6001, False, id="N+1 of 4 1 W over fails"),
        pytest.param(Redundancy.N_PLUS_1, 10.0, 3, 6666, True, id="N+1 of 3 at floored usable survives"),
        pytest.param(Redundancy.N_PLUS_1, 10.0, 3, 6667, False, id="N+1 of 3 1 W over floored usable fails"),
        pytest.param(Redundancy.N, 6.0, 2, 200, False, id="N with any load fails"),
    ],
)
def test_survives_failure_boundaries(
    redundancy: Redundancy, capacity_kw: float, modules: int, load_w: int, survives: bool
) -> None:
    problem, placements = _one_node_problem(redundancy, capacity_kw, modules, load_w)
    (d,) = compute_budgets(problem, placements).power_domains
    assert d.it_kw == pytest.approx(load_w / 1000)
    assert d.survives_failure is survives


def test_placement_on_unknown_node_draws_nothing() -> None:
    bad = (*PLACEMENTS, ReplicaPlacement("small", 1, "dc1", "rackA", "ghost", (0,), 1000, 400))
    assert compute_budgets(_problem(), bad) == compute_budgets(_problem(), PLACEMENTS)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # dc1: round(0.10 * 1.25 * 1e6) = 125000 n$/h per W; edge1: round(0.20 * 1.5 * 1e6) = 300000
        pytest.param(EnergyMetric.COST, 4260 * 125000 + 238 * 300000, id="cost"),
        # dc1: round(400 * 1.25 * 1e3) = 500000 ug/h per W; edge1: round(100 * 1.5 * 1e3) = 150000
        pytest.param(EnergyMetric.CARBON, 4260 * 500000 + 238 * 150000, id="carbon"),
    ],
)
def test_energy_tier_agrees_with_the_budgets(metric: EnergyMetric, expected: int) -> None:
    problem = dataclasses.replace(_problem(), options=SolveOptions(energy_metric=metric))
    assert evaluate(problem, PLACEMENTS).energy == expected
    # the same watts as the budgets: facility cost per hour = energy tier / 1e9 (n$ -> $)
    if metric is EnergyMetric.COST:
        assert compute_budgets(problem, PLACEMENTS).energy_cost_per_h == pytest.approx(expected / 1e9)
    else:
        assert compute_budgets(problem, PLACEMENTS).carbon_kg_per_h == pytest.approx(expected / 1e9)
