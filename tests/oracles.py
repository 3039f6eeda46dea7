"""The brute-force oracle: every plan of a tiny instance, the best one the verifier accepts.

It never touches the model: it enumerates replica counts per workload, each replica's node
and power level (or its GPU for a fractional one), keeps the plans that
``placement.core.verify`` accepts, and returns the lexicographic best objective as computed
by ``objective.evaluate``. The instances it is meant for: ``tests.builders.tiny_problem``
(type "T" GPUs, ``GPU_T40``).
"""

from __future__ import annotations

import itertools

from placement.core.budgets import compute_budgets
from placement.core.domain import (
    ObjectiveTiers,
    Plan,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    UnplacedWorkload,
    Workload,
)
from placement.core.objective import evaluate
from placement.core.verify import verify
from tests.builders import GPU_T40


def _options(problem: Problem, w: Workload) -> list[tuple[str, int]]:
    """(node, level index) for a whole-GPU replica; (node, gpu index) for a fractional one."""
    out = []
    for n in problem.fleet.nodes:
        if w.is_fractional:
            out.extend((n.name, j) for j in range(n.gpu_count))
        else:
            out.extend((n.name, lv) for lv in range(len(GPU_T40.power_levels)))
    return out


def _materialise(
    problem: Problem, choice: dict[str, tuple[tuple[str, int], ...]]
) -> list[ReplicaPlacement] | None:
    nodes = {n.name: n for n in problem.fleet.nodes}
    wls = {w.name: w for w in problem.workloads}
    shared = {(node, j) for w, opts in choice.items() if wls[w].is_fractional for node, j in opts}
    free = {n: [j for j in range(nodes[n].gpu_count) if (n, j) not in shared] for n in nodes}
    out: list[ReplicaPlacement] = []
    for w, opts in sorted(choice.items()):
        wl = wls[w]
        for r, (node, k) in enumerate(opts):
            n = nodes[node]
            if wl.is_fractional:
                gpus, milli, cap = (k,), wl.gpu_milli, GPU_T40.max_power_w
            else:
                if len(free[node]) < wl.gpus:
                    return None
                gpus = tuple(free[node][: wl.gpus])
                free[node] = free[node][wl.gpus :]
                milli, cap = 1000, GPU_T40.power_levels[k].power_cap_w
            out.append(ReplicaPlacement(w, r, n.site, n.power_domain, node, gpus, milli, cap))
    return out


def brute_force(problem: Problem) -> ObjectiveTiers:
    per_workload = []
    for w in problem.workloads:
        opts = _options(problem, w)
        alts: list[tuple[tuple[str, int], ...]] = [()]
        for r in range(w.min_replicas, w.max_replicas + 1):
            alts.extend(itertools.combinations_with_replacement(opts, r))
        per_workload.append((w.name, alts))
    best: ObjectiveTiers | None = None
    info = SolveInfo(status=SolveStatus.FEASIBLE)
    for combo in itertools.product(*(alts for _, alts in per_workload)):
        choice = {name: c for (name, _), c in zip(per_workload, combo, strict=True) if c}
        placements = _materialise(problem, choice)
        if placements is None:
            continue
        objective = evaluate(problem, placements)
        if best is not None and objective.key() <= best.key():
            continue
        unplaced = tuple(UnplacedWorkload(w.name, ()) for w in problem.workloads if w.name not in choice)
        plan = Plan(tuple(placements), compute_budgets(problem, placements), unplaced, objective, info)
        if not verify(problem, plan):
            best = objective
    assert best is not None  # placing nothing is always valid
    return best
