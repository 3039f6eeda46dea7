"""The Alibaba allocation benchmark (batch and FGD's online protocol) on slices of the real trace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from benchmarks import alibaba_bench, bench
from benchmarks.alibaba_bench import Run, Stream
from importers import alibaba
from placement.core.domain import Problem, ReplicaPlacement, SolveInfo, Workload
from placement.core.verify import verify

SLICE_TASKS = 150
SLICE_NODES = 30


# ------------------------------------------------------------------ a reference placer


def first_fit(problem: Problem) -> list[ReplicaPlacement]:
    """Pinned workloads where they are; each other one, in order, on the first node that fits."""
    fleet = problem.fleet
    types = {g.name: g for g in fleet.gpu_types}
    free = {n.name: [1000] * n.gpu_count for n in fleet.nodes}
    whole = {n.name: [False] * n.gpu_count for n in fleet.nodes}
    cpu = {n.name: n.cpu_milli for n in fleet.nodes}
    mem = {n.name: n.host_memory_mib for n in fleet.nodes}
    nodes = {n.name: n for n in fleet.nodes}
    out: list[ReplicaPlacement] = []

    def take(w: Workload, node: str, idx: tuple[int, ...]) -> None:
        n = nodes[node]
        for i in idx:
            free[node][i] -= w.work_milli if w.is_fractional else 1000
            whole[node][i] = whole[node][i] or not w.is_fractional
        cpu[node] -= w.cpu_milli
        mem[node] -= w.host_memory_mib
        share = w.gpu_milli if w.is_fractional else 1000
        cap = types[n.gpu_type].max_power_w
        out.append(ReplicaPlacement(w.name, 0, n.site, n.power_domain, node, idx, share, cap))

    for w in problem.workloads:
        if w.pinned:
            take(w, w.current[0].node, tuple(w.current[0].gpu_indices))
    for w in problem.workloads:
        if w.pinned:
            continue
        for n in fleet.nodes:
            if w.allowed_gpu_types and n.gpu_type not in w.allowed_gpu_types:
                continue
            if cpu[n.name] < w.cpu_milli or mem[n.name] < w.host_memory_mib:
                continue
            if w.is_fractional:
                fits = [i for i, f in enumerate(free[n.name]) if f >= w.gpu_milli and not whole[n.name][i]]
                idx = tuple(fits[:1])
                ok = len(idx) == 1
            else:
                idx = tuple(i for i, f in enumerate(free[n.name]) if f == 1000)[: w.gpus]
                ok = len(idx) == w.gpus
            if ok:
                take(w, n.name, idx)
                break
    return out


def first_fit_placer(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
    return first_fit(problem), None


@pytest.fixture(scope="module")
def small() -> Stream:
    return alibaba_bench.stream("default", seed=0, limit=SLICE_TASKS, node_limit=SLICE_NODES)


# ------------------------------------------------------------------ the stream


@pytest.mark.parametrize(
    ("pod_list", "rows"),
    [
        pytest.param("default", 8152, id="default: below 130%, clones appended"),
        pytest.param("multigpu50", 9061, id="multigpu50: above 130%, tasks removed"),
        pytest.param("gpushare100", 8152, id="gpushare100: many fractional tasks"),
    ],
)
def test_stream_reaches_130_pct_without_passing_the_next_task(pod_list: str, rows: int) -> None:
    tasks = alibaba.fgd_arrivals(pod_list=pod_list, seed=1)
    cluster = 6212 * 1000
    total = sum(alibaba.task_milli(p) for p, _ in tasks)
    assert total <= 1.3 * cluster
    assert total > 1.3 * cluster - 8000  # stops at most one task short (an 8-GPU clone)
    names = Counter(name for _, name in tasks)
    assert max(names.values()) == 1  # clones carry a ~k suffix
    originals = [name for name in names if "~" not in name]
    if pod_list == "multigpu50":
        assert len(tasks) < rows and len(originals) == len(tasks)
    else:
        assert len(originals) == rows  # every row exactly once, before any clone
        first_clone = next(i for i, (_, name) in enumerate(tasks) if "~" in name)
        assert first_clone == rows


def test_stream_is_seeded_and_keeps_demand_of_cpu_only_tasks() -> None:
    a = alibaba_bench.stream("default", seed=3)
    b = alibaba_bench.stream("default", seed=3)
    c = alibaba_bench.stream("default", seed=4)
    assert [w.name for w in a.problem.workloads] == [w.name for w in b.problem.workloads]
    assert [w.name for w in a.problem.workloads[:50]] != [w.name for w in c.problem.workloads[:50]]
    assert a.cpu_only_tasks > 1088  # every CPU-only row, plus CPU-only clones
    assert all(w.work_milli > 0 for w in a.problem.workloads)
    # arrived demand grows with every GPU task by exactly its request (CPU-only tasks add 0)
    steps = [y - x for x, y in zip(a.arrived_milli, a.arrived_milli[1:], strict=False)]
    assert steps == [w.work_milli for w in a.problem.workloads[1:]]
    assert round(100 * a.arrived_milli[-1] / (6212 * 1000)) == 130


# ------------------------------------------------------------------ measures


@pytest.mark.parametrize(
    ("placements", "milli"),
    [
        pytest.param([], 0, id="nothing placed"),
        pytest.param([("w", (0, 1), 1000)], 2000, id="two whole GPUs"),
        pytest.param([("a", (3,), 250), ("b", (3,), 750)], 1000, id="two shares fill one GPU"),
        pytest.param([("a", (3,), 1)], 1, id="one thousandth counts"),
    ],
)
def test_allocated_milli_counts_shares(
    placements: list[tuple[str, tuple[int, ...], int]], milli: int
) -> None:
    ps = [ReplicaPlacement(w, 0, "s", "d", "n", idx, share, 300) for w, idx, share in placements]
    assert alibaba_bench.allocated_milli(ps) == milli


def test_published_figures_are_read_from_the_shared_summary() -> None:
    pub = alibaba_bench.published("default")
    assert pub["FGD"] == pytest.approx(95.39)
    assert pub["BestFit"] == pytest.approx(93.08)
    assert set(pub) == {"Random", "DotProd", "GpuClustering", "GpuPacking", "BestFit", "FGD"}


# ------------------------------------------------------------------ batch protocol


def _recomputed_pct(problem: Problem, placements: Sequence[ReplicaPlacement]) -> float:
    gpus = sum(n.gpu_count for n in problem.fleet.nodes)
    return 100.0 * sum(p.gpu_milli * len(p.gpu_indices) for p in placements) / (1000 * gpus)


def test_batch_with_the_engine_verifies_and_counts_what_it_placed(small: Stream) -> None:
    seen: list[tuple[Problem, Sequence[ReplicaPlacement]]] = []

    def engine(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        placements, info = alibaba_bench._engine(problem)
        seen.append((problem, placements))
        return placements, info

    run = alibaba_bench.run_batch(small, "engine", engine, time_limit_s=5.0)
    assert run.error == "" and run.verified, run.violations
    ((problem, placements),) = seen
    assert len(problem.workloads) == SLICE_TASKS
    assert run.allocation_pct == pytest.approx(_recomputed_pct(problem, placements))
    assert run.placed_tasks + run.dropped_tasks == SLICE_TASKS
    assert 0 < run.allocation_pct <= 100


# ------------------------------------------------------------------ online protocol


def _record_calls(
    placer: alibaba_bench.Placer, calls: list[tuple[Problem, Sequence[ReplicaPlacement]]]
) -> alibaba_bench.Placer:
    def run(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        placements, info = placer(problem)
        calls.append((problem, placements))
        return placements, info

    return run


def _check_online(run: Run, calls: list[tuple[Problem, Sequence[ReplicaPlacement]]], s: Stream) -> None:
    assert run.error == "" and run.verified and run.moved_pinned == 0, run.violations
    assert len(calls) == -(-SLICE_TASKS // alibaba_bench.BATCH_TASKS)
    batch = alibaba_bench.BATCH_TASKS
    placed: dict[str, tuple[str, tuple[int, ...]]] = {}
    dropped: set[str] = set()
    for k, (problem, placements) in enumerate(calls):
        assert verify(problem, alibaba_bench.plan_of(problem, placements, None)) == []
        new = problem.workloads[len(placed) :]
        # earlier placed tasks are pinned where they were; dropped ones never come back
        assert [w.name for w in problem.workloads if w.pinned] == list(placed)
        assert all(w.pinned for w in problem.workloads[: len(placed)])
        assert not any(w.pinned for w in new)
        assert len(new) <= alibaba_bench.BATCH_TASKS
        assert [w.name for w in new] == [w.name for w in s.problem.workloads[k * batch : (k + 1) * batch]]
        assert not dropped & {w.name for w in problem.workloads}
        by_name = {p.workload: (p.node, tuple(sorted(p.gpu_indices))) for p in placements}
        for name, where in placed.items():
            assert by_name[name] == where  # a pinned task never moves
        for w in new:
            if w.name in by_name:
                placed[w.name] = by_name[w.name]
            else:
                dropped.add(w.name)
    last_problem, last = calls[-1]
    assert run.final_allocation_pct == pytest.approx(_recomputed_pct(last_problem, last))
    assert run.placed_tasks == len(placed) and run.dropped_tasks == len(dropped)
    assert run.placed_tasks + run.dropped_tasks == SLICE_TASKS


def test_online_protocol_pins_placed_tasks_and_drops_the_rest(small: Stream) -> None:
    calls: list[tuple[Problem, Sequence[ReplicaPlacement]]] = []
    run = alibaba_bench.run_online(small, "first-fit", _record_calls(first_fit_placer, calls), 1.0)
    _check_online(run, calls, small)
    assert run.dropped_tasks > 0  # 30 nodes (104 GPUs) cannot hold 150 tasks: the protocol must drop some


def test_online_protocol_flags_a_method_that_moves_a_pinned_task(small: Stream) -> None:
    def mover(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        placements = first_fit(problem)
        pinned = {w.name for w in problem.workloads if w.pinned}
        if pinned:  # lose the first pinned task: it is not kept where it was
            first = next(i for i, p in enumerate(placements) if p.workload in pinned)
            placements.pop(first)
        return placements, None

    run = alibaba_bench.run_online(small, "mover", mover, 1.0)
    assert run.moved_pinned > 0
    assert not run.verified
    assert any("[pinned]" in v for v in run.violations)


def test_online_protocol_counts_a_failing_step_and_drops_its_batch(small: Stream) -> None:
    calls = 0

    def flaky(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("solver crashed")
        return first_fit(problem), None

    run = alibaba_bench.run_online(small, "flaky", flaky, 1.0)
    assert calls == 3 and run.failed_steps == 1 and not run.verified
    assert "solver crashed" in run.error
    assert run.dropped_tasks >= alibaba_bench.BATCH_TASKS  # the whole second batch
    assert run.moved_pinned == 0 and run.placed_tasks + run.dropped_tasks == SLICE_TASKS


def test_records_carry_the_bench_keys_and_fgd_figures(small: Stream) -> None:
    run = alibaba_bench.run_online(small, "first-fit", first_fit_placer, 1.0)
    rec = alibaba_bench.record([run], 1.0)
    for key in (
        *bench.FIELDS,
        "protocol",
    ):
        assert key in rec
    assert rec["instance"] == "alibaba-default-online130"
    assert rec["fgd_published_pct"]["FGD"] == pytest.approx(95.39)
    assert rec["steps"] == 3 and rec["verified"] is True
    assert rec["placed_gpus"] == pytest.approx(run.placed_gpus)
    assert "| method" not in alibaba_bench.table([rec])
    assert "alibaba-default-online130" in alibaba_bench.table([rec])


def test_online_engine_keeps_its_fleet_pins_and_verifies_every_step(small: Stream) -> None:
    calls: list[tuple[Problem, Sequence[ReplicaPlacement]]] = []
    run = alibaba_bench.run_online(small, "engine", _record_calls(alibaba_bench.online_engine(), calls), 1.0)
    _check_online(run, calls, small)
    assert run.dropped_tasks > 0 and run.final_allocation_pct > 90  # 104 GPUs, 150 tasks: full, some left out


def test_records_name_what_the_engine_ran(small: Stream) -> None:
    run = alibaba_bench.run_online(small, "best_fit", first_fit_placer, 1.0)
    assert alibaba_bench.record([run], 1.0)["method_detail"] == "placement.construct.heuristics.best_fit"
    assert "OnlinePlacer" in alibaba_bench.ENGINE_ONLINE and "improve" in alibaba_bench.ENGINE_BATCH


def test_fgd_as_published_is_a_method_of_both_protocols(small: Stream) -> None:
    placers = alibaba_bench.methods([alibaba_bench.FGD_ATC23])
    batch = alibaba_bench.run_batch(small, alibaba_bench.FGD_ATC23, placers[alibaba_bench.FGD_ATC23], 1.0)
    assert batch.verified and batch.error == "" and batch.placed_tasks > 0
    calls: list[tuple[Problem, Sequence[ReplicaPlacement]]] = []
    run = alibaba_bench.run_online(
        small, "fgd_atc23", _record_calls(alibaba_bench.online_engine(0.0), calls), 1.0
    )
    _check_online(run, calls, small)
