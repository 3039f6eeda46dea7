"""Fragmentation gradient descent: the measure by hand, FGD's choices, power and host boundaries,
the online placer's kept state, the repack knapsack against brute force, and verified plans."""

from __future__ import annotations

import copy
import itertools
import random
from collections import Counter
from dataclasses import replace

import pytest

from benchmarks import alibaba_bench
from placement.construct import fgd
from placement.construct.heuristics import Packing, first_fit_decreasing
from placement.construct.policies import UNTRACKED, ClassKey, FirstFit, Measure, Sig
from placement.core.domain import (
    CurrentReplica,
    Node,
    Problem,
    ReplicaPlacement,
    Spread,
    SpreadLevel,
    Workload,
)
from placement.core.objective import evaluate
from placement.generator import generate
from tests.builders import GPU_G, HOST_W, checked, frac, rack_fleet, whole


def pinned(w: Workload, node: str, idx: tuple[int, ...]) -> Workload:
    return replace(w, pinned=True, current=(CurrentReplica(node, idx),))


# ----------------------------------------------------------------------------- the measure


def _measure(classes: dict[ClassKey, int]) -> Measure:
    return Measure.of_tasks({"G": GPU_G}, Counter(classes))


def sig(free: tuple[int, ...], cpu_free: int = UNTRACKED, mem_free: int = UNTRACKED) -> Sig:
    """A node signature from its GPUs' free thousandths (1000: a free GPU, 0: a full one)."""
    partial = tuple(sorted((r, 0) for r in free if 0 < r < 1000))
    return (len(free), free.count(1000), partial, cpu_free, mem_free)


WHOLE_1 = (1, 0, 0, 0, ())
FRAC_500_CPU_4 = (0, 500, 4000, 0, ())


@pytest.mark.parametrize(
    ("free", "cpu_free", "expected"),
    [
        # half the tasks want a whole GPU, half 500 thousandths and 4 CPUs
        pytest.param((1000, 1000), 8000, 0.0, id="two unused GPUs: nothing is a fragment"),
        pytest.param((300, 1000), 8000, 300.0, id="300 free: a fragment for both classes"),
        pytest.param((500, 1000), 8000, 0.5 * 500, id="exactly 500 free is usable by the 500 class"),
        pytest.param((499, 1000), 8000, 499.0, id="499 free is a fragment for both"),
        pytest.param((500,), 4000, 0.5 * 500 + 0.0, id="exactly enough CPU: the 500 class runs"),
        pytest.param((500,), 3999, 500.0, id="1 CPU milli short: all free GPU is a fragment for it"),
        pytest.param((), 8000, 0.0, id="a full node has no fragment"),
    ],
)
def test_measure_by_hand(free: tuple[int, ...], cpu_free: int, expected: float) -> None:
    m = _measure({WHOLE_1: 1, FRAC_500_CPU_4: 1})
    assert m.node("G", sig(free, cpu_free)) == pytest.approx(expected)


def test_measure_counts_all_free_gpu_when_the_node_has_less_than_the_demand() -> None:
    m = _measure({(2, 0, 0, 0, ()): 1})  # a 2-GPU class
    assert m.node("G", sig((1000,), 0, 0)) == pytest.approx(1000.0)  # S = 1000 < 2000
    assert m.node("G", sig((1000, 1000), 0, 0)) == pytest.approx(0.0)
    assert m.node("G", sig((600, 1000, 1000), 0, 0)) == pytest.approx(600.0)  # the partial GPU only
    # 2,200 thousandths free, more than the class's 2,000, one free GPU: the task mix's aggregate
    # test (by_total) counts it as able to run; counting free GPUs, it cannot (all 2,200 a fragment)
    assert m.node("G", sig((600, 600, 1000), 0, 0)) == pytest.approx(1200.0)
    by_gpus = Measure(m.classes, by_total=False)
    assert by_gpus.node("G", sig((600, 600, 1000), 0, 0)) == pytest.approx(2200.0)
    assert by_gpus.node("G", sig((600, 1000, 1000), 0, 0)) == pytest.approx(600.0)


