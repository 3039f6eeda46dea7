"""The candidate filter: every rule with its numbers, boundaries included, and explain()."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement import explain
from placement.core.candidates import filter_candidates
from placement.core.domain import (
    Fleet,
    Link,
    Node,
    NodeState,
    PowerDomain,
    Problem,
    Site,
    SolveOptions,
    Spread,
    SpreadLevel,
    Workload,
)
from placement.core.errors import InputError
from tests.builders import ONE, fleet, node, site


def problem(f: Fleet, *workloads: Workload, **opts: object) -> Problem:
    return Problem(fleet=f, workloads=tuple(workloads), options=SolveOptions(time_limit_s=10, **opts))  # type: ignore[arg-type]


def rules_of(p: Problem, w: int = 0) -> list[str]:
    prepared = filter_candidates(p)
    return [r.rule for r in prepared.rejections_of(w)]


@pytest.mark.parametrize(
    ("case", "nodes", "workload", "rule"),
    [
        ("node down", (node("n1", state=NodeState.DOWN),), ONE, "node_state"),
        ("node draining", (node("n1", state=NodeState.DRAINING),), ONE, "node_state"),
        ("type not allowed", (node("n1"),), replace(ONE, allowed_gpu_types=("BIG",)), "gpu_type"),
        (
            "fractional on a non-shareable type",
            (node("n1", gpu_type="BIG"),),
            Workload(name="w", gpus=0, gpu_milli=300, memory_gib=10.0),
            "gpu_type",
        ),
        ("memory per GPU", (node("n1"),), replace(ONE, memory_gib=81.0), "gpu_memory"),
        ("more GPUs than the node", (node("n1", gpus=2),), replace(ONE, gpus=4, memory_gib=0), "gpu_count"),
        ("cpu", (node("n1", cpu_milli=1000),), replace(ONE, cpu_milli=1001), "host_resources"),
        (
            "host memory",
            (node("n1", host_memory_mib=1000),),
            replace(ONE, host_memory_mib=2000),
            "host_resources",
        ),
        ("cap floor above every level", (node("n1"),), replace(ONE, min_power_cap_pct=101), "power_cap"),
    ],
)
def test_node_rule_rejects_with_its_name(
    case: str, nodes: tuple[Node, ...], workload: Workload, rule: str
) -> None:
    assert rules_of(problem(fleet(nodes), workload)) == [rule], case


@pytest.mark.parametrize(
    ("case", "workload"),
    [
        ("plain", ONE),
        ("memory exactly the GPU's", replace(ONE, memory_gib=80.0)),
        ("two GPUs, 160 GiB over two", replace(ONE, gpus=2, memory_gib=160.0)),
        ("cpu exactly the node's", replace(ONE, cpu_milli=1000)),
        ("cap floor exactly the top level", replace(ONE, min_power_cap_pct=100)),
        ("fractional on a shareable type", Workload(name="w", gpus=0, gpu_milli=300, memory_gib=80.0)),
    ],
)
def test_boundary_cases_pass(case: str, workload: Workload) -> None:
    p = problem(fleet((node("n1", cpu_milli=1000),)), workload)
    prepared = filter_candidates(p)
    assert not prepared.rejections, case
    assert len(prepared.by_workload[0]) == 1


def test_cap_floor_drops_low_levels_only() -> None:
    # floor 80% of 400 W = 320 W: only the 400 W level (index 1) is allowed
    p = problem(fleet((node("n1"),)), replace(ONE, min_power_cap_pct=80))
    (cand,) = filter_candidates(p).by_workload[0]
    assert cand.levels == (1,)


# One replica at the lowest level on node n1: host 100 + 2 idle GPUs 100 + (250 - 50) = 400 W.
@pytest.mark.parametrize(
    ("case", "domain_w", "site_w", "rule", "levels"),
    [
        ("exactly at the domain cap fits (lowest level only)", 400, 100_000, None, (0,)),
        ("1 W under the single-replica draw does not", 399, 100_000, "domain_power", ()),
        ("top level fits exactly", 550, 100_000, None, (0, 1)),
        ("1 W short of the top level keeps the low one", 549, 100_000, None, (0,)),
        ("exactly at the site cap fits", 100_000, 400, None, (0,)),
        ("1 W over the site cap does not", 100_000, 399, "site_power", ()),
    ],
)
def test_single_replica_power(
    case: str, domain_w: int, site_w: int, rule: str | None, levels: tuple[int, ...]
) -> None:
    f = fleet(
        (node("n1"),),
        sites=(site("dc1", kw=site_w / 1000),),
        domains=(PowerDomain(name="r1", site="dc1", capacity_kw=domain_w / 1000),),
    )
    prepared = filter_candidates(problem(f, ONE))
    if rule is None:
        assert prepared.by_workload[0][0].levels == levels, case
    else:
        (rej,) = prepared.rejections
        assert rej.rule == rule, case
        assert (rej.requested, rej.available) == (400, domain_w if rule == "domain_power" else site_w)


def test_latency_and_backup_reasons_carry_numbers() -> None:
    f = fleet(
        (node("n1", s="edge-sg", pd="p"), node("n2", s="dc1")),
        sites=(
            replace(site("edge-sg"), has_generator=False, battery_minutes=10.0),
            site("dc1"),
        ),
        links=(Link("ap-south", "edge-sg", 14.0), Link("ap-south", "dc1", 40.0)),
    )
    w = replace(ONE, user_region="ap-south", max_latency_ms=10.0)
    reasons = explain(problem(f, w), "w")
    assert [r.rule for r in reasons] == ["latency"]
    assert reasons[0].message == "no site within 10 ms of ap-south (nearest: edge-sg at 14.0 ms)"
    assert reasons[0].candidates_excluded == 2

    w2 = replace(ONE, user_region="ap-south", max_latency_ms=20.0, backup_minutes=30.0)
    reasons = explain(problem(f, w2), "w")
    assert [r.rule for r in reasons] == ["latency", "backup"]
    backup = reasons[1]
    assert "needs 30 min of backup" in backup.message and "10 min" in backup.message


def test_memory_reason_names_the_largest_gpu_within_reach() -> None:
    f = fleet(
        (node("n1"), node("n2", s="far", pd="p", gpu_type="BIG")),
        sites=(site("dc1"), site("far")),
        links=(Link("eu-west", "dc1", 5.0), Link("eu-west", "far", 60.0)),
    )
    w = replace(ONE, memory_gib=120.0, user_region="eu-west", max_latency_ms=25.0)
    reasons = {r.rule: r for r in explain(problem(f, w), "w")}
    assert set(reasons) == {"latency", "gpu_memory"}
    assert reasons["gpu_memory"].message.startswith(
        "needs 120 GiB per GPU; largest GPU within 25 ms of eu-west has 80 GiB"
    )


def test_power_reason_names_domain_and_numbers() -> None:
    f = fleet((node("n1"),), domains=(PowerDomain(name="r1", site="dc1", capacity_kw=0.3),))
    (r,) = explain(problem(f, ONE), "w")
    assert r.rule == "domain_power"
    assert "needs 0.4 kW" in r.message and "0.3 kW in power domain dc1/r1" in r.message


@pytest.mark.parametrize(
    ("case", "nodes", "sites", "workload", "rule"),
    [
        (
            "spread over nodes needs 2, one node",
            (node("n1"),),
            None,
            replace(ONE, min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.NODE, 2)),
            "spread",
        ),
        (
            "survival with every candidate in one site",
            (node("n1"), node("n2")),
            None,
            replace(ONE, min_replicas=2, max_replicas=2, survive_site_loss_pct=50),
            "site_survival",
        ),
        (
            "more replicas than GPUs",
            (node("n1", gpus=2),),
            None,
            replace(ONE, min_replicas=3, max_replicas=3),
            "replicas",
        ),
    ],
)
def test_workload_level_reasons(
    case: str, nodes: tuple[Node, ...], sites: tuple[Site, ...] | None, workload: Workload, rule: str
) -> None:
    prepared = filter_candidates(problem(fleet(nodes, sites), workload))
    assert 0 not in prepared.by_workload, case
    assert [r.rule for r in prepared.workload_rejections] == [rule]
    assert rule in [r.rule for r in explain(problem(fleet(nodes, sites), workload), "w")]


def test_workload_level_boundary_passes() -> None:
    # exactly two GPUs for two replicas: fits
    p = problem(fleet((node("n1", gpus=2),)), replace(ONE, min_replicas=2, max_replicas=2))
    assert 0 in filter_candidates(p).by_workload


def test_explain_by_site_and_unknown_names() -> None:
    f = fleet(
        (node("n1"), node("n2", s="dc2", pd="p", state=NodeState.DOWN)), sites=(site("dc1"), site("dc2"))
    )
    p = problem(f, ONE)
    assert explain(p, "w") == [explain(p, "w")[0]]  # one rule: node_state for n2
    assert explain(p, "w", site="dc1") == []
    assert [r.rule for r in explain(p, "w", site="dc2")] == ["node_state"]
    with pytest.raises(InputError):
        explain(p, "nope")
    with pytest.raises(InputError):
        explain(p, "w", site="nowhere")


def test_filter_sizes_the_model() -> None:
    nodes = tuple(node(f"n{i}", gpus=1) for i in range(4))
    p = problem(fleet(nodes), ONE, replace(ONE, name="big", memory_gib=100.0))
    prepared = filter_candidates(p)
    assert prepared.size()["candidates"] == 4
    assert prepared.size()["rejections"] == 4
    assert prepared.size()["placeable_workloads"] == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_group_filter_equals_the_rules_node_by_node(seed: int) -> None:
    # the filter checks alike nodes once per group and site/type rules once per cell; node by
    # node, every rule must give the same answer (candidates with levels and bounds, or a rejection)
    from placement.core.candidates import Candidate, _check
    from placement.generator import generate

    p = generate(300, seed)
    prepared = filter_candidates(p)
    dropped = {r.workload for r in prepared.workload_rejections}
    for wi, w in enumerate(p.workloads):
        want = [_check(wi, w, info, prepared.latency_ms) for info in prepared.nodes]
        cands = [c for c in want if isinstance(c, Candidate)]
        if wi in dropped or not cands:
            assert wi not in prepared.by_workload
        else:
            assert list(prepared.by_workload[wi]) == cands, w.name
        assert prepared.rejections_of(wi) == [r for r in want if not isinstance(r, Candidate)]
