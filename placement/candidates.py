"""The candidate filter: which (workload, node, power level) triples may host a replica.

Plain Python, before any solver (Kubernetes' "filter before you score"). For every
workload and every node the rules below are checked in this order; the first one that
fails rejects the node and is kept as data (rule, numbers, message), so that "why was
this not placed" is answered from data, not from a log line:

    node_state, latency, backup, gpu_type, gpu_memory, gpu_count, host_resources,
    power_cap, domain_power, site_power

(the names of the verifier's rule catalogue, ``placement.verify.RULES``)

Latency and backup come before the GPU rules so that a GPU rejection can say "the
largest GPU within 25 ms of eu-west has 80 GiB". The two power rules check that one
replica alone fits: node on-power plus one replica at a given power level must fit the
node's power-domain and site usable caps; each level is kept only if it passes.

After the node rules come three workload-level checks that the model would otherwise
only discover by setting z[w] = 0 (rules ``replicas``, ``spread``, ``site_survival``): too
few replicas fit on the candidates even on an empty fleet, too few distinct spread
entities, or every candidate in one site while site-loss survival is asked for.

The result, ``Prepared``, is everything the model builder needs, already cleaned and
indexed; it also sizes the model.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from placement.domain import (
    GpuType,
    Node,
    NodeState,
    PowerDomain,
    Problem,
    Site,
    SpreadLevel,
    Workload,
)
from placement.energy import allowed_levels, node_on_power_w, shared_gpu_power_w

log = logging.getLogger(__name__)

# GPU memory is compared in whole MiB inside the model (integers only); demand is rounded
# up and capacity down, so the model is never more permissive than the rule.
MIB_PER_GIB = 1024

RULES = (
    "node_state",
    "latency",
    "backup",
    "gpu_type",
    "gpu_memory",
    "gpu_count",
    "host_resources",
    "power_cap",
    "domain_power",
    "site_power",
)
WORKLOAD_RULES = ("replicas", "spread", "site_survival")

DomainKey = tuple[str, str]  # (site, power domain name)


def demand_mib(gib: float) -> int:
    return math.ceil(gib * MIB_PER_GIB - 1e-6)


def capacity_mib(gib: float) -> int:
    return math.floor(gib * MIB_PER_GIB + 1e-6)


@dataclass(frozen=True)
class Rejection:
    """One node ruled out for one workload: the first rule that failed, with its numbers."""

    workload: int
    node: int
    rule: str
    requested: float
    available: float
    unit: str
    message: str


@dataclass(frozen=True)
class WorkloadRejection:
    """A workload that cannot be placed although some nodes pass every node rule."""

    workload: int
    rule: str  # "replicas", "spread" or "site_survival"
    message: str


@dataclass(frozen=True)
class NodeInfo:
    """A node with everything the model needs about it, resolved once."""

    index: int
    node: Node
    gpu: GpuType
    site: Site
    domain: PowerDomain
    domain_key: DomainKey
    on_power_w: int  # host + idle GPUs (rule 7)
    shared_gpu_delta_w: int  # extra draw of one shared GPU in use (uncapped minus idle)


@dataclass(frozen=True)
class Candidate:
    """Workload ``workload`` may run replicas on node ``node``.

    Whole-GPU: ``levels`` are the allowed power-level indices (ascending) and
    ``level_max[i]`` the most replicas at ``levels[i]`` that fit the node alone.
    Fractional: ``levels`` is empty, ``per_gpu`` replicas fit one shared GPU, and
    ``max_count`` bounds the replicas on the whole node.
    """

    workload: int
    node: int
    levels: tuple[int, ...]
    level_max: tuple[int, ...]
    per_gpu: int
    max_count: int


@dataclass(frozen=True)
class Prepared:
    """The filtered, indexed instance: the only input of the model builder."""

    problem: Problem
    nodes: tuple[NodeInfo, ...]
    sites: Mapping[str, Site]
    domains: Mapping[DomainKey, PowerDomain]
    candidates: tuple[Candidate, ...]
    by_workload: Mapping[int, tuple[Candidate, ...]]  # placeable workloads only
    rejections: tuple[Rejection, ...]
    workload_rejections: tuple[WorkloadRejection, ...]
    latency_ms: Mapping[tuple[str, str], float]
    current: Mapping[tuple[int, int], int]  # (workload, node) -> current replicas there
    node_index: Mapping[str, int]

    @property
    def workloads(self) -> tuple[Workload, ...]:
        return self.problem.workloads

    def rejections_of(self, workload: int) -> list[Rejection]:
        return [r for r in self.rejections if r.workload == workload]

    def size(self) -> dict[str, int]:
        return {
            "workloads": len(self.problem.workloads),
            "placeable_workloads": len(self.by_workload),
            "nodes": len(self.nodes),
            "candidates": len(self.candidates),
            "rejections": len(self.rejections),
        }


def spread_entity(info: NodeInfo, level: SpreadLevel) -> str:
    if level is SpreadLevel.SITE:
        return info.site.name
    if level is SpreadLevel.POWER_DOMAIN:
        return f"{info.site.name}/{info.domain.name}"
    return info.node.name


def _latency(problem: Problem) -> dict[tuple[str, str], float]:
    if not any(w.max_latency_ms > 0 for w in problem.workloads):
        return {}
    from placement.network import latency_table  # written by another module owner

    return dict(latency_table(problem.fleet))


def node_infos(problem: Problem) -> tuple[NodeInfo, ...]:
    fleet = problem.fleet
    gpus = {g.name: g for g in fleet.gpu_types}
    sites = {s.name: s for s in fleet.sites}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    out = []
    for i, n in enumerate(fleet.nodes):
        gpu = gpus[n.gpu_type]
        out.append(
            NodeInfo(
                index=i,
                node=n,
                gpu=gpu,
                site=sites[n.site],
                domain=domains[(n.site, n.power_domain)],
                domain_key=(n.site, n.power_domain),
                on_power_w=node_on_power_w(n.host_power_w, n.gpu_count, gpu),
                shared_gpu_delta_w=shared_gpu_power_w(gpu) - gpu.idle_power_w,
            )
        )
    return tuple(out)


def _host_bound(w: Workload, n: Node) -> int:
    """Replicas of ``w`` that the host resources of ``n`` allow (a large number when untracked)."""
    bound = 1 << 30
    if n.cpu_milli > 0 and w.cpu_milli > 0:
        bound = min(bound, n.cpu_milli // w.cpu_milli)
    if n.host_memory_mib > 0 and w.host_memory_mib > 0:
        bound = min(bound, n.host_memory_mib // w.host_memory_mib)
    return bound


def _check(
    wi: int,
    w: Workload,
    info: NodeInfo,
    latency_ms: Mapping[tuple[str, str], float],
) -> Rejection | Candidate:
    n, gpu, site, dom = info.node, info.gpu, info.site, info.domain

    def reject(rule: str, req: float, avail: float, unit: str, msg: str) -> Rejection:
        return Rejection(wi, info.index, rule, req, avail, unit, msg)

    # rule 1
    if n.state is not NodeState.READY:
        return reject("node_state", 0, 0, "", f"node is {n.state.value}")
    # rule 8
    if w.max_latency_ms > 0:
        lat = latency_ms.get((w.user_region, site.name), math.inf)
        if not lat <= w.max_latency_ms + 1e-9:
            return reject(
                "latency",
                w.max_latency_ms,
                lat,
                "ms",
                f"site {site.name} is {lat:.1f} ms from {w.user_region}, limit {w.max_latency_ms:g} ms",
            )
    # rule 9
    if site.backup_minutes < w.backup_minutes:
        return reject(
            "backup",
            w.backup_minutes,
            site.backup_minutes,
            "min",
            f"site {site.name} has {site.backup_minutes:g} min of backup, needs {w.backup_minutes:g} min",
        )
    # rule 2
    if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
        return reject(
            "gpu_type", 0, 0, "", f"GPU type {gpu.name} not in allowed {', '.join(w.allowed_gpu_types)}"
        )
    if w.is_fractional and not gpu.shareable:
        return reject("gpu_type", 0, 0, "", f"GPU type {gpu.name} is not shareable (fractional replica)")
    # rule 3
    if w.memory_per_gpu_gib > gpu.memory_gib + 1e-9:
        return reject(
            "gpu_memory",
            w.memory_per_gpu_gib,
            gpu.memory_gib,
            "GiB",
            f"needs {w.memory_per_gpu_gib:g} GiB per GPU, {gpu.name} has {gpu.memory_gib:g} GiB",
        )
    # rule 4
    if w.gpus > n.gpu_count:
        return reject(
            "gpu_count", w.gpus, n.gpu_count, "GPUs", f"needs {w.gpus} GPUs, node has {n.gpu_count}"
        )
    # rule 5
    if n.cpu_milli > 0 and w.cpu_milli > n.cpu_milli:
        return reject(
            "host_resources",
            w.cpu_milli,
            n.cpu_milli,
            "mCPU",
            f"needs {w.cpu_milli} mCPU, node has {n.cpu_milli}",
        )
    if n.host_memory_mib > 0 and w.host_memory_mib > n.host_memory_mib:
        return reject(
            "host_resources",
            w.host_memory_mib,
            n.host_memory_mib,
            "MiB",
            f"needs {w.host_memory_mib} MiB host memory, node has {n.host_memory_mib}",
        )
    host = min(_host_bound(w, n), w.max_replicas)
    cap_w = min(dom.usable_power_w, site.usable_power_w)
    if w.is_fractional:
        # rule 6: a shared GPU runs uncapped, which always meets the floor (pct <= 100)
        need = info.on_power_w + info.shared_gpu_delta_w
        rej = _power_reject(wi, info, need)
        if rej is not None:
            return rej
        per_gpu = 1000 // w.gpu_milli
        if w.memory_gib > 0:
            per_gpu = min(per_gpu, capacity_mib(gpu.memory_gib) // max(1, demand_mib(w.memory_gib)))
        spare = cap_w - info.on_power_w
        powered_gpus = n.gpu_count
        if info.shared_gpu_delta_w > 0:
            powered_gpus = min(powered_gpus, spare // info.shared_gpu_delta_w)
        max_count = min(host, per_gpu * powered_gpus)
        return Candidate(wi, info.index, (), (), per_gpu, max_count)
    # rule 6
    levels = allowed_levels(w, gpu)
    if not levels:
        floor_w = w.min_power_cap_pct * gpu.max_power_w / 100.0
        return reject(
            "power_cap",
            floor_w,
            gpu.power_levels[-1].power_cap_w if gpu.power_levels else 0,
            "W",
            f"needs a cap of at least {floor_w:.0f} W, {gpu.name} levels reach "
            f"{max((lv.power_cap_w for lv in gpu.power_levels), default=0)} W",
        )
    kept: list[int] = []
    kept_max: list[int] = []
    for li in levels:
        delta = w.gpus * (gpu.power_levels[li].power_cap_w - gpu.idle_power_w)
        if info.on_power_w + delta > cap_w:
            continue
        count = min(host, n.gpu_count // w.gpus)
        if delta > 0:
            count = min(count, (cap_w - info.on_power_w) // delta)
        kept.append(li)
        kept_max.append(count)
    if not kept:
        lowest = gpu.power_levels[levels[0]].power_cap_w
        need = info.on_power_w + w.gpus * (lowest - gpu.idle_power_w)
        # no level fits min(domain, site) usable, so one of the two rules fails
        return _power_reject(wi, info, need) or reject("site_power", need, cap_w, "W", "no level fits")
    return Candidate(wi, info.index, tuple(kept), tuple(kept_max), 0, max(kept_max))


def _power_reject(wi: int, info: NodeInfo, need_w: int) -> Rejection | None:
    dom, site = info.domain, info.site
    if need_w > dom.usable_power_w:
        return Rejection(
            wi,
            info.index,
            "domain_power",
            need_w,
            dom.usable_power_w,
            "W",
            f"a node with one replica draws {need_w / 1000:.1f} kW, power domain "
            f"{site.name}/{dom.name} allows {dom.usable_power_w / 1000:.1f} kW",
        )
    if need_w > site.usable_power_w:
        return Rejection(
            wi,
            info.index,
            "site_power",
            need_w,
            site.usable_power_w,
            "W",
            f"a node with one replica draws {need_w / 1000:.1f} kW, site "
            f"{site.name} allows {site.usable_power_w / 1000:.1f} kW",
        )
    return None


def _workload_check(
    wi: int, w: Workload, cands: Sequence[Candidate], nodes: Sequence[NodeInfo]
) -> WorkloadRejection | None:
    room = sum(c.max_count for c in cands)
    if room < w.min_replicas:
        return WorkloadRejection(
            wi,
            "replicas",
            f"needs {w.min_replicas} replicas, the {len(cands)} candidate nodes fit at most {room} "
            "even on an empty fleet",
        )
    if w.spread is not None:
        ents = {spread_entity(nodes[c.node], w.spread.level) for c in cands}
        if len(ents) < w.spread.min_distinct:
            lvl = w.spread.level.value.lower().replace("_", " ")
            return WorkloadRejection(
                wi,
                "spread",
                f"needs {w.spread.min_distinct} distinct {lvl}s, only {len(ents)} have a candidate node",
            )
    need = w.survivors_required
    if need > 0:
        per_site: dict[str, int] = defaultdict(int)
        for c in cands:
            per_site[nodes[c.node].site.name] += c.max_count
        total = sum(per_site.values())
        worst = max(per_site.values())
        if total - worst < need:
            return WorkloadRejection(
                wi,
                "site_survival",
                f"needs {need} replicas left after losing any site, candidates outside the largest "
                f"site fit only {total - worst} (sites with candidates: {', '.join(sorted(per_site))})",
            )
    return None


def filter_candidates(
    problem: Problem, workloads: Sequence[int] | None = None, site: str | None = None
) -> Prepared:
    """Run the filter on the (validated) problem; optionally on some workloads or one site only."""
    nodes = node_infos(problem)
    latency_ms = _latency(problem)
    wanted = range(len(problem.workloads)) if workloads is None else workloads
    cands: list[Candidate] = []
    rejs: list[Rejection] = []
    wrejs: list[WorkloadRejection] = []
    by_w: dict[int, tuple[Candidate, ...]] = {}
    for wi in wanted:
        w = problem.workloads[wi]
        mine: list[Candidate] = []
        seen: dict[tuple[object, ...], Rejection | Candidate] = {}
        for info in nodes:
            if site is not None and info.site.name != site:
                continue
            # nodes alike in every field the rules read get the same answer: check one of them
            n = info.node
            sig = (
                n.state,
                n.site,
                n.power_domain,
                n.gpu_type,
                n.gpu_count,
                n.host_power_w,
                n.cpu_milli,
                n.host_memory_mib,
            )
            res = seen.get(sig)
            if res is None:
                res = seen[sig] = _check(wi, w, info, latency_ms)
            if isinstance(res, Rejection):
                rejs.append(res if res.node == info.index else replace(res, node=info.index))
            else:
                mine.append(res if res.node == info.index else replace(res, node=info.index))
        if not mine:
            continue
        wrej = _workload_check(wi, w, mine, nodes)
        if wrej is not None:
            wrejs.append(wrej)
            continue
        by_w[wi] = tuple(mine)
        cands.extend(mine)
    node_index = {info.node.name: info.index for info in nodes}
    current: dict[tuple[int, int], int] = defaultdict(int)
    for wi, w in enumerate(problem.workloads):
        for cr in w.current:
            ni = node_index.get(cr.node)
            if ni is not None:
                current[(wi, ni)] += 1
    prepared = Prepared(
        problem=problem,
        nodes=nodes,
        sites={s.name: s for s in problem.fleet.sites},
        domains={(d.site, d.name): d for d in problem.fleet.power_domains},
        candidates=tuple(cands),
        by_workload=by_w,
        rejections=tuple(rejs),
        workload_rejections=tuple(wrejs),
        latency_ms=latency_ms,
        current=dict(current),
        node_index=node_index,
    )
    log.debug("candidate filter: %s", prepared.size())
    return prepared