def test_measure_skips_classes_a_gpu_type_may_not_run() -> None:
    other_only = (1, 0, 0, 0, ("H",))
    m = _measure({other_only: 3, WHOLE_1: 1})
    # only WHOLE_1 runs on G; its weight is its share of every task (1/4)
    assert m.node("G", sig((300, 1000), 0, 0)) == pytest.approx(0.25 * 300)


# ----------------------------------------------------------------------------- FGD choices


def test_a_fractional_task_fills_the_gpu_it_fits_exactly() -> None:
    f = rack_fleet((2, 2))
    problem = Problem(f, (pinned(frac("old", 500), "n1", (1,)), frac("new", 500)))
    got = checked(problem, fgd.fgd_place(problem))
    assert (got["new"].node, got["new"].gpu_indices) == ("n1", (1,))


def test_ties_go_to_the_node_left_fullest_so_a_whole_node_stays_free() -> None:
    # n0: GPU 0 shared (400 used), GPU 1 unused; n1: two unused GPUs. Mix: 400, 1 GPU, 600 (a
    # third each). The 1-GPU task adds no fragmentation on either node (F on n0 stays 600/3:
    # its shared GPU is a fragment for whole-GPU tasks either way); the tie goes to n0, left
    # fuller; the 600 task then fills the shared GPU exactly and n1 stays empty.
    f = rack_fleet((2, 2))
    problem = Problem(f, (pinned(frac("old", 400), "n0", (0,)), whole("w"), frac("x", 600)))
    got = checked(problem, fgd.fgd_place(problem, ("arrival",)))
    assert (got["w"].node, got["w"].gpu_indices) == ("n0", (1,))
    assert (got["x"].node, got["x"].gpu_indices) == ("n0", (0,))


def test_host_cpu_steers_a_task_away_from_a_node_it_would_strand() -> None:
    # n0: 2 GPUs but CPU for one 4-CPU task; n1: 2 GPUs and CPU for two. On n0 the task would
    # leave a GPU no task of the mix can use (F1: +1000); on n1 nothing is stranded.
    f = replace(
        rack_fleet((2, 2)),
        nodes=(
            Node("n0", "s", "r", "G", 2, HOST_W, cpu_milli=4000),
            Node("n1", "s", "r", "G", 2, HOST_W, cpu_milli=8000),
        ),
    )
    problem = Problem(f, (whole("w", cpu=4000),))
    assert checked(problem, fgd.fgd_place(problem, ("arrival",)))["w"].node == "n1"
    first_fit = {p.workload: p for p in first_fit_decreasing(problem)}
    assert first_fit["w"].node == "n0"  # the plain order takes the first node and strands a GPU


@pytest.mark.parametrize(
    ("rack_w", "placed"),
    [
        pytest.param(HOST_W + 2 * 70 + 700 - 70, True, id="rack exactly at the draw of one GPU at 700 W"),
        pytest.param(HOST_W + 2 * 70 + 400 - 70, True, id="exactly at the lowest level"),
        pytest.param(HOST_W + 2 * 70 + 400 - 70 - 1, False, id="1 W short of the lowest level"),
    ],
)
def test_power_boundaries(rack_w: int, placed: bool) -> None:
    problem = Problem(rack_fleet((2,), rack_w=rack_w), (whole("w"),))
    got = checked(problem, fgd.fgd_place(problem))
    assert ("w" in got) is placed


@pytest.mark.parametrize(
    ("cpu_milli", "placed"),
    [
        pytest.param(4000, True, id="exactly the node's CPU fits"),
        pytest.param(4001, False, id="1 CPU milli over does not"),
    ],
)
def test_host_cpu_boundaries(cpu_milli: int, placed: bool) -> None:
    problem = Problem(rack_fleet((1,), cpu_milli=4000), (frac("x", 300, cpu=cpu_milli),))
    assert ("x" in checked(problem, fgd.fgd_place(problem))) is placed


