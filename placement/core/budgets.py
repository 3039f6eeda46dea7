"""Power budgets of a plan, recomputed from the fleet and the placements alone.

Node draw follows rule 7 of docs/ARCHITECTURE.md, per GPU:

* a node is on when at least one placement names it; an empty node is off and draws 0;
* a GPU held by a whole-GPU placement (``gpu_milli == 1000``) draws that placement's
  ``power_cap_w``;
* a GPU holding any fractional placement (``gpu_milli < 1000``) is shared and draws the
  type's ``max_power_w`` (``energy.shared_gpu_power_w``), whatever the placements say;
* every other GPU of a powered node draws ``idle_power_w``.

Summed over a node this is exactly ``host_power_w + gpu_count * idle_power_w +
sum(gpus * (cap - idle)) + shared * (max - idle)`` for a valid plan. For an invalid
plan the numbers stay deterministic (a GPU claimed by two whole placements draws the
higher cap; indices outside ``0..gpu_count-1`` and placements on unknown nodes draw
nothing) and the verifier reports the breach under its own rule.

Decisions where the contract leaves room:

* ``PowerBudgets.gpus`` lists every GPU of every known node, including nodes that are
  off (their GPUs at 0 W), so that a report can show the whole fleet;
* ``GpuBudget.workloads`` holds the distinct workload names on the GPU, sorted;
* after the worst single failure an ``N`` entry has no surviving feed:
  ``failure_feed_load_kw = 0`` and ``survives_failure = (it_w == 0)``;
* ``utilisation_pct`` of an entry with no usable power is 0 when it draws nothing and
  infinite otherwise.

Nothing here trusts a budget that a plan carries; the budgets depend on
``problem.fleet`` and the placements only (not on the workloads).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from placement.core.domain import (
    Fleet,
    GpuBudget,
    GpuType,
    NodeBudget,
    PowerBudget,
    PowerBudgets,
    Problem,
    Redundancy,
    ReplicaPlacement,
    feed_count,
)
from placement.core.energy import shared_gpu_power_w

log = logging.getLogger(__name__)

FULL_GPU_MILLI = 1000


@dataclass
class _GpuUse:
    used_milli: int = 0
    whole_cap_w: int | None = None  # highest cap of the whole placements on it
    shared: bool = False
    workloads: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class NodeDraw:
    """Rule-7 draw of one node under a plan."""

    on: bool
    host_w: int
    gpu_w_by_index: tuple[int, ...]
    used_milli_by_index: tuple[int, ...]
    workloads_by_index: tuple[tuple[str, ...], ...]
    shared_gpus: int  # GPUs of this node holding fractional placements

    @property
    def gpu_w(self) -> int:
        return sum(self.gpu_w_by_index)

    @property
    def it_w(self) -> int:
        return self.host_w + self.gpu_w


def node_draws(fleet: Fleet, placements: Iterable[ReplicaPlacement]) -> dict[str, NodeDraw]:
    """Draw of every node of the fleet under ``placements`` (off nodes included), keyed by node name.

    Shared by ``compute_budgets`` and ``objective.evaluate`` so that both see the same watts.
    """
    gpu_types: dict[str, GpuType] = {g.name: g for g in fleet.gpu_types}
    node_names = {n.name for n in fleet.nodes}
    uses: dict[str, dict[int, _GpuUse]] = {}
    for p in placements:
        if p.node not in node_names:
            log.debug(
                "placement %s[%d] names unknown node %s; it draws nothing", p.workload, p.replica, p.node
            )
            continue
        per_node = uses.setdefault(p.node, {})
        fractional = p.gpu_milli < FULL_GPU_MILLI
        for idx in set(p.gpu_indices):
            use = per_node.get(idx)
            if use is None:
                use = per_node[idx] = _GpuUse()
            use.used_milli += p.gpu_milli
            use.workloads.add(p.workload)
            if fractional:
                use.shared = True
            elif use.whole_cap_w is None or p.power_cap_w > use.whole_cap_w:
                use.whole_cap_w = p.power_cap_w

    draws: dict[str, NodeDraw] = {}
    for node in fleet.nodes:
        gpu = gpu_types.get(node.gpu_type)
        node_uses = uses.get(node.name)
        on = node_uses is not None
        watts: list[int] = []
        milli: list[int] = []
        names: list[tuple[str, ...]] = []
        shared = 0
        for idx in range(node.gpu_count):
            use = node_uses.get(idx) if node_uses is not None else None
            if use is not None:
                milli.append(use.used_milli)
                names.append(tuple(sorted(use.workloads)))
            else:
                milli.append(0)
                names.append(())
            if not on or gpu is None:
                watts.append(0)
            elif use is None:
                watts.append(gpu.idle_power_w)
            elif use.shared or use.whole_cap_w is None:
                shared += 1
                watts.append(shared_gpu_power_w(gpu))
            else:
                watts.append(use.whole_cap_w)
        draws[node.name] = NodeDraw(
            on=on,
            host_w=node.host_power_w if on else 0,
            gpu_w_by_index=tuple(watts),
            used_milli_by_index=tuple(milli),
            workloads_by_index=tuple(names),
            shared_gpus=shared,
        )
    return draws


def _power_budget(
    *,
    kind: str,
    name: str,
    site: str,
    redundancy: Redundancy,
    modules: int,
    capacity_kw: float,
    usable_w: int,
    it_w: int,
    pue: float,
) -> PowerBudget:
    feeds = feed_count(redundancy, modules)
    it_kw = it_w / 1000.0
    usable_kw = usable_w / 1000.0
    utilisation = math.inf if it_w > 0 else 0.0  # no usable power at all
    if usable_w > 0:
        utilisation = it_w / usable_w * 100.0
    feed_rating_kw = capacity_kw / feeds
    if redundancy is Redundancy.N:
        failure_kw = 0.0
        survives = it_w == 0
    else:
        if redundancy is Redundancy.TWO_N:
            failure_kw = it_kw
        elif modules > 1:
            failure_kw = it_kw / (modules - 1)
        else:
            failure_kw = 0.0 if it_w == 0 else math.inf
        survives = failure_kw <= feed_rating_kw * (1.0 + 1e-12) + 1e-12
    return PowerBudget(
        kind=kind,
        name=name,
        site=site,
        redundancy=redundancy,
        feeds=feeds,
        capacity_kw=capacity_kw,
        usable_kw=usable_kw,
        it_kw=it_kw,
        facility_kw=it_kw * pue,
        headroom_kw=(usable_w - it_w) / 1000.0,
        utilisation_pct=utilisation,
        feed_rating_kw=feed_rating_kw,
        feed_load_kw=it_kw / feeds,
        failure_feed_load_kw=failure_kw,
        survives_failure=survives,
    )


def compute_budgets(problem: Problem, placements: Iterable[ReplicaPlacement]) -> PowerBudgets:
    """Budgets per GPU, node, power domain and site, and the facility energy cost and carbon per hour.

    Every GPU, node, power domain and site of the fleet appears, sorted by name (GPUs by
    node name, then index).
    """
    fleet = problem.fleet
    draws = node_draws(fleet, placements)
    nodes = sorted(fleet.nodes, key=lambda n: n.name)

    gpu_budgets: list[GpuBudget] = []
    node_budgets: list[NodeBudget] = []
    domain_it_w: dict[str, int] = {}
    site_it_w: dict[str, int] = {}
    for node in nodes:
        d = draws[node.name]
        for idx in range(node.gpu_count):
            gpu_budgets.append(
                GpuBudget(
                    node=node.name,
                    index=idx,
                    power_cap_w=d.gpu_w_by_index[idx],
                    used_milli=d.used_milli_by_index[idx],
                    workloads=d.workloads_by_index[idx],
                )
            )
        node_budgets.append(
            NodeBudget(
                node=node.name,
                site=node.site,
                power_domain=node.power_domain,
                on=d.on,
                host_w=d.host_w,
                gpu_w=d.gpu_w,
            )
        )
        it_w = d.it_w
        domain_it_w[node.power_domain] = domain_it_w.get(node.power_domain, 0) + it_w
        site_it_w[node.site] = site_it_w.get(node.site, 0) + it_w

    pue_by_site = {s.name: s.pue for s in fleet.sites}
    domain_budgets = [
        _power_budget(
            kind="power_domain",
            name=pd.name,
            site=pd.site,
            redundancy=pd.redundancy,
            modules=pd.modules,
            capacity_kw=pd.capacity_kw,
            usable_w=pd.usable_power_w,
            it_w=domain_it_w.get(pd.name, 0),
            pue=pue_by_site.get(pd.site, 1.0),
        )
        for pd in sorted(fleet.power_domains, key=lambda x: x.name)
    ]
    site_budgets: list[PowerBudget] = []
    cost_per_h = 0.0
    carbon_kg_per_h = 0.0
    for site in sorted(fleet.sites, key=lambda x: x.name):
        b = _power_budget(
            kind="site",
            name=site.name,
            site=site.name,
            redundancy=site.redundancy,
            modules=site.modules,
            capacity_kw=site.capacity_kw,
            usable_w=site.usable_power_w,
            it_w=site_it_w.get(site.name, 0),
            pue=site.pue,
        )
        site_budgets.append(b)
        cost_per_h += b.facility_kw * site.energy_price_per_kwh
        carbon_kg_per_h += b.facility_kw * site.carbon_g_per_kwh / 1000.0

    return PowerBudgets(
        gpus=tuple(gpu_budgets),
        nodes=tuple(node_budgets),
        power_domains=tuple(domain_budgets),
        sites=tuple(site_budgets),
        energy_cost_per_h=cost_per_h,
        carbon_kg_per_h=carbon_kg_per_h,
    )
