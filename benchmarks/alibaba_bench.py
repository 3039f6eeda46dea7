"""GPU allocation on the Alibaba trace at 130% demand: one batch, and FGD's online protocol.

Both experiments start from ``alibaba.fgd_arrivals``: the task stream of the FGD simulator
(Weng et al., USENIX ATC'23, ``hkust-adsl/kubernetes-scheduler-simulator``), i.e. every
task of the pod list once in a seeded random order, then random clones until the requested
GPUs reach 130% of the cluster's 6,212.

* ``batch``: all GPU tasks of the stream as one problem, placed by one call of each method.
* ``online``: FGD's protocol in batches. Tasks arrive in stream order, at most
  ``BATCH_TASKS`` (50) at a time. Each batch is solved with every earlier placed task
  pinned (``Workload.pinned``, ``current`` = its placement) and the batch free. A task the
  method leaves out is dropped for good, as the simulator deletes a pod it cannot schedule
  (``assumePod``) and never retries it. Placed tasks never move; this is checked after
  every batch (besides the verifier's ``pinned`` rule).

Allocation, as FGD measures it (``merge_alloc_discrete.py``): allocated GPU thousandths
(a fractional task counts its ``gpu_milli``) / (1000 * cluster GPUs) * 100. FGD's figure
"at 130%" is the mean of that ratio over every scheduling event whose arrived demand
(requested GPU milli of all arrived tasks, placed or not) rounds to 130% of the cluster;
``allocation_pct`` here is the same mean over the batch ends whose arrived demand rounds
to 130 (the last batch at least), ``final_allocation_pct`` the allocation after the last.

Where this differs from FGD (said in every record's ``protocol``):

* CPU-only tasks (1,088 of the 8,152 rows) stay in the stream, so the demand axis is the
  same, but are not placed: our domain has no workload without a GPU. In FGD they compete
  for CPU and memory of the GPU nodes (18% of the cluster's CPU), so leaving them out
  makes CPU less binding here than there.
* Batches of up to 50 tasks instead of one task at a time (the issue's protocol).
* Every task at priority 1 (``stream(uniform_priority=True)``): FGD ignores QoS, and with
  the importer's QoS priorities our engine maximises priority-weighted work, not GPUs.
* Seeds are Python's ``random`` from ``seed`` 0.., not FGD's Go seeds 42..51: the same
  distribution, different orders.

The engine (method ``engine``, its ``method_detail`` in every record): on one batch,
``placement.solve`` (which, where it builds no per-node model and the fleet has no spread
or survival rules, ends with ``placement.construct.fgd.improve`` on its best plan); online, one
``placement.construct.fgd.OnlinePlacer`` per stream, which keeps the fleet between batches (the
pinned tasks are checked against it, not placed again). Every plan of every step passes
``placement.verify``.

Measured (default mix, seeds 0-2, allocation % by seed; commits e9c0865 / c3a403a; a 2-core
machine shared with another session's benchmarks, load average 2-8, so seconds are loose):

=================  =========================  ===========================  ==================
method             batch (one call)           online (batches of 50)       online s per batch
=================  =========================  ===========================  ==================
engine             99.54 / 99.62 / 99.48      95.69 / 95.70 / 95.63        0.19 mean, 0.7 max
fgd_atc23          95.25 / 95.11 / 95.17      95.39 / 95.23 / 95.16        0.05 mean
first_fit_dec.     98.46 / 98.52 / 98.43      94.55 / 94.59 / 94.82        0.13 mean
best_fit           95.53 / 95.84 / 95.67      93.21 / 93.35 / 93.46        0.19 mean
fgd (heuristics)   95.68 / 96.01 / 95.88      93.29 / 93.53 / 93.56        0.17 mean
=================  =========================  ===========================  ==================

FGD's published figure at 130% is 95.39 (mean of 10 seeds). The engine's batch call takes
about 19 s with ``--time-limit 60`` (the solve stops early; improve about 3 s). Other mixes,
batch, seed 0, engine against first fit: multigpu50 99.66 / 98.36, gpushare100 91.06 / 83.23,
gpuspec33 97.86 / 97.25.

``alibaba_records`` gives the records ``fleetplace bench --size alibaba`` writes;
``python -m benchmarks.alibaba_bench`` prints the same as a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from importers import alibaba
from placement.core.budgets import FULL_GPU_MILLI, compute_budgets
from placement.core.domain import (
    CurrentReplica,
    Plan,
    PowerBudgets,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    UnplacedWorkload,
    Workload,
)
from placement.core.objective import evaluate
from placement.core.verify import verify

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("default", "multigpu50", "gpushare100", "gpuspec33")
DEMAND_PCT = 130.0
BATCH_TASKS = 50
ONLINE_BATCH_LIMIT_S = 5.0
ENGINE = "engine"
FGD_SUMMARY = alibaba.DEFAULT_TRACE_DIR.parent / "fgd-published-results" / "DERIVED_fgd_alloc_summary.csv"
PROTOCOL_NOTE = (
    "FGD stream (all rows shuffled + clones to 130%); CPU-only tasks counted in demand, not placed; "
    "every task priority 1 (FGD ignores QoS)"
)

Placer = Callable[[Problem], tuple[Sequence[ReplicaPlacement], SolveInfo | None]]


# ----------------------------------------------------------------------------- methods


ENGINE_BATCH = (
    "placement.solve: portfolio, then placement.construct.fgd.improve on the best plan (the plan and FGD's, "
    "each repacked; the better kept) in the last fifth of the time limit"
)
ENGINE_ONLINE = (
    "placement.construct.fgd.OnlinePlacer: FGD (ATC'23) with host CPU/memory in the measure, the task mix "
    "learnt from the tasks seen and a lean (0.1 per free thousandth) towards emptier nodes; the "
    "fleet kept between batches, so pinned tasks cost nothing"
)


def _engine(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
    """The engine on one batch: ``solve`` (which ends with ``placement.construct.fgd.improve`` here)."""
    from placement import solve

    plan = solve(problem)
    return plan.placements, plan.info


def online_engine(spread_weight: float | None = None) -> Placer:
    """A fresh online engine for one stream (it keeps the fleet between the stream's batches).

    ``spread_weight`` 0 is FGD as published (``FGD_ATC23``); ``None`` the engine's lean.
    """
    from placement.construct.fgd import ONLINE_SPREAD_WEIGHT, OnlinePlacer

    placer = OnlinePlacer(spread_weight=ONLINE_SPREAD_WEIGHT if spread_weight is None else spread_weight)

    def run(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        return placer(problem), None

    return run


FGD_ATC23 = "fgd_atc23"
FGD_ATC23_DETAIL = (
    "placement.construct.fgd without the engine's additions: FGD's measure (with host CPU/memory) and greedy, "
    "tasks in arrival order; online, the same OnlinePlacer with no lean (spread_weight 0)"
)


def _fgd_atc23(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
    from placement.construct import fgd

    return fgd.fgd_place(problem, ("arrival",)), None


def warm_up() -> None:
    """Import the solver libraries before any timed call: the first ``solve`` otherwise spends
    about 2.7 s of its time box importing OR-Tools (measured), and a 2 s box ends empty."""
    import ortools.sat.python.cp_model  # noqa: F401


def _heuristic(f: Callable[[Problem], Any]) -> Placer:
    def run(problem: Problem) -> tuple[Sequence[ReplicaPlacement], SolveInfo | None]:
        return tuple(f(problem)), None

    return run


def methods(names: Sequence[str] | None = None) -> dict[str, Placer]:
    """Our engine, FGD as published (``fgd_atc23``) and every heuristic of ``placement.construct.heuristics``."""
    out: dict[str, Placer] = {ENGINE: _engine, FGD_ATC23: _fgd_atc23}
    if not names or ENGINE in names:
        warm_up()
    try:
        from placement.construct.heuristics import HEURISTICS  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        log.warning("placement.construct.heuristics is not there yet: engine only")
        heuristics: dict[str, Callable[[Problem], Any]] = {}
    else:
        heuristics = dict(HEURISTICS)
    for name, f in heuristics.items():
        out[name] = _heuristic(f)
    if names:
        missing = [n for n in names if n not in out]
        if missing:
            raise ValueError(f"unknown methods {missing}; known: {sorted(out)}")
        out = {n: out[n] for n in names}
    return out


# ----------------------------------------------------------------------------- measures


def allocated_milli(placements: Sequence[ReplicaPlacement]) -> int:
    """GPU thousandths held: a whole-GPU replica 1000 per GPU, a fractional one its share."""
    return sum(p.gpu_milli * len(p.gpu_indices) for p in placements)


def cluster_milli(problem: Problem) -> int:
    return FULL_GPU_MILLI * sum(n.gpu_count for n in problem.fleet.nodes)


def stranded_power_kw(budgets: PowerBudgets) -> float:
    """Headroom of power domains with no whole GPU left free: cap no new GPU task can use."""
    free_gpu: dict[str, bool] = {}
    node_domain = {nb.node: nb.power_domain for nb in budgets.nodes}
    for g in budgets.gpus:
        dom = node_domain.get(g.node)
        if dom is not None and g.used_milli == 0:
            free_gpu[dom] = True
    return sum(max(0.0, b.headroom_kw) for b in budgets.power_domains if not free_gpu.get(b.name, False))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def plan_of(problem: Problem, placements: Sequence[ReplicaPlacement], info: SolveInfo | None) -> Plan:
    """A plan around bare placements (a heuristic's), with recomputed budgets and objective."""
    placed = {p.workload for p in placements}
    return Plan(
        placements=tuple(placements),
        budgets=compute_budgets(problem, placements),
        unplaced=tuple(UnplacedWorkload(w.name, ()) for w in problem.workloads if w.name not in placed),
        objective=evaluate(problem, placements),
        info=info or SolveInfo(status=SolveStatus.FEASIBLE),
    )


def published(pod_list: str, path: Path = FGD_SUMMARY) -> dict[str, float]:
    """FGD's published GPU allocation % at 130% demand by policy (mean of 10 seeds)."""
    out: dict[str, float] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            if r["workload"] == f"openb_pod_list_{pod_list}":
                out[r["sc_policy"].split("-", 1)[-1]] = float(r["alloc_pct_at_130_mean"])
    return out


# ----------------------------------------------------------------------------- stream


@dataclass(frozen=True)
class Stream:
    """The GPU tasks of one FGD stream, in arrival order, with the demand arrived after each."""

    pod_list: str
    seed: int
    problem: Problem  # fleet + every GPU task, in arrival order
    arrived_milli: tuple[int, ...]  # requested GPU milli of all tasks arrived up to each GPU task
    cpu_only_tasks: int


def stream(
    pod_list: str = "default",
    seed: int = 0,
    demand_pct: float = DEMAND_PCT,
    trace_dir: str | Path | None = None,
    limit: int | None = None,
    node_limit: int | None = None,
    uniform_priority: bool = True,
) -> Stream:
    """``limit`` keeps the first GPU tasks only, ``node_limit`` the first nodes (test slices).

    ``uniform_priority``: every task at priority 1, as FGD ignores QoS; otherwise the
    importer's QoS priorities, and the engine trades GPUs for priority-weighted work.
    """
    tasks = alibaba.fgd_arrivals(trace_dir, pod_list, demand_pct, seed)
    arrived: list[int] = []
    total = 0
    gpu_tasks: list[tuple[alibaba.PodRow, str]] = []
    for pod, name in tasks:
        total += alibaba.task_milli(pod)
        if pod.num_gpu > 0:
            gpu_tasks.append((pod, name))
            arrived.append(total)
    if limit is not None:
        gpu_tasks, arrived = gpu_tasks[:limit], arrived[:limit]
    problem = alibaba.problem_for(gpu_tasks, trace_dir, node_limit)
    if uniform_priority:
        problem = replace(problem, workloads=tuple(replace(w, priority=1) for w in problem.workloads))
    return Stream(pod_list, seed, problem, tuple(arrived), sum(1 for p, _ in tasks if p.num_gpu == 0))


# ----------------------------------------------------------------------------- results


@dataclass
class Run:
    """One method on one stream (batch: one step; online: one step per batch)."""

    method: str
    protocol: str
    pod_list: str
    seed: int
    wall_s: float = 0.0
    cpu_s: float = (
        0.0  # process CPU time of the method's calls (all threads): wall on a loaded machine misleads
    )
    allocation_pct: float = 0.0  # FGD's mean over the steps whose arrived demand rounds to 130
    final_allocation_pct: float = 0.0
    placed_gpus: float = 0.0
    placed_tasks: int = 0
    dropped_tasks: int = 0
    stranded_power_kw: float = 0.0
    objective: int | None = None
    bound: float | None = None
    gap: float | None = None
    verified: bool = True
    violations: list[str] = field(default_factory=list)
    moved_pinned: int = 0
    failed_steps: int = 0  # online steps where the method raised: their tasks were dropped
    step_wall_s: list[float] = field(default_factory=list)
    step_pinned: list[int] = field(default_factory=list)
    error: str = ""


def _check(
    run: Run, problem: Problem, placements: Sequence[ReplicaPlacement], info: SolveInfo | None
) -> Plan:
    plan = plan_of(problem, placements, info)
    bad = verify(problem, plan)
    if bad:
        run.verified = False
        run.violations.extend(str(v) for v in bad[:5])
        log.warning("%s %s: %d violations, first: %s", run.method, run.protocol, len(bad), bad[0])
    return plan


def run_batch(s: Stream, method: str, placer: Placer, time_limit_s: float) -> Run:
    """All GPU tasks of the stream in one call of ``placer``."""
    problem = replace(s.problem, options=replace(s.problem.options, time_limit_s=time_limit_s))
    run = Run(method, "batch", s.pod_list, s.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        placements, info = placer(problem)
    except Exception as e:  # a method that fails is a result, not a crash of the benchmark
        log.exception("%s failed on %s batch", method, s.pod_list)
        run.error, run.verified = f"{type(e).__name__}: {e}", False
        return run
    run.wall_s = time.perf_counter() - t0
    run.cpu_s = time.process_time() - c0
    run.step_wall_s.append(run.wall_s)
    run.step_pinned.append(0)
    plan = _check(run, problem, placements, info)
    milli = allocated_milli(plan.placements)
    run.allocation_pct = run.final_allocation_pct = 100.0 * milli / cluster_milli(problem)
    run.placed_gpus = milli / FULL_GPU_MILLI
    run.placed_tasks = len(plan.placements)
    run.dropped_tasks = len(problem.workloads) - run.placed_tasks
    run.stranded_power_kw = stranded_power_kw(plan.budgets)
    run.objective = plan.objective.placed_work
    if info is not None:
        run.bound, run.gap = info.bound, info.gap
    return run


def pin(w: Workload, p: ReplicaPlacement) -> Workload:
    return replace(w, pinned=True, current=(CurrentReplica(p.node, tuple(p.gpu_indices)),))


def run_online(
    s: Stream,
    method: str,
    placer: Placer,
    batch_time_limit_s: float,
    batch_tasks: int = BATCH_TASKS,
    verify_every: int = 1,
    continue_on_error: bool = True,
) -> Run:
    """FGD's online protocol in batches of at most ``batch_tasks`` (module docstring).

    A step where the method raises is counted (``failed_steps``, the run is not verified) and,
    with ``continue_on_error``, its batch is dropped and the protocol goes on.
    """
    run = Run(method, "online", s.pod_list, s.seed)
    fleet = s.problem.fleet
    options = replace(s.problem.options, time_limit_s=batch_time_limit_s)
    total = cluster_milli(s.problem)
    kept: dict[str, tuple[Workload, ReplicaPlacement]] = {}  # placed so far, in arrival order
    held_milli = 0
    band: list[float] = []
    workloads = s.problem.workloads
    plan: Plan | None = None
    steps = math.ceil(len(workloads) / batch_tasks)
    for step in range(steps):
        new = workloads[step * batch_tasks : (step + 1) * batch_tasks]
        arrived = s.arrived_milli[min(len(workloads), (step + 1) * batch_tasks) - 1]
        pinned = [pin(w, p) for w, p in kept.values()]
        problem = Problem(fleet=fleet, workloads=tuple(pinned) + tuple(new), options=options)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            placements, info = placer(problem)
        except Exception as e:
            # counted as a failure and, conservatively, as if the method had dropped the batch
            log.exception("%s failed on %s online batch %d", method, s.pod_list, step)
            run.failed_steps += 1
            run.verified = False
            if not run.error:
                run.error = f"batch {step} ({len(pinned)} pinned): {type(e).__name__}: {str(e)[:300]}"
            if not continue_on_error:
                break
            placements, info = [p for _, p in kept.values()], None
        wall = time.perf_counter() - t0
        run.wall_s += wall
        run.cpu_s += time.process_time() - c0
        run.step_wall_s.append(wall)
        run.step_pinned.append(len(pinned))
        by_name = {p.workload: p for p in placements}
        for name, (_, before) in kept.items():
            after = by_name.get(name)
            if after is None or (after.node, tuple(sorted(after.gpu_indices))) != (
                before.node,
                tuple(sorted(before.gpu_indices)),
            ):
                run.moved_pinned += 1
        if step % verify_every == 0 or step == steps - 1:
            plan = _check(run, problem, placements, info)
        for w in new:
            p = by_name.get(w.name)
            if p is None:
                run.dropped_tasks += 1
            else:
                kept[w.name] = (w, p)
                held_milli += p.gpu_milli * len(p.gpu_indices)
        pct = 100.0 * held_milli / total
        if round(100.0 * arrived / total) >= round(DEMAND_PCT):
            band.append(pct)
        run.final_allocation_pct = pct
        if info is not None:
            run.bound, run.gap = info.bound, info.gap
        log.info(
            "%s %s online seed %d batch %d/%d: %d pinned, %.2fs, allocation %.2f%% at demand %.1f%%",
            method,
            s.pod_list,
            s.seed,
            step + 1,
            steps,
            len(pinned),
            wall,
            pct,
            100.0 * arrived / total,
        )
    if run.moved_pinned:
        run.verified = False
    run.allocation_pct = statistics.fmean(band) if band else run.final_allocation_pct
    final = [p for _, p in kept.values()]
    run.placed_gpus = allocated_milli(final) / FULL_GPU_MILLI
    run.placed_tasks = len(final)
    if plan is not None:
        run.stranded_power_kw = stranded_power_kw(plan.budgets)
        run.objective = plan.objective.placed_work
    return run


# ----------------------------------------------------------------------------- records


def record(runs: Sequence[Run], time_limit_s: float) -> dict[str, Any]:
    """One benchmark record for one method on one instance, averaged over seeds."""
    r0 = runs[0]
    pub = published(r0.pod_list)
    walls = [w for r in runs for w in r.step_wall_s]
    pinned = [n for r in runs for n in r.step_pinned]

    def mean(xs: list[float]) -> float:
        return statistics.fmean(xs) if xs else 0.0

    return {
        "instance": f"alibaba-{r0.pod_list}-{r0.protocol}{int(DEMAND_PCT)}",
        "method": r0.method,
        "method_detail": "" if r0.method == ENGINE else f"placement.construct.heuristics.{r0.method}",
        "wall_s": round(mean([r.wall_s for r in runs]), 3),
        "cpu_s": round(mean([r.cpu_s for r in runs]), 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "placed_gpus": round(mean([r.placed_gpus for r in runs]), 3),
        "allocation_pct": round(mean([r.allocation_pct for r in runs]), 3),
        "stranded_power_kw": round(mean([r.stranded_power_kw for r in runs]), 3),
        "objective": r0.objective if len(runs) == 1 else round(mean([float(r.objective or 0) for r in runs])),
        "bound": r0.bound if len(runs) == 1 else None,
        "gap": r0.gap if len(runs) == 1 else None,
        "verified": all(r.verified and not r.error for r in runs),
        "protocol": r0.protocol,
        "protocol_note": PROTOCOL_NOTE
        + ("; batches of 50, earlier tasks pinned, unplaced dropped" if r0.protocol == "online" else ""),
        "pod_list": r0.pod_list,
        "demand_pct": DEMAND_PCT,
        "seeds": [r.seed for r in runs],
        "allocation_pct_by_seed": [round(r.allocation_pct, 3) for r in runs],
        "allocation_pct_median": round(statistics.median([r.allocation_pct for r in runs]), 3),
        "final_allocation_pct": round(mean([r.final_allocation_pct for r in runs]), 3),
        "placed_tasks": round(mean([float(r.placed_tasks) for r in runs]), 1),
        "dropped_tasks": round(mean([float(r.dropped_tasks) for r in runs]), 1),
        "moved_pinned": sum(r.moved_pinned for r in runs),
        "failed_steps": sum(r.failed_steps for r in runs),
        "steps": len(walls),
        "step_wall_s_mean": round(mean(walls), 3),
        "step_wall_s_max": round(max(walls), 3) if walls else 0.0,
        "step_pinned_max": max(pinned) if pinned else 0,
        "step_wall_s_seed0": [round(w, 3) for w in r0.step_wall_s],  # seconds per step against ...
        "step_pinned_seed0": r0.step_pinned,  # ... the tasks pinned in it
        "time_limit_s": time_limit_s,
        "fgd_published_pct": pub,
        "errors": [r.error for r in runs if r.error],
        "violations": [v for r in runs for v in r.violations][:5],
    }


def experiment(
    protocol: str,
    pod_lists: Sequence[str],
    seeds: int,
    time_limit_s: float,
    batch_time_limit_s: float,
    method_names: Sequence[str] | None = None,
    trace_dir: str | Path | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    placers = methods(method_names)
    out: list[dict[str, Any]] = []
    for pod_list in pod_lists:
        streams = [stream(pod_list, seed, trace_dir=trace_dir, limit=limit) for seed in range(seeds)]
        for name, placer in placers.items():
            if protocol == "batch":
                runs = [run_batch(s, name, placer, time_limit_s) for s in streams]
            elif name in (ENGINE, FGD_ATC23):
                lean = None if name == ENGINE else 0.0
                runs = [run_online(s, name, online_engine(lean), batch_time_limit_s) for s in streams]
            else:
                runs = [run_online(s, name, placer, batch_time_limit_s) for s in streams]
            rec = record(runs, time_limit_s if protocol == "batch" else batch_time_limit_s)
            if name == ENGINE:
                rec["method_detail"] = ENGINE_BATCH if protocol == "batch" else ENGINE_ONLINE
            elif name == FGD_ATC23:
                rec["method_detail"] = FGD_ATC23_DETAIL
            log.info(
                "%s", json.dumps({k: rec[k] for k in ("instance", "method", "allocation_pct", "wall_s")})
            )
            out.append(rec)
    return out


def alibaba_records(
    time_limit_s: float,
    seeds: int = 1,
    protocol: str = "both",
    batch_pod_lists: Sequence[str] = VARIANTS,
    online_pod_lists: Sequence[str] = ("default",),
    batch_time_limit_s: float | None = None,
) -> list[dict[str, Any]]:
    """Records for ``fleetplace bench --size alibaba``: batch on every variant, online on the default mix.

    ``time_limit_s`` bounds the one batch solve; each online batch gets ``batch_time_limit_s``
    (default ``min(time_limit_s, ONLINE_BATCH_LIMIT_S)``).
    """
    per_batch = (
        batch_time_limit_s if batch_time_limit_s is not None else min(time_limit_s, ONLINE_BATCH_LIMIT_S)
    )
    out: list[dict[str, Any]] = []
    if protocol in ("batch", "both"):
        out += experiment("batch", batch_pod_lists, seeds, time_limit_s, per_batch)
    if protocol in ("online", "both"):
        out += experiment("online", online_pod_lists, seeds, time_limit_s, per_batch)
    return out


# ----------------------------------------------------------------------------- table


def table(records: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'instance':<30} {'method':<20} {'alloc %':>8} {'final %':>8} {'dropped':>8} {'wall s':>8} {'cpu s':>8} "
        + (f"{'s/step':>7} {'verified':>8}  published at 130% (FGD repo, 10 seeds)")
    )
    lines = [head, "-" * len(head)]
    seen: set[str] = set()
    for r in records:
        pub = ""
        if r["instance"] not in seen:
            seen.add(r["instance"])
            pub = " ".join(f"{k} {v:.2f}" for k, v in r["fgd_published_pct"].items())
        lines.append(
            f"{r['instance']:<30} {r['method']:<20} {r['allocation_pct']:>8.2f} {r['final_allocation_pct']:>8.2f} "
            f"{r['dropped_tasks']:>8.0f} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['step_wall_s_mean']:>7.2f} "
            f"{('yes' if r['verified'] else 'NO'):>8}  {pub}"
        )
        if r["errors"]:
            lines.append(f"{'':<30} {r['failed_steps']} failed steps, first: {r['errors'][0][:150]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.alibaba_bench", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds for the one batch solve")
    ap.add_argument("--batch-time-limit", type=float, default=None, help="seconds per online batch solve")
    ap.add_argument("--protocol", choices=("batch", "online", "both"), default="both")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), help="pod lists for the batch protocol")
    ap.add_argument("--online-variants", nargs="+", default=["default"], help="pod lists for online")
    ap.add_argument("--methods", nargs="+", default=None, help="engine and/or heuristic names")
    ap.add_argument("--out", type=Path, default=None, help="write the records as JSON")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    per_batch = (
        args.batch_time_limit
        if args.batch_time_limit is not None
        else min(args.time_limit, ONLINE_BATCH_LIMIT_S)
    )
    records: list[dict[str, Any]] = []
    if args.protocol in ("batch", "both"):
        records += experiment("batch", args.variants, args.seeds, args.time_limit, per_batch, args.methods)
        if args.out:
            args.out.write_text(json.dumps(records, indent=1))
    if args.protocol in ("online", "both"):
        records += experiment(
            "online", args.online_variants, args.seeds, args.time_limit, per_batch, args.methods
        )
    if args.out:
        args.out.write_text(json.dumps(records, indent=1))
    sys.stdout.write(table(records) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