def test_spread_rules_are_kept_and_improve_leaves_such_plans_be() -> None:
    w = replace(whole("w"), min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.NODE, 2))
    problem = Problem(rack_fleet((2, 2)), (w,))
    assert fgd.unsupported(problem) == ["w"]
    got = fgd.fgd_place(problem)
    checked(problem, got)  # the verifier checks the spread
    assert sorted(p.node for p in got) == ["n0", "n1"]  # FGD alone would fill one node
    assert fgd.improve(problem, ()) == ()


@pytest.mark.parametrize(("size", "seed"), [(64, 0), (200, 3)])
def test_plans_on_generated_fleets_verify(size: int, seed: int) -> None:
    p = generate(size, seed, fractional_share=0.5)
    workloads = tuple(replace(w, spread=None, survive_site_loss_pct=0) for w in p.workloads)
    problem = replace(p, workloads=workloads)
    placements = fgd.fgd_place(problem)
    checked(problem, placements)
    assert placements
    better = fgd.improve(problem, first_fit_decreasing(problem))
    checked(problem, better)
    assert (
        evaluate(problem, better).placed_work >= evaluate(problem, first_fit_decreasing(problem)).placed_work
    )


# ----------------------------------------------------------------------------- online


def _batches(problem: Problem, size: int) -> list[tuple[Workload, ...]]:
    ws = problem.workloads
    return [ws[k : k + size] for k in range(0, len(ws), size)]


def test_online_placer_keeps_its_fleet_and_never_moves_pinned_tasks() -> None:
    s = alibaba_bench.stream("default", seed=0, limit=160, node_limit=20)
    placer = fgd.OnlinePlacer()
    kept: dict[str, ReplicaPlacement] = {}
    by_name = {w.name: w for w in s.problem.workloads}
    dropped = 0
    for batch in _batches(s.problem, 40):
        pins = tuple(alibaba_bench.pin(by_name[n], p) for n, p in kept.items())
        problem = Problem(s.problem.fleet, pins + batch)
        got = checked(problem, placer(problem))
        for n, p in kept.items():
            assert (got[n].node, got[n].gpu_indices) == (p.node, p.gpu_indices)
        for w in batch:
            if w.name in got:
                kept[w.name] = got[w.name]
            else:
                dropped += 1
    assert placer.rebuilds == 1  # built once, then kept in step with the caller
    assert dropped > 0  # 20 nodes cannot hold 160 tasks
    assert sum(placer.seen.values()) == 160  # dropped tasks count in the mix too


def test_online_placer_starts_again_when_the_pinned_tasks_differ() -> None:
    f = rack_fleet((2, 2))
    placer = fgd.OnlinePlacer(spread_weight=0.0)
    first = Problem(f, (frac("a", 500),))
    (pa,) = placer(first)
    # the caller pins "a" elsewhere than the placer put it: the placer must follow the caller
    other = "n1" if pa.node == "n0" else "n0"
    second = Problem(f, (pinned(frac("a", 500), other, (1,)), frac("b", 500)))
    got = checked(second, placer(second))
    assert (got["a"].node, got["a"].gpu_indices) == (other, (1,))
    assert placer.rebuilds == 2
    assert (got["b"].node, got["b"].gpu_indices) == (other, (1,))  # fills a's GPU exactly


@pytest.mark.parametrize(
    ("spread_weight", "node", "gpus"),
    [
        pytest.param(0.0, "n0", (0,), id="no lean: the tie goes to the fuller node, the GPU is filled"),
        pytest.param(0.1, "n1", (0,), id="lean 0.1: an equal fragmentation on the emptier node wins"),
    ],
)
def test_online_lean_towards_emptier_nodes(spread_weight: float, node: str, gpus: tuple[int, ...]) -> None:
    # 500 used on n0's GPU 0; a new 500 task fragments nothing on either node (mix: 500 only)
    problem = Problem(rack_fleet((2, 2)), (pinned(frac("a", 500), "n0", (0,)), frac("b", 500)))
    got = checked(problem, fgd.OnlinePlacer(spread_weight=spread_weight)(problem))
    assert (got["b"].node, got["b"].gpu_indices) == (node, gpus)


