"""The heuristics: every plan verifies, power and GPU boundaries to the watt and the milli, pinned work kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.construct.heuristics import HEURISTICS, best_fit, fgd, first_fit_decreasing, plan_from
from placement.core.domain import (
    CurrentReplica,
    Fleet,
    Link,
    Node,
    Plan,
    Problem,
    Site,
    SiteKind,
    Spread,
    SpreadLevel,
    Workload,
)
from placement.core.validate import validate
from placement.core.verify import verify
from placement.generator import generate
from tests.builders import GPU_G, HOST_W, ROOMY_KW, grid_fleet

ON_W = HOST_W + 8 * GPU_G.idle_power_w  # an 8-GPU node, on, all GPUs idle: 1,560 W


def run(method: str, problem: Problem) -> tuple[Problem, Plan]:
    assert validate(problem) == []
    placements = HEURISTICS[method](problem)
    plan = plan_from(problem, placements, method)  # raises unless placement.verify passes
    assert verify(problem, plan) == []
    return problem, plan


METHODS = sorted(HEURISTICS)


# ----------------------------------------------------------------- generated fleets


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("size", "seed", "knobs"),
    [
        pytest.param(64, 0, {}, id="defaults-64"),
        pytest.param(300, 1, {}, id="defaults-300"),
        pytest.param(300, 2, {"binding_rack_share": 1.0, "binding_site_share": 1.0}, id="all-power-binding"),
        pytest.param(200, 3, {"fractional_share": 0.7, "multi_gpu_share": 0.1}, id="mostly-fractional"),
        pytest.param(200, 4, {"multi_gpu_share": 0.9, "fractional_share": 0.0}, id="mostly-multi-gpu"),
        pytest.param(
            400, 5, {"demand_ratio": 1.6, "spread_share": 1.0, "survive_share": 1.0}, id="overloaded-spread"
        ),
        pytest.param(
            500,
            6,
            {"dc_eight_gpu_node_share": 0.95, "eight_gpu_replica_share": 0.7, "replicas_scale": 2.0},
            id="profile-knobs",
        ),
    ],
)
def test_plans_on_generated_fleets_verify(method: str, size: int, seed: int, knobs: dict[str, float]) -> None:
    problem = generate(size, seed, **knobs)
    _, plan = run(method, problem)
    assert plan.placements, "a generated fleet always has room for something"
    assert plan.objective.placed_work > 0
    for u in plan.unplaced:
        assert u.reasons and all(r.message for r in u.reasons)


@pytest.mark.parametrize("method", METHODS)
def test_binding_power_leaves_gpus_free(method: str) -> None:
    """With every rack and site capped well below nameplate, power, not GPUs, limits the plan."""
    problem = generate(400, 7, binding_rack_share=1.0, binding_site_share=1.0, demand_ratio=1.5)
    _, plan = run(method, problem)
    used = sum(p.gpu_milli * len(p.gpu_indices) for p in plan.placements) / 1000
    assert used < 0.95 * sum(n.gpu_count for n in problem.fleet.nodes)
    assert any(b.utilisation_pct > 85 for b in plan.budgets.power_domains)


# ----------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("where", "usable_w", "cap_w"),
    [
        pytest.param("rack", ON_W + 700 - 70, 700, id="rack-exactly-at-cap-fits-top-level"),
        pytest.param("rack", ON_W + 700 - 70 - 1, 550, id="rack-1W-short-of-top-falls-to-550"),
        pytest.param("rack", ON_W + 400 - 70, 400, id="rack-exactly-at-lowest-level-fits"),
        pytest.param("rack", ON_W + 400 - 70 - 1, None, id="rack-1W-short-of-lowest-not-placed"),
        pytest.param("site", ON_W + 700 - 70, 700, id="site-exactly-at-cap-fits-top-level"),
        pytest.param("site", ON_W + 400 - 70 - 1, None, id="site-1W-short-of-lowest-not-placed"),
    ],
)
def test_power_cap_boundaries(method: str, where: str, usable_w: int, cap_w: int | None) -> None:
    f = grid_fleet(rack_w=usable_w) if where == "rack" else grid_fleet(site_w=usable_w)
    problem = Problem(f, (Workload("one", gpus=1, memory_gib=40),))
    _, plan = run(method, problem)
    caps = [p.power_cap_w for p in plan.placements]
    if cap_w is None:
        assert caps == []
        (u,) = plan.unplaced
        assert {r.rule for r in u.reasons} & {"domain_power", "site_power"}
    else:
        assert caps == [cap_w]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("rack_w", "placed_on"),
    [
        pytest.param(HOST_W + 8 * 70 + 400 - 70, "lean", id="rack-exactly-at-the-lean-nodes-draw"),
        pytest.param(HOST_W + 8 * 70 + 400 - 70 - 1, None, id="rack-1W-short"),
    ],
)
def test_a_node_short_of_cpu_does_not_hide_its_rack_neighbour(
    method: str, rack_w: int, placed_on: str | None
) -> None:
    """One rack, two empty nodes alike but for host power and CPU: the first draws 2,000 W more
    when on and lacks the CPU; the second takes the replica where the rack has its watts. The
    rule kernel checks host resources before power, node by node (the old loop gave up on the
    rack at the first node whose power did not fit)."""
    base = grid_fleet(rack_w=rack_w)
    nodes = (
        Node("heavy", "s0", "s0-r0", "G", 8, HOST_W + 2000, cpu_milli=1000),
        Node("lean", "s0", "s0-r0", "G", 8, HOST_W, cpu_milli=8000),
    )
    problem = Problem(replace(base, nodes=nodes), (Workload("w", gpus=1, cpu_milli=4000),))
    _, plan = run(method, problem)
    assert [p.node for p in plan.placements] == ([placed_on] if placed_on else [])


@pytest.mark.parametrize("method", METHODS)
def test_min_power_cap_floor_is_kept(method: str) -> None:
    """A floor of 80% of 700 W rules out 400 and 550 W: with power for 550 W only, nothing is placed."""
    problem = Problem(grid_fleet(rack_w=ON_W + 550 - 70), (Workload("floor", gpus=1, min_power_cap_pct=80),))
    _, plan = run(method, problem)
    assert plan.placements == ()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("milli", "memory_gib", "replicas", "gpus_used"),
    [
        pytest.param(500, 10.0, 2, 1, id="two-halves-share-one-gpu"),
        pytest.param(501, 10.0, 2, 2, id="501-milli-twice-needs-two-gpus"),
        pytest.param(250, 40.0, 2, 1, id="memory-exactly-at-gpu-memory-shares"),
        pytest.param(250, 40.1, 2, 2, id="memory-over-by-0.2GiB-needs-two-gpus"),
    ],
)
def test_fractional_sharing_boundaries(
    method: str, milli: int, memory_gib: float, replicas: int, gpus_used: int
) -> None:
    w = Workload(
        "share", gpus=0, gpu_milli=milli, memory_gib=memory_gib, min_replicas=replicas, max_replicas=replicas
    )
    _, plan = run(method, Problem(grid_fleet(), (w,)))
    placed = plan.placements
    assert len(placed) == replicas
    assert len({(p.node, p.gpu_indices) for p in placed}) == gpus_used
    assert all(p.power_cap_w == GPU_G.max_power_w for p in placed)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("gpus", "replicas", "placed"),
    [
        pytest.param(4, 2, 2, id="two-4gpu-fill-the-node-exactly"),
        pytest.param(4, 3, 0, id="three-4gpu-all-or-nothing"),
        pytest.param(8, 1, 1, id="one-8gpu-fits"),
    ],
)
def test_gpu_count_and_all_or_nothing(method: str, gpus: int, replicas: int, placed: int) -> None:
    w = Workload("big", gpus=gpus, memory_gib=100, min_replicas=replicas, max_replicas=replicas)
    _, plan = run(method, Problem(grid_fleet(), (w,)))
    assert len(plan.placements) == placed


@pytest.mark.parametrize("method", METHODS)
def test_spread_and_site_survival(method: str) -> None:
    spread = Workload(
        "spread", gpus=1, min_replicas=3, max_replicas=3, spread=Spread(SpreadLevel.POWER_DOMAIN, 3)
    )
    survive = Workload("survive", gpus=1, min_replicas=4, max_replicas=4, survive_site_loss_pct=50)
    _, plan = run(method, Problem(grid_fleet(sites=2, racks_per_site=2), (spread, survive)))
    by = {w: [p for p in plan.placements if p.workload == w] for w in ("spread", "survive")}
    assert len({p.power_domain for p in by["spread"]}) == 3
    sites = [p.site for p in by["survive"]]
    assert len(sites) == 4 and max(sites.count(s) for s in set(sites)) <= 2


@pytest.mark.parametrize("method", METHODS)
def test_spread_that_cannot_be_met_places_nothing(method: str) -> None:
    w = Workload("spread", gpus=1, min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.SITE, 2))
    _, plan = run(method, Problem(grid_fleet(nodes=2), (w,)))
    assert plan.placements == ()
    assert plan.unplaced[0].reasons


@pytest.mark.parametrize("method", METHODS)
def test_pinned_workloads_are_kept_exactly(method: str) -> None:
    f = grid_fleet(nodes=2)
    pinned = Workload(
        "pinned",
        gpus=2,
        min_replicas=2,
        max_replicas=2,
        pinned=True,
        current=(CurrentReplica("s0-r0-n0", (1, 2)), CurrentReplica("s0-r0-n1", (6, 7))),
    )
    pinned_share = Workload(
        "pinned-share", gpus=0, gpu_milli=300, pinned=True, current=(CurrentReplica("s0-r0-n0", (5,)),)
    )
    filler = Workload("filler", gpus=1, min_replicas=1, max_replicas=20, priority=5)
    _, plan = run(method, Problem(f, (filler, pinned, pinned_share)))
    got = sorted((p.node, p.gpu_indices) for p in plan.placements if p.workload == "pinned")
    assert got == [("s0-r0-n0", (1, 2)), ("s0-r0-n1", (6, 7))]
    share = [p for p in plan.placements if p.workload == "pinned-share"]
    assert [(p.node, p.gpu_indices) for p in share] == [("s0-r0-n0", (5,))]
    # the filler takes every other GPU (16 - 4 pinned - 1 shared) and none of the pinned ones
    assert len([p for p in plan.placements if p.workload == "filler"]) == 11


def test_fgd_and_best_fit_avoid_the_fragment_first_fit_makes() -> None:
    """Node n0 empty, n1 with 7 GPUs pinned. A 1-GPU replica goes first (higher value per replica).

    First fit puts it on n0, leaving 7 + 1 free GPUs: the 8-GPU workload no longer fits.
    Best fit (most allocated) and FGD (an 8-GPU task class makes n0's GPUs a fragment once
    one is taken) put it on n1, and the 8-GPU workload fits on n0.
    """
    f = grid_fleet(nodes=2)
    pinned = Workload(
        "pinned", gpus=7, pinned=True, current=(CurrentReplica("s0-r0-n1", (0, 1, 2, 3, 4, 5, 6)),)
    )
    small = Workload("small", gpus=1, priority=10)
    big = Workload("big", gpus=8, priority=1)
    problem = Problem(f, (pinned, small, big))
    placed = {}
    for name, method in (("ffd", first_fit_decreasing), ("best_fit", best_fit), ("fgd", fgd)):
        placed[name] = {p.workload: p.node for p in method(problem)}
        assert verify(problem, plan_from(problem, method(problem), name)) == []
    assert placed["ffd"] == {"pinned": "s0-r0-n1", "small": "s0-r0-n0"}
    for name in ("best_fit", "fgd"):
        assert placed[name] == {"pinned": "s0-r0-n1", "small": "s0-r0-n1", "big": "s0-r0-n0"}, name


def test_latency_and_backup_exclude_sites() -> None:
    """Site s0 is 5 ms from the users and has no generator; s1 is 20 ms away with one."""
    base = grid_fleet(sites=2)
    sites = (
        Site("s0", SiteKind.EDGE, "r", ROOMY_KW, 1.2, battery_minutes=5),
        Site("s1", SiteKind.DATACENTER, "r", ROOMY_KW, 1.2, has_generator=True),
    )
    f = Fleet(
        base.gpu_types,
        sites,
        base.power_domains,
        base.nodes,
        regions=("users",),
        links=(Link("users", "s0", 5), Link("users", "s1", 20)),
    )
    near = Workload("near", gpus=1, user_region="users", max_latency_ms=10)
    backed = Workload("backed", gpus=1, backup_minutes=30)
    nowhere = Workload("nowhere", gpus=1, user_region="users", max_latency_ms=10, backup_minutes=30)
    for method in METHODS:
        _, plan = run(method, Problem(f, (near, backed, nowhere)))
        where = {p.workload: p.site for p in plan.placements}
        assert where == {"near": "s0", "backed": "s1"}
        (u,) = plan.unplaced
        assert u.workload == "nowhere" and u.reasons[0].rule in ("latency", "backup")
