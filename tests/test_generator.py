"""The seeded fleet generator: determinism, exact sizes, valid problems, binding power, knobs."""

from __future__ import annotations

from collections import defaultdict

import pytest

from placement.core import catalog
from placement.core.domain import NodeState, Problem, Redundancy, SiteKind
from placement.core.validate import validate
from placement.generator import generate


def _nameplate_by(problem: Problem, key: str) -> dict[str, int]:
    types = {g.name: g for g in problem.fleet.gpu_types}
    out: dict[str, int] = defaultdict(int)
    for n in problem.fleet.nodes:
        out[getattr(n, key)] += n.host_power_w + n.gpu_count * types[n.gpu_type].max_power_w
    return out


def test_same_seed_same_problem() -> None:
    assert generate(500, seed=7) == generate(500, seed=7)


def test_different_seed_different_problem() -> None:
    a, b = generate(500, seed=7), generate(500, seed=8)
    assert a != b
    assert a.fleet.nodes != b.fleet.nodes


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(1, id="one-gpu"),
        pytest.param(3, id="three"),
        pytest.param(8, id="one-server"),
        pytest.param(50, id="fifty"),
        pytest.param(1_000, id="thousand"),
        pytest.param(160_000, id="160k-largest", marks=pytest.mark.slow),
    ],
)
def test_size_is_hit_exactly(size: int) -> None:
    problem = generate(size, seed=1)
    assert sum(n.gpu_count for n in problem.fleet.nodes) == size
    assert problem.workloads


@pytest.mark.parametrize("size", [1, 2, 5, 16, 40, 200, 2_000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_problems_are_valid(size: int, seed: int) -> None:
    assert validate(generate(size, seed)) == []


@pytest.mark.parametrize("size", [40, 200, 2_000, 20_000])
def test_power_binds_at_some_rack(size: int) -> None:
    problem = generate(size, seed=3)
    usable = {d.name: d.usable_power_w for d in problem.fleet.power_domains}
    nameplate = _nameplate_by(problem, "power_domain")
    binding = [d for d, w in nameplate.items() if w > usable[d]]
    assert binding, "no rack whose full-power draw exceeds its usable cap"
    if size >= 2_000:  # and not everywhere: some racks have headroom
        assert len(binding) < len(usable)


def test_power_binds_at_some_site() -> None:
    problem = generate(2_000, seed=3)
    usable = {s.name: s.usable_power_w for s in problem.fleet.sites}
    nameplate = _nameplate_by(problem, "site")
    assert any(w > usable[s] for s, w in nameplate.items())


def test_every_rack_can_power_its_largest_node_at_the_lowest_cap() -> None:
    problem = generate(2_000, seed=5)
    for d in problem.fleet.power_domains:
        members = [n for n in problem.fleet.nodes if n.power_domain == d.name]
        need = max(
            n.host_power_w + n.gpu_count * catalog.gpu_type(n.gpu_type).power_levels[0].power_cap_w
            for n in members
        )
        assert need <= d.usable_power_w, d.name


def test_a_large_fleet_has_every_feature() -> None:
    problem = generate(2_000, seed=11)
    fleet = problem.fleet
    kinds = {s.kind for s in fleet.sites}
    assert kinds == {SiteKind.DATACENTER, SiteKind.EDGE}
    assert len(fleet.regions) >= 3
    assert {s.redundancy for s in fleet.sites} == {Redundancy.TWO_N, Redundancy.N_PLUS_1, Redundancy.N}
    assert all(1.1 <= s.pue <= 1.6 for s in fleet.sites)
    assert all(s.has_generator for s in fleet.sites if s.kind is SiteKind.DATACENTER)
    assert all(
        not s.has_generator and s.battery_minutes <= 30 for s in fleet.sites if s.kind is SiteKind.EDGE
    )
    assert {n.gpu_count for n in fleet.nodes} == {1, 2, 4, 8}
    assert len({n.gpu_type for n in fleet.nodes}) >= 5
    assert {n.state for n in fleet.nodes} == {NodeState.READY, NodeState.DRAINING, NodeState.DOWN}
    assert all(n.gpu_count == 4 for n in fleet.nodes if n.gpu_type == catalog.GB200)
    w = problem.workloads
    assert any(x.is_fractional for x in w)
    assert any(x.gpus >= 2 for x in w)
    assert any(x.min_replicas < x.max_replicas for x in w)
    assert any(x.spread is not None for x in w)
    assert any(x.survive_site_loss_pct > 0 for x in w)
    assert any(x.max_latency_ms > 0 for x in w)
    assert any(x.backup_minutes > 0 for x in w)
    assert any(x.min_power_cap_pct > 0 for x in w)
    assert len({x.priority for x in w}) == 5
    assert any(x.current for x in w)


def test_current_placements_never_share_a_whole_gpu() -> None:
    problem = generate(2_000, seed=4)
    nodes = {n.name: n for n in problem.fleet.nodes}
    whole: dict[tuple[str, int], str] = {}
    milli: dict[tuple[str, int], int] = defaultdict(int)
    for w in problem.workloads:
        for c in w.current:
            assert nodes[c.node].state is not NodeState.DOWN
            assert len(c.gpu_indices) == max(1, w.gpus)
            for i in c.gpu_indices:
                assert 0 <= i < nodes[c.node].gpu_count
                key = (c.node, i)
                if w.is_fractional:
                    assert key not in whole
                    milli[key] += w.gpu_milli
                else:
                    assert key not in whole and key not in milli
                    whole[key] = w.name
    assert all(v <= 1000 for v in milli.values())


@pytest.mark.parametrize("ratio", [pytest.param(0.5, id="half"), pytest.param(1.3, id="above-capacity")])
def test_demand_ratio_sets_requested_work(ratio: float) -> None:
    problem = generate(4_000, seed=2, demand_ratio=ratio)
    demand = sum(w.max_replicas * w.work_milli for w in problem.workloads) / 1000
    assert abs(demand - ratio * 4_000) <= 0.03 * ratio * 4_000


@pytest.mark.parametrize(
    ("fractional", "multi", "kinds"),
    [
        pytest.param(0.0, 0.0, {"single"}, id="single-gpu-only"),
        pytest.param(0.5, 0.5, {"fractional", "multi"}, id="no-single"),
        pytest.param(0.2, 0.4, {"fractional", "single", "multi"}, id="defaults"),
    ],
)
def test_share_knobs_split_the_demand(fractional: float, multi: float, kinds: set[str]) -> None:
    problem = generate(1_000, seed=2, fractional_share=fractional, multi_gpu_share=multi)
    work: dict[str, int] = defaultdict(int)
    for w in problem.workloads:
        kind = "fractional" if w.is_fractional else "multi" if w.gpus > 1 else "single"
        work[kind] += w.max_replicas * w.work_milli
    assert set(work) == kinds
    total = sum(work.values())
    if "fractional" in kinds:
        assert abs(work["fractional"] / total - fractional) < 0.05


def test_bad_knobs_are_rejected() -> None:
    with pytest.raises(TypeError, match="unknown generator knobs: colour"):
        generate(10, seed=0, colour=1.0)
    with pytest.raises(ValueError, match="at most 1"):
        generate(10, seed=0, fractional_share=0.7, multi_gpu_share=0.7)
    with pytest.raises(ValueError, match="size_gpus"):
        generate(0, seed=0)
