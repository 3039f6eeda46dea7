"""The objective of a plan by tier (docs/ARCHITECTURE.md "Objective"), recomputed from placements.

1. ``placed_work``: sum over placements of ``priority * work_milli * throughput_pct``; a
   whole-GPU replica earns the throughput of the power level its cap matches, a fractional
   one the type's top level (its GPU runs uncapped).
2. ``energy``: sum over sites of ``energy_coefficient(site, metric) * site IT watts``.
3. ``moves``: per workload and node, ``move_cost * max(0, current replicas there - planned replicas
   there)`` (``move_cost`` 1 unless the workload says otherwise). With current replicas it ranks
   above energy (``placement.exact.model.registry.tiers_for``).
4. ``fragmentation``: powered nodes + shared GPUs in use.

``move_price``: where moves are priced (a re-plan without ``max_moves``), each moved current
replica costs ``Workload.move_price_per_replica`` of placed work, and tier 1 compares
``placed_work - move_price``: a move is made only where it earns more than it costs.

Watts come from ``budgets.node_draws`` so that tier 2 and the power budgets agree to the watt.
Placements naming an unknown workload or node earn nothing; the verifier reports them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from placement.core.budgets import node_draws
from placement.core.domain import GpuType, ObjectiveTiers, Problem, ReplicaPlacement
from placement.core.energy import energy_coefficient, replica_work

log = logging.getLogger(__name__)


def throughput_pct(gpu_type: GpuType, power_cap_w: int) -> int:
    """``relative_throughput_pct`` of the level whose cap is exactly ``power_cap_w``; 0 when none is.

    A cap that is not one of the type's levels earns nothing (rule 6 forbids it).
    """
    for level in gpu_type.power_levels:
        if level.power_cap_w == power_cap_w:
            return level.relative_throughput_pct
    return 0


def top_throughput_pct(gpu_type: GpuType) -> int:
    """Throughput of the type's top (uncapped) level: what a fractional replica earns."""
    return gpu_type.power_levels[-1].relative_throughput_pct if gpu_type.power_levels else 0


def evaluate(problem: Problem, placements: Iterable[ReplicaPlacement]) -> ObjectiveTiers:
    placements = tuple(placements)
    fleet = problem.fleet
    workloads = {w.name: w for w in problem.workloads}
    gpu_types = {g.name: g for g in fleet.gpu_types}
    nodes = {n.name: n for n in fleet.nodes}

    placed_work = 0
    planned: Counter[tuple[str, str]] = Counter()
    for p in placements:
        planned[(p.workload, p.node)] += 1
        w = workloads.get(p.workload)
        node = nodes.get(p.node)
        gpu = gpu_types.get(node.gpu_type) if node is not None else None
        if w is None or gpu is None:
            continue
        pct = top_throughput_pct(gpu) if w.is_fractional else throughput_pct(gpu, p.power_cap_w)
        placed_work += replica_work(w, pct)

    draws = node_draws(fleet, placements)
    site_it_w: dict[str, int] = {}
    powered = 0
    shared = 0
    for node in fleet.nodes:
        d = draws[node.name]
        site_it_w[node.site] = site_it_w.get(node.site, 0) + d.it_w
        powered += d.on
        shared += d.shared_gpus
    metric = problem.options.energy_metric
    energy = sum(energy_coefficient(s, metric) * site_it_w.get(s.name, 0) for s in fleet.sites)

    moves = price = 0
    priced = problem.moves_priced
    for w in problem.workloads:
        current = Counter(c.node for c in w.current)
        for node_name, count in current.items():
            moved = max(0, count - planned[(w.name, node_name)])
            moves += w.move_cost * moved
            if priced and not w.pinned:
                price += w.move_price_per_replica * moved

    return ObjectiveTiers(
        placed_work=placed_work,
        energy=energy,
        moves=moves,
        fragmentation=powered + shared,
        move_price=price,
    )
