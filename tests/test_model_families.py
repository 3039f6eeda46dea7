"""Per constraint family: a feasible and an infeasible tiny case, checked with IntegerProgram.is_feasible.

Each case writes a plan by hand, turns it into the model's values (``decode.encode``)
and asks the program which constraints it breaks. The objective values of the model
must equal ``objective.evaluate`` of the same plan, to the unit.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.core.candidates import filter_candidates
from placement.core.domain import (
    CurrentReplica,
    EnergyMetric,
    PowerDomain,
    Problem,
    ReplicaPlacement,
    SolveOptions,
    Spread,
    SpreadLevel,
    Workload,
)
from placement.core.objective import evaluate
from placement.exact.decode import decode, encode
from placement.exact.model import Container, build
from tests.builders import ONE, fleet, node, site

FRAC = Workload(name="f", gpus=0, gpu_milli=300, memory_gib=40.0)
X = Workload(name="x", gpus=0, gpu_milli=600, memory_gib=10.0)
Y = replace(X, name="y")


def rp(w: str, i: int, n: str, idx: tuple[int, ...], cap: int = 400, milli: int = 1000) -> ReplicaPlacement:
    s, pd = {"n1": ("dc1", "r1"), "n2": ("dc1", "r2"), "n3": ("dc2", "r3")}[n]
    return ReplicaPlacement(w, i, s, pd, n, idx, milli, cap)


def fr(w: str, i: int, n: str, j: int) -> ReplicaPlacement:
    return rp(w, i, n, (j,), cap=400, milli={"f": 300, "x": 600, "y": 600, "m": 300}.get(w, 300))


def make(*workloads: Workload, domain_w: int = 100_000, site_w: int = 100_000, **node_kw: object) -> Problem:
    nodes = (node("n1", **node_kw), node("n2", pd="r2", **node_kw), node("n3", s="dc2", pd="r3", **node_kw))
    f = fleet(
        nodes,
        sites=(site("dc1", kw=site_w / 1000, carbon_g_per_kwh=400.0), site("dc2", carbon_g_per_kwh=300.0)),
        domains=(
            PowerDomain("r1", "dc1", domain_w / 1000),
            PowerDomain("r2", "dc1", 100.0),
            PowerDomain("r3", "dc2", 100.0),
        ),
    )
    return Problem(f, tuple(workloads), SolveOptions(time_limit_s=5))


def broken(p: Problem, *placements: ReplicaPlacement) -> tuple[Container, list[str]]:
    c = build(filter_candidates(p))
    values = encode(c, placements)
    assert values is not None, "plan must map onto the model's variables"
    return c, c.program.is_feasible(values)


# name, problem, placements, constraints broken (empty: feasible)
CASES = [
    ("C4 one whole replica", make(ONE), [rp("w", 0, "n1", (0,))], set()),
    (
        "C4 whole GPUs exceed the node",
        make(ONE, replace(ONE, name="b", gpus=2)),
        [rp("w", 0, "n1", (0,)), rp("b", 0, "n1", (0, 1))],
        {"C4 gpu_count[n1]"},
    ),
    (
        "C4 whole and shared exceed the node",
        make(replace(ONE, name="b", gpus=2), FRAC),
        [rp("b", 0, "n1", (0, 1)), fr("f", 0, "n1", 0)],
        {"C4 gpu_count[n1]"},
    ),
    (
        "C4 shares exactly 1000 fit",
        make(replace(FRAC, name="x", gpu_milli=600, memory_gib=10), replace(FRAC, name="m", gpu_milli=400)),
        [fr("x", 0, "n1", 0), rp("m", 0, "n1", (0,), milli=400)],
        set(),
    ),
    (
        "C4 shares over 1000 on one GPU",
        make(
            replace(FRAC, name="x", gpu_milli=600, memory_gib=10),
            replace(FRAC, name="y", gpu_milli=600, memory_gib=10),
        ),
        [fr("x", 0, "n1", 0), fr("y", 0, "n1", 0)],
        {"C4 gpu_share[n1,0]"},
    ),
    (
        "C4 the same two on two GPUs fit",
        make(
            replace(FRAC, name="x", gpu_milli=600, memory_gib=10),
            replace(FRAC, name="y", gpu_milli=600, memory_gib=10),
        ),
        [fr("x", 0, "n1", 0), fr("y", 0, "n1", 1)],
        set(),
    ),
    (
        "C3 memory exactly the GPU's fits",
        make(FRAC, replace(FRAC, name="m")),
        [fr("f", 0, "n1", 0), fr("m", 0, "n1", 0)],
        set(),
    ),
    (
        "C3 memory 1 GiB over on a shared GPU",
        make(FRAC, replace(FRAC, name="m", memory_gib=41.0)),
        [fr("f", 0, "n1", 0), fr("m", 0, "n1", 0)],
        {"C3 gpu_memory[n1,0]"},
    ),
    (
        "C5 host cpu exactly the node's",
        make(replace(ONE, cpu_milli=500), replace(ONE, name="b", cpu_milli=500), cpu_milli=1000),
        [rp("w", 0, "n1", (0,)), rp("b", 0, "n1", (1,))],
        set(),
    ),
    (
        "C5 host cpu 1 over",
        make(replace(ONE, cpu_milli=500), replace(ONE, name="b", cpu_milli=501), cpu_milli=1000),
        [rp("w", 0, "n1", (0,)), rp("b", 0, "n1", (1,))],
        {"C5 cpu_milli[n1]"},
    ),
    # node on 200 W + two replicas at 250 W: 200 + 2 * (250 - 50) = 600 W
    (
        "C7 exactly at the domain cap fits",
        make(ONE, replace(ONE, name="b"), domain_w=600),
        [rp("w", 0, "n1", (0,), cap=250), rp("b", 0, "n1", (1,), cap=250)],
        set(),
    ),
    (
        "C7 1 W over the domain cap",
        make(ONE, replace(ONE, name="b"), domain_w=599),
        [rp("w", 0, "n1", (0,), cap=250), rp("b", 0, "n1", (1,), cap=250)],
        {"C7 domain_power[dc1/r1]"},
    ),
    # n1 at 400 W: 200 + 350 = 550; n2 at 250 W: 200 + 200 = 400; site dc1 = 950 W
    (
        "C7 exactly at the site cap fits (two nodes)",
        make(replace(ONE, max_replicas=2), site_w=950),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,), cap=250)],
        set(),
    ),
    (
        "C7 1 W over the site cap",
        make(replace(ONE, max_replicas=2), site_w=949),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,), cap=250)],
        {"C7 site_power[dc1]"},
    ),
    # a shared GPU runs uncapped: 200 + 350 = 550 W per node, 1100 W for the site
    (
        "C7 shared GPUs on two nodes exactly at the site cap",
        make(X, Y, site_w=1100),
        [fr("x", 0, "n1", 0), fr("y", 0, "n2", 0)],
        set(),
    ),
    (
        "C7 shared GPUs on two nodes 1 W over the site cap",
        make(X, Y, site_w=1099),
        [fr("x", 0, "n1", 0), fr("y", 0, "n2", 0)],
        {"C7 site_power[dc1]"},
    ),
    (
        "C10 min replicas met",
        make(replace(ONE, min_replicas=2, max_replicas=3)),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,))],
        set(),
    ),
    (
        "C10 one replica short of min",
        make(replace(ONE, min_replicas=2, max_replicas=3)),
        [rp("w", 0, "n1", (0,))],
        {"C10 min_replicas[w]"},
    ),
    (
        "C10 one over max",
        make(replace(ONE, min_replicas=1, max_replicas=2)),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,)), rp("w", 2, "n3", (0,))],
        {"C10 max_replicas[w]"},
    ),
    (
        "C11 two distinct nodes",
        make(replace(ONE, min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.NODE, 2))),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,))],
        set(),
    ),
    (
        "C11 both on one node",
        make(replace(ONE, min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.NODE, 2))),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n1", (1,))],
        {"C11 spread[w]"},
    ),
    (
        "C11 two nodes but one site",
        make(replace(ONE, min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.SITE, 2))),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,))],
        {"C11 spread[w]"},
    ),
    (
        "C12 one replica per site survives",
        make(replace(ONE, min_replicas=2, max_replicas=2, survive_site_loss_pct=50)),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n3", (0,))],
        set(),
    ),
    (
        "C12 both in one site",
        make(replace(ONE, min_replicas=2, max_replicas=2, survive_site_loss_pct=50)),
        [rp("w", 0, "n1", (0,)), rp("w", 1, "n2", (0,))],
        {"C12 site_survival[w,dc1]"},
    ),
]


@pytest.mark.parametrize(("case", "p", "placements", "expected"), CASES, ids=[c[0] for c in CASES])
def test_family(case: str, p: Problem, placements: list[ReplicaPlacement], expected: set[str]) -> None:
    c, bad = broken(p, *placements)
    assert set(bad) == expected, case
    if not expected:
        # a feasible plan: the model's tiers equal the evaluated objective, to the unit
        values = encode(c, placements)
        assert values is not None
        got = {o.name: o.value(c.tighten(values)) for o in c.program.objectives}
        ev = evaluate(p, placements)
        assert got == {
            "placed_work": ev.placed_work,
            "energy": ev.energy,
            "moves": ev.moves,
            "fragmentation": ev.fragmentation,
        }


def test_node_on_only_when_hosting() -> None:
    c, bad = broken(make(ONE))
    assert bad == []
    values = [0] * c.program.num_vars
    values[c.o[0]] = 1
    assert "C7 node_on[n1]" in c.program.is_feasible(values)


def test_shared_slots_in_order_and_only_when_used() -> None:
    c = build(filter_candidates(make(X, Y)))
    assert c.slots[0] == 2
    values = encode(c, [fr("x", 0, "n1", 1)])  # GPU 1 of n1 becomes slot 0
    assert values is not None and c.program.is_feasible(values) == []
    assert values[c.s[(0, 0)]] == 1
    values[c.s[(0, 1)]], values[c.s[(0, 0)]], values[c.u[(0, 0, 0)]], values[c.u[(0, 0, 1)]] = 1, 0, 0, 1
    assert c.program.is_feasible(values) == ["C4 slot_order[n1,1]"]
    values = [0] * c.program.num_vars
    values[c.s[(0, 0)]] = 1
    values[c.o[0]] = 1
    assert set(c.program.is_feasible(values)) == {"C7 node_on[n1]", "C4 shared_in_use[n1,0]"}


def test_kept_replicas_and_moves() -> None:
    w = replace(ONE, current=(CurrentReplica("n1", (1,)),))
    p = make(w)
    c = build(filter_candidates(p))
    stay = encode(c, [rp("w", 0, "n1", (1,))])
    move = encode(c, [rp("w", 0, "n2", (0,))])
    assert stay is not None and move is not None
    moves = next(o for o in c.program.objectives if o.name == "moves")
    assert (moves.value(stay), moves.value(move)) == (0, 1)
    assert c.program.is_feasible(stay) == [] and c.program.is_feasible(move) == []
    cheat = list(move)
    cheat[c.k[(0, 0)]] = 1  # claims to keep the replica on n1 while it runs on n2
    assert c.program.is_feasible(cheat) == ["C13 kept[w,n1]"]
    # decoding keeps the current GPU index
    (placed,) = decode(c, c.extract(stay))
    assert placed.gpu_indices == (1,)


@pytest.mark.parametrize("metric", [EnergyMetric.COST, EnergyMetric.CARBON])
def test_energy_tier_matches_evaluate(metric: EnergyMetric) -> None:
    p = make(replace(ONE, max_replicas=3), FRAC)
    p = replace(p, options=replace(p.options, energy_metric=metric))
    c = build(filter_candidates(p))
    plan = [rp("w", 0, "n1", (0,), cap=250), rp("w", 1, "n3", (1,)), fr("f", 0, "n1", 1)]
    values = encode(c, plan)
    assert values is not None and c.program.is_feasible(values) == []
    energy = next(o for o in c.program.objectives if o.name == "energy")
    assert energy.value(values) == evaluate(p, plan).energy > 0


def test_registry_order_and_tiers() -> None:
    from placement.exact.model.registry import FAMILIES, TIERS

    assert [f.tier for f in FAMILIES].index("soft") == sum(f.tier == "hard" for f in FAMILIES)
    c = build(filter_candidates(make(ONE)))
    assert [o.name for o in c.program.objectives] == list(TIERS)