def test_lookahead_restores_the_state_between_orders() -> None:
    problem = Problem(
        rack_fleet((2, 2, 1)), tuple(frac(f"t{k}", m) for k, m in enumerate((300, 700, 500, 500, 1000 - 1)))
    )
    packing = Packing(problem, FirstFit())
    packing.set_policy(fgd.policy_for(packing, Counter(fgd.class_of(w) for w in problem.workloads)))

    def snapshot() -> object:
        st = packing.st
        watts = {k: v for k, v in st.domain_w.items() if v}
        return (list(st.placements), list(st.node_free), watts, packing.index, list(packing.sig))

    before = copy.deepcopy(snapshot())
    mark = packing.mark()
    fgd.place_batch(packing, problem.workloads, "demand")
    assert packing.st.placements
    packing.undo(mark)
    packing.forget()
    assert snapshot() == before
    fgd.lookahead(packing, problem.workloads, ("arrival", "demand"))
    checked(problem, packing.placements())


# ----------------------------------------------------------------------------- repack


def test_repack_swaps_a_lone_task_for_a_set_that_fills_the_gpu() -> None:
    # one GPU: 810 placed; the pool holds 320 + 460 + 220 (= 1000)
    problem = Problem(rack_fleet((1,)), (frac("big", 810), frac("a", 320), frac("b", 460), frac("c", 220)))
    start = (ReplicaPlacement("big", 0, "s", "r", "n0", (0,), 810, 700),)
    got = checked(problem, fgd.refill(problem, start))
    assert set(got) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("cpu_cap", "expected"),
    [
        pytest.param(3 * 1000, {"a", "b", "c"}, id="CPU exactly for the three-task fill"),
        pytest.param(3 * 1000 - 1, {"big"}, id="1 CPU milli short: the lone task stays"),
    ],
)
def test_repack_respects_host_cpu(cpu_cap: int, expected: set[str]) -> None:
    ws = (frac("big", 810, cpu=1000), frac("a", 320, 1000), frac("b", 460, 1000), frac("c", 220, 1000))
    problem = Problem(rack_fleet((1,), cpu_milli=cpu_cap), ws)
    start = (ReplicaPlacement("big", 0, "s", "r", "n0", (0,), 810, 700),)
    assert set(checked(problem, fgd.refill(problem, start))) == expected


@pytest.mark.parametrize("seed", range(25))
def test_refill_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    items = [
        (rng.choice((100, 150, 250, 320, 470, 500)), 0, rng.randint(0, 5), rng.randint(0, 5), 0, f"i{k}")
        for k in range(rng.randint(1, 7))
    ]
    items = [(m, m, c, h, g, n) for m, _, c, h, g, n in items]
    cpu, mem = rng.randint(0, 12), rng.randint(0, 12)
    value, names = fgd._refill(items, 1000, cpu, mem, 1 << 30, front=1 << 10)
    best = 0
    for r in range(len(items) + 1):
        for combo in itertools.combinations(items, r):
            if (
                sum(i[0] for i in combo) <= 1000
                and sum(i[2] for i in combo) <= cpu
                and sum(i[3] for i in combo) <= mem
            ):
                best = max(best, sum(i[1] for i in combo))
    chosen = [i for i in items if i[5] in names]
    assert sum(i[1] for i in chosen) == value
    assert sum(i[0] for i in chosen) <= 1000 and sum(i[2] for i in chosen) <= cpu
    assert sum(i[3] for i in chosen) <= mem
    assert value == best  # exact while no Pareto front is cut


def test_improve_on_an_alibaba_slice_beats_first_fit_and_verifies() -> None:
    s = alibaba_bench.stream("default", seed=0, limit=600, node_limit=80)  # 424 GPUs; FFD leaves 7 free
    ffd = first_fit_decreasing(s.problem)
    better = fgd.improve(s.problem, ffd)
    checked(s.problem, better)
    assert fgd.placed_milli(better) > fgd.placed_milli(ffd)
