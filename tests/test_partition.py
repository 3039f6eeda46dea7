"""Partitioned solve: whole sites per group, spanning workloads, a verified combined plan, a valid bound, Ray."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement import solve, verify
from placement.core.domain import (
    CurrentReplica,
    NodeState,
    Problem,
    SolveStatus,
    StepKind,
)
from placement.core.verify_sequence import verify_migration
from placement.generator import generate
from placement.run.partition import (
    PARTITIONING,
    WHOLE_NOTE,
    max_work,
    partition,
    relaxation_bound,
    solve_partitioned,
    solve_partitioned_stats,
    split,
)
from tests.builders import (
    W,
    two_region_fleet,
    two_region_problem,
)


def _group_of(p: Problem) -> dict[str, int]:
    return {w.name: g for g, sub in enumerate(partition(p, 2)) for w in sub.workloads}


# ------------------------------------------------------------------------- partition


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 7])
def test_sites_whole_and_workloads_in_at_most_one_group(groups: int) -> None:
    p = generate(2000, 1)
    subs = partition(p, groups)
    assert len(subs) == min(groups, len(p.fleet.sites))
    site_names = [s.name for sub in subs for s in sub.fleet.sites]
    assert sorted(site_names) == sorted(s.name for s in p.fleet.sites)  # every site in exactly one group
    for sub in subs:
        mine = {s.name for s in sub.fleet.sites}
        assert {d.site for d in sub.fleet.power_domains} <= mine
        assert {n.site for n in sub.fleet.nodes} <= mine
        assert len(sub.fleet.nodes) == sum(1 for n in p.fleet.nodes if n.site in mine)  # sites whole
        assert len(sub.fleet.power_domains) == sum(1 for d in p.fleet.power_domains if d.site in mine)
        node_names = {n.name for n in sub.fleet.nodes}
        assert all(cr.node in node_names for w in sub.workloads for cr in w.current)
    names = [w.name for sub in subs for w in sub.workloads]
    assert len(names) == len(set(names))  # no (unpinned) workload in two groups
    assert set(names) <= {w.name for w in p.workloads}


def test_groups_balanced_and_regions_kept_together() -> None:
    p = generate(8000, 1)
    part = split(p, 2)
    gpus = [sum(n.gpu_count for n in sub.fleet.nodes) for sub in part.problems]
    assert max(gpus) <= 1.25 * sum(gpus) / 2
    region = {s.name: s.region for s in p.fleet.sites}
    regions_per_group = [{region[s] for s in sites} for sites in part.sites]
    split_regions = regions_per_group[0] & regions_per_group[1]
    assert len(split_regions) <= 1  # at most one region cut in two, for balance


def test_latency_in_a_group_reads_the_whole_fleets_paths() -> None:
    a, b = partition(two_region_problem(), 2)
    group_a = a if {s.name for s in a.fleet.sites} == {"a1", "a2"} else b
    from placement.core.network import latency_table

    whole = latency_table(two_region_fleet())
    sub = latency_table(group_a.fleet)
    assert sub == {k: v for k, v in whole.items() if k[1] in {"a1", "a2"}}
    assert sub[("rc", "a2")] == 10.0  # through a1 on the whole fleet, one link here


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        ("local-a", "a"),  # candidates in one group only
        ("anywhere", "b"),  # spans: the freer group after local-a took 24 of a's 32 GPUs
        ("home-a", "a"),  # spans, a has room for it and holds its current replica
        ("spread-ok", "b"),  # spans, each group has two sites; the freer one
        ("node-spread-c", "b"),  # spans (a1, b1); node spread fits in either site's group: b1 is freer
    ],
)
def test_workload_goes_to_its_group(workload: str, expected: str) -> None:
    p = two_region_problem()
    part = split(p, 2)
    group_name = {g: "a" if "a1" in sites else "b" for g, sites in enumerate(part.sites)}
    assert group_name[part.group_of[workload]] == expected
    spans = workload != "local-a"
    assert (workload in part.spanning) is spans


@pytest.mark.parametrize("workload", ["spread-x", "survive-x"])
def test_spread_or_survival_across_groups_is_left_out_for_partitioning(workload: str) -> None:
    part = split(two_region_problem(), 2)
    assert workload in part.left_out
    assert workload not in _group_of(two_region_problem())
    assert [r.rule for r in part.reasons[workload]] == [PARTITIONING]
    # with one group the same workload has a home
    assert workload in {w.name for w in partition(two_region_problem(), 1)[0].workloads}


def test_no_candidate_anywhere_is_explained_on_the_whole_fleet() -> None:
    part = split(two_region_problem(), 2)
    assert "too-big" in part.left_out
    (reason,) = part.reasons["too-big"]
    assert reason.rule == "gpu_memory"
    assert reason.candidates_excluded == 8  # every node of the whole fleet, not of one group


def test_pinned_over_two_groups_is_split_into_pinned_pieces() -> None:
    pinned = W(
        "pinned",
        min_replicas=2,
        max_replicas=2,
        pinned=True,
        current=(CurrentReplica("a1-n1", (0,)), CurrentReplica("b1-n1", (0,))),
    )
    p = replace(two_region_problem(), workloads=(pinned,))
    pieces = [(w, sub) for sub in partition(p, 2) for w in sub.workloads]
    assert len(pieces) == 2
    for w, sub in pieces:
        assert w.pinned and w.min_replicas == w.max_replicas == 1
        (cr,) = w.current
        assert cr.node in {n.name for n in sub.fleet.nodes}


def test_current_replica_outside_the_group_is_dropped_from_the_sub_problem() -> None:
    moved = W("moved", user_region="rb", max_latency_ms=5, current=(CurrentReplica("a1-n1", (0,)),))
    p = replace(two_region_problem(), workloads=(moved,))
    subs = partition(p, 2)
    (w,) = [w for sub in subs for w in sub.workloads]
    assert w.current == ()


# ------------------------------------------------------------------- solve and bound


@pytest.fixture(scope="module")
def hand_optimum() -> int:
    plan = solve(two_region_problem(time_limit_s=20))
    assert plan.info.status is SolveStatus.OPTIMAL
    return plan.objective.placed_work


def test_combined_plan_verifies_with_merged_reasons(hand_optimum: int) -> None:
    p = two_region_problem()
    plan, stats = solve_partitioned_stats(p, 2, "local", processes=1)
    assert verify(p, plan) == []
    reasons = {u.workload: [r.rule for r in u.reasons] for u in plan.unplaced}
    assert reasons["spread-x"] == [PARTITIONING]
    assert reasons["survive-x"] == [PARTITIONING]
    assert reasons["too-big"] == ["gpu_memory"]
    placed = {pl.workload for pl in plan.placements}
    assert {"local-a", "anywhere", "home-a", "spread-ok", "node-spread-c"} <= placed
    assert stats.left_out_partitioning == 2
    # partitioning lost spread-x and survive-x, which the whole fleet can hold
    assert plan.objective.placed_work < hand_optimum
    assert plan.info.status is SolveStatus.FEASIBLE  # workloads span groups: optimality not proven


def test_bound_is_at_least_the_whole_optimum(hand_optimum: int) -> None:
    p = two_region_problem()
    plan, stats = solve_partitioned_stats(p, 2, "local", processes=1)
    assert plan.info.bound is not None and plan.info.gap is not None
    assert plan.info.bound >= hand_optimum  # a bound of the whole problem, not of the parts
    assert stats.bound_parts >= hand_optimum
    assert stats.bound_relaxation is not None and stats.bound_relaxation >= hand_optimum
    assert plan.info.bound == min(stats.bound_parts, stats.bound_relaxation)
    assert plan.info.gap == pytest.approx((plan.info.bound - plan.objective.placed_work) / plan.info.bound)
    assert hand_optimum - plan.objective.placed_work <= stats.partition_cost_bound
    # the parts' own bounds alone would not do: they miss what partitioning left out
    assert sum(part.bound or 0 for part in stats.parts) < hand_optimum


def test_relaxation_bound_of_a_generated_fleet_holds_the_single_solve() -> None:
    p = generate(300, 2)
    p = replace(p, options=replace(p.options, time_limit_s=5))
    plan = solve(p)
    bound = relaxation_bound(p)
    assert bound is not None and bound >= plan.objective.placed_work


@pytest.mark.slow
def test_generated_fleet_in_a_process_pool_verifies() -> None:
    p = generate(1000, 1)
    plan, stats = solve_partitioned_stats(p, 3, "local", time_limit_s=3)
    # three parts on two processes: two waves, each part within its share of the 3 s
    assert stats.waves == 2
    assert 0 < stats.part_time_limit_s <= (3 - 0.1 * 3 - 0.5) / 2
    assert verify(p, plan) == []
    assert plan.objective.placed_work > 0
    assert plan.info.bound is not None and plan.info.bound >= plan.objective.placed_work
    names = {w.name for w in p.workloads}
    assert {u.workload for u in plan.unplaced} | {pl.workload for pl in plan.placements} == names


def _live(max_moves: int | None) -> Problem:
    """A generated fleet of two regions, its plan as every workload's current placement, two of
    the nodes it uses drained: a re-plan, under a budget of ``max_moves`` or with moves priced."""
    base = generate(600, 3)
    first = solve(replace(base, options=replace(base.options, time_limit_s=3)))
    rows: dict[str, list[CurrentReplica]] = {}
    for pl in first.placements:
        rows.setdefault(pl.workload, []).append(CurrentReplica(pl.node, pl.gpu_indices, pl.power_cap_w))
    used = sorted({pl.node for pl in first.placements})[:2]
    nodes = tuple(replace(n, state=NodeState.DRAINING) if n.name in used else n for n in base.fleet.nodes)
    return replace(
        base,
        fleet=replace(base.fleet, nodes=nodes),
        workloads=tuple(
            replace(w, current=tuple(rows.get(w.name, ())), pinned=False) for w in base.workloads
        ),
        options=replace(base.options, max_moves=max_moves, time_limit_s=4),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("max_moves", "executor"),
    [pytest.param(None, "local", id="priced-in-parts"), pytest.param(5, "whole", id="budget-solved-whole")],
)
def test_a_partitioned_replan_lists_its_moves_and_a_checked_migration(
    max_moves: int | None, executor: str
) -> None:
    p = _live(max_moves)
    plan, stats = solve_partitioned_stats(p, 2, "local")
    assert stats.executor == executor and (executor == "local") == (WHOLE_NOTE not in stats.notes)
    assert verify(p, plan) == []
    forced = [m for m in plan.displaced if m.forced]
    assert forced and all(m.rule == "node_state" for m in forced)  # the drained nodes' replicas
    if max_moves is not None:
        assert len(plan.displaced) - len(forced) <= max_moves
    assert plan.migration is not None and verify_migration(p, plan, plan.migration) == []
    stopped = {(s.workload, s.node) for s in plan.migration.steps if s.kind is StepKind.STOP}
    assert {(m.workload, m.node) for m in forced} <= stopped


def test_unknown_executor_is_refused() -> None:
    with pytest.raises(ValueError, match="executor"):
        solve_partitioned(two_region_problem(), 2, "dask")


# ------------------------------------------------------------------------------ Ray


@pytest.mark.slow
def test_ray_equals_local_in_placed_work(local_ray: None) -> None:
    p = two_region_problem(time_limit_s=30)  # each part reaches its optimum in well under a second
    # the most the parts can earn: every workload they hold, all max replicas at full power
    most = sum(max_work(w, 100) for sub in partition(p, 2) for w in sub.workloads)
    local, _ = solve_partitioned_stats(p, 2, "local", processes=1)
    on_ray, ray_stats = solve_partitioned_stats(p, 2, "ray")
    assert verify(p, on_ray) == []
    assert on_ray.objective.placed_work == local.objective.placed_work == most
    assert len(ray_stats.parts) == 2 and all(s.placed_work > 0 for s in ray_stats.parts)
    assert on_ray.info.backend.endswith("+partition[ray]")
    assert on_ray.info.bound == local.info.bound
