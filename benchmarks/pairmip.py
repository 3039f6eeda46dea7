"""The textbook model, as a baseline: one boolean per (replica, candidate node, power level).

Notations
---------
* ``x[w, r, n, l]``: replica ``r`` of workload ``w`` runs on node ``n`` at power level ``l``
  (for a fractional workload one level: its GPU runs uncapped). Candidate nodes are the
  READY nodes of the (site, GPU type) cells that ``heuristics.eligible_cells`` allows.
* ``z[w, r] = sum_{n, l} x[w, r, n, l] <= 1``, ``z[w, r] >= z[w, r + 1]``; ``u[w]`` placed.
* ``o[n]`` node on; ``s[n]`` shared GPUs of node ``n`` (integer).

Constraints (numbers of docs/ARCHITECTURE.md)
---------------------------------------------
4. ``sum gpus * x + s[n] <= gpu_count * o[n]`` (pinned GPUs taken off first); fractional:
   ``sum milli * x <= 1000 * s[n]`` and ``sum milli-GiB * x <= milli-GiB per GPU * s[n]`` (the shares
   are packed into the shared GPUs only in aggregate: a relaxation, so the bound stays valid;
   decoding packs them first-fit and drops a workload whose shares do not pack).
5. host CPU and memory where tracked.
7. ``on_w * o[n] + sum gpus * (cap - idle) * x + (max - idle) * s[n]`` summed per power
   domain and per site ``<=`` usable.
10. ``min * u <= sum_r z <= max * u``.
11. ``y[w, e] <= sum x on e``; ``sum_e y[w, e] >= min_distinct * u``.
12. ``sum_r z - sum_{n in s} x >= survivors * u`` for every candidate site ``s``.

Objective: ``sum priority * work_milli * throughput_pct * x`` (tier 1 only).

This is the formulation the issue measured as "no solution from CP-SAT, HiGHS, CBC or
SCIP" at 2,000 replicas; it is here to show where it stops. Building stops (NO_SOLUTION)
when the model would exceed ``MAX_BOOLEANS`` or building outlasts the time limit.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from placement.construct.heuristics import eligible_cells
from placement.core.budgets import FULL_GPU_MILLI
from placement.core.domain import (
    Backend,
    NodeState,
    Problem,
    ReplicaPlacement,
    SolveStatus,
    SpreadLevel,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels
from placement.exact.backends import get_backend
from placement.exact.model.ir import Direction, IntegerProgram, Sense

log = logging.getLogger(__name__)

# Measured on profile S: 65,000 booleans took 684 MiB of peak RSS in CP-SAT (about 10 KiB
# each); past this many the model would not fit this machine's memory, let alone solve.
MAX_BOOLEANS = 1_000_000


@dataclass(frozen=True)
class PairResult:
    status: str  # OPTIMAL, FEASIBLE, NO_SOLUTION
    placements: tuple[ReplicaPlacement, ...]
    bound: float | None
    booleans: int
    build_s: float
    note: str = ""


def solve_pairs(problem: Problem, time_limit_s: float, workers: int = 2) -> PairResult:
    """The pair model of ``problem`` solved by CP-SAT through the per-node model's backend seam
    (``placement.exact.backends``: an ``IntegerProgram`` loaded into a ``Session``)."""
    t0 = time.monotonic()
    fleet = problem.fleet
    types = {g.name: g for g in fleet.gpu_types}
    groups = eligible_cells(problem)
    by_group: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, n in enumerate(fleet.nodes):
        if n.state is NodeState.READY:
            by_group[(n.site, n.gpu_type)].append(i)

    # pinned work: fixed consumption
    pinned_whole: dict[int, set[int]] = defaultdict(set)
    pinned_shared: dict[int, set[int]] = defaultdict(set)
    pinned_cpu: dict[int, int] = defaultdict(int)
    pinned_mem: dict[int, int] = defaultdict(int)
    node_index = {n.name: i for i, n in enumerate(fleet.nodes)}
    fixed: list[ReplicaPlacement] = []
    for w in problem.workloads:
        if not w.pinned:
            continue
        for k, c in enumerate(w.current):
            i = node_index[c.node]
            n = fleet.nodes[i]
            (pinned_shared if w.is_fractional else pinned_whole)[i].update(c.gpu_indices)
            pinned_cpu[i] += w.cpu_milli
            pinned_mem[i] += w.host_memory_mib
            fixed.append(
                ReplicaPlacement(
                    w.name,
                    k,
                    n.site,
                    n.power_domain,
                    n.name,
                    tuple(c.gpu_indices),
                    w.gpu_milli if w.is_fractional else FULL_GPU_MILLI,
                    types[n.gpu_type].max_power_w,
                )
            )

    free_work = [w for w in problem.workloads if not w.pinned]
    estimate = 0
    for w in free_work:
        nodes = sum(len(by_group[g]) for g in groups[w.name])
        estimate += w.max_replicas * nodes * (1 if w.is_fractional else 3)
    if estimate > MAX_BOOLEANS:
        note = f"about {estimate:,} booleans, over the {MAX_BOOLEANS:,} this baseline builds"
        log.info("pair model: %s", note)
        return PairResult("NO_SOLUTION", (), None, estimate, time.monotonic() - t0, note)

    m = IntegerProgram()
    obj: list[tuple[int, int]] = []
    # per node: lists of (variable, coefficient)
    gpus_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    milli_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    gmem_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    cpu_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    mem_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    watts_on: dict[int, list[tuple[int, int]]] = defaultdict(list)
    xs: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # (w, r) -> (variable, node, cap)
    booleans = 0
    for wi, w in enumerate(free_work):
        if time.monotonic() - t0 > time_limit_s:
            return PairResult(
                "NO_SOLUTION", (), None, booleans, time.monotonic() - t0, "building outlasted the limit"
            )
        cands = [i for g in groups[w.name] for i in by_group[g]]
        if not cands:
            continue
        u = m.new_bool(f"u[{wi}]")
        zs: list[int] = []
        per_site: dict[str, list[int]] = defaultdict(list)
        per_entity: dict[str, list[int]] = defaultdict(list)
        for r in range(w.max_replicas):
            row: list[tuple[int, int, int]] = []
            for i in cands:
                n = fleet.nodes[i]
                gpu = types[n.gpu_type]
                if w.is_fractional:
                    levels = [(gpu.max_power_w, gpu.power_levels[-1].relative_throughput_pct)]
                else:
                    levels = [
                        (gpu.power_levels[k].power_cap_w, gpu.power_levels[k].relative_throughput_pct)
                        for k in allowed_levels(w, gpu)
                    ]
                for cap, pct in levels:
                    x = m.new_bool(f"x[{wi},{r},{i},{cap}]")
                    booleans += 1
                    row.append((x, i, cap))
                    obj.append((x, w.priority * w.work_milli * pct))
                    if w.is_fractional:
                        milli_on[i].append((x, w.gpu_milli))
                        gmem_on[i].append((x, memory_milli_gib(w.memory_gib)))
                    else:
                        gpus_on[i].append((x, w.gpus))
                        watts_on[i].append((x, w.gpus * (cap - gpu.idle_power_w)))
                    if w.cpu_milli:
                        cpu_on[i].append((x, w.cpu_milli))
                    if w.host_memory_mib:
                        mem_on[i].append((x, w.host_memory_mib))
                    per_site[n.site].append(x)
                    if w.spread is not None:
                        e = (
                            n.site
                            if w.spread.level is SpreadLevel.SITE
                            else n.power_domain
                            if w.spread.level is SpreadLevel.POWER_DOMAIN
                            else n.name
                        )
                        per_entity[e].append(x)
            z = m.new_bool(f"z[{wi},{r}]")
            m.add("replica", [*((v, 1) for v, _, _ in row), (z, -1)], Sense.EQ, 0)
            m.add("implies placed", [(z, 1), (u, -1)], Sense.LE, 0)
            if zs:
                m.add("replicas in order", [(zs[-1], 1), (z, -1)], Sense.GE, 0)
            zs.append(z)
            xs[(wi, r)] = row
        m.add("C10 min replicas", [*((z, 1) for z in zs), (u, -w.min_replicas)], Sense.GE, 0)
        if w.spread is not None:
            ys = []
            for vs in per_entity.values():
                y = m.new_bool("")
                m.add("C11 spread entity", [(y, 1), *((v, -1) for v in vs)], Sense.LE, 0)
                ys.append(y)
            m.add("C11 spread", [*((y, 1) for y in ys), (u, -w.spread.min_distinct)], Sense.GE, 0)
        need = w.survivors_required
        if need > 0:
            for vs in per_site.values():
                terms = [*((z, 1) for z in zs), *((v, -1) for v in vs), (u, -need)]
                m.add("C12 site survival", terms, Sense.GE, 0)

    site_w: dict[str, list[tuple[int, int]]] = defaultdict(list)
    domain_w: dict[str, list[tuple[int, int]]] = defaultdict(list)
    fixed_site_w: dict[str, int] = defaultdict(int)
    fixed_domain_w: dict[str, int] = defaultdict(int)
    shared: dict[int, int] = {}
    touched = set(gpus_on) | set(milli_on) | set(pinned_whole) | set(pinned_shared)
    for i in sorted(touched):
        n = fleet.nodes[i]
        gpu = types[n.gpu_type]
        o = m.new_bool(f"on[{i}]")
        s = m.new_var(f"shared[{i}]", 0, n.gpu_count)
        shared[i] = s
        pinned = len(pinned_whole[i]) + len(pinned_shared[i])
        if pinned:
            m.add("pinned on", [(o, 1)], Sense.EQ, 1)
        m.add("C4 gpus", [*gpus_on[i], (s, 1), (o, -n.gpu_count)], Sense.LE, -pinned)
        if milli_on[i]:
            m.add("C4 shares", [*milli_on[i], (s, -FULL_GPU_MILLI)], Sense.LE, 0)
            m.add("C3 shared memory", [*gmem_on[i], (s, -memory_milli_gib(gpu.memory_gib))], Sense.LE, 0)
        else:
            m.add("C4 no shares", [(s, 1)], Sense.EQ, 0)
        if n.cpu_milli and cpu_on[i]:
            m.add("C5 cpu", cpu_on[i], Sense.LE, n.cpu_milli - pinned_cpu[i])
        if n.host_memory_mib and mem_on[i]:
            m.add("C5 host memory", mem_on[i], Sense.LE, n.host_memory_mib - pinned_mem[i])
        on_w = n.host_power_w + n.gpu_count * gpu.idle_power_w
        delta = gpu.max_power_w - gpu.idle_power_w
        draw = [(o, on_w), *watts_on[i], (s, delta)]
        fixed_w = (len(pinned_whole[i]) + len(pinned_shared[i])) * delta
        site_w[n.site].extend(draw)
        domain_w[n.power_domain].extend(draw)
        fixed_site_w[n.site] += fixed_w
        fixed_domain_w[n.power_domain] += fixed_w
    for d in fleet.power_domains:
        if domain_w[d.name]:
            m.add("C7 domain power", domain_w[d.name], Sense.LE, d.usable_power_w - fixed_domain_w[d.name])
    for st in fleet.sites:
        if site_w[st.name]:
            m.add("C7 site power", site_w[st.name], Sense.LE, st.usable_power_w - fixed_site_w[st.name])
    objective = m.add_objective("placed_work", Direction.MAXIMIZE, obj)
    session = get_backend(Backend.ORTOOLS).load(m, problem.options.seed, workers)
    build_s = time.monotonic() - t0
    log.info("pair model: %d booleans built in %.1f s", booleans, build_s)

    res = session.solve(objective, max(0.1, time_limit_s - build_s), None, None, None)
    if res.values is None:
        return PairResult(
            "NO_SOLUTION", tuple(fixed), res.bound, booleans, build_s, "no solution in the limit"
        )
    value = res.values

    # decode: whole GPUs by index, shares packed first-fit into the node's shared GPUs
    chosen: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # node -> (wi, r, cap)
    for (wi, r), row in xs.items():
        for v, i, cap in row:
            if value[v]:
                chosen[i].append((wi, r, cap))
    dropped: set[int] = set()
    out: list[ReplicaPlacement] = []
    for i, items in sorted(chosen.items()):
        n = fleet.nodes[i]
        gpu = types[n.gpu_type]
        taken = pinned_whole[i] | pinned_shared[i]
        free = [k for k in range(n.gpu_count) if k not in taken]
        n_shared = value[shared[i]]
        bins = [[k, 0, 0] for k in free[:n_shared]]
        free = free[n_shared:]
        gmem_cap = memory_milli_gib(gpu.memory_gib)
        for wi, r, cap in sorted(items, key=lambda t: -free_work[t[0]].work_milli):
            w = free_work[wi]
            if w.is_fractional:
                need = memory_milli_gib(w.memory_gib)
                for b in bins:
                    if b[1] + w.gpu_milli <= FULL_GPU_MILLI and b[2] + need <= gmem_cap:
                        b[1] += w.gpu_milli
                        b[2] += need
                        out.append(
                            ReplicaPlacement(
                                w.name, r, n.site, n.power_domain, n.name, (b[0],), w.gpu_milli, cap
                            )
                        )
                        break
                else:
                    dropped.add(wi)
            else:
                idx, free = tuple(free[: w.gpus]), free[w.gpus :]
                out.append(
                    ReplicaPlacement(w.name, r, n.site, n.power_domain, n.name, idx, FULL_GPU_MILLI, cap)
                )
    names = {free_work[wi].name for wi in dropped}
    if names:
        log.info("pair model: %d workloads dropped, their shares did not pack", len(names))
    out = [p for p in out if p.workload not in names]
    # replica indices 0..r-1 per workload
    seen: dict[str, int] = defaultdict(int)
    renumbered = []
    for p in sorted(out, key=lambda p: (p.workload, p.replica)):
        renumbered.append(
            ReplicaPlacement(
                p.workload,
                seen[p.workload],
                p.site,
                p.power_domain,
                p.node,
                p.gpu_indices,
                p.gpu_milli,
                p.power_cap_w,
            )
        )
        seen[p.workload] += 1
    label = "OPTIMAL" if res.status is SolveStatus.OPTIMAL and not names else "FEASIBLE"
    return PairResult(label, (*fixed, *renumbered), res.bound, booleans, build_s)
