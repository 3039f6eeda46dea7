"""The candidate filter: which (workload, node, power level) triples may host a replica.

Plain Python, before any solver (Kubernetes' "filter before you score"). For every
workload and every node the rules below are checked in this order; the first one that
fails rejects the node and is kept as data (rule, numbers, message), so that "why was
this not placed" is answered from data, not from a log line:

    node_state, latency, backup, gpu_type, gpu_memory, gpu_count, host_resources,
    power_cap, domain_power, site_power

(the names of the verifier's rule catalogue, ``placement.core.verify.RULES``)

Latency and backup come before the GPU rules so that a GPU rejection can say "the
largest GPU within 25 ms of eu-west has 80 GiB". The two power rules check that one
replica alone fits: node on-power plus one replica at a given power level must fit the
node's power-domain and site usable caps; each level is kept only if it passes.

After the node rules come four workload-level checks that the model would otherwise
only discover by setting z[w] = 0 (rules ``replicas``, ``blast_radius``, ``spread``,
``site_survival``): too few replicas fit on the candidates even on an empty fleet, or fit
only without the workload's blast-radius caps (``max_per_node`` replicas on a node,
``max_per_power_domain`` in a power domain: rule 16), too few distinct spread entities, or
every candidate in one site while site-loss survival is asked for. The most replicas of a
workload a node holds (``Candidate.max_count``, ``level_max``, the model's bounds) respect
its caps.

The result, ``Prepared``, is everything the model builder needs, already cleaned and
indexed; it also sizes the model.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from placement.core.domain import (
    GpuType,
    Node,
    NodeState,
    PowerDomain,
    Problem,
    Site,
    SpreadLevel,
    Workload,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels, node_on_power_w, shared_gpu_power_w

log = logging.getLogger(__name__)


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
WORKLOAD_RULES = ("replicas", "blast_radius", "spread", "site_survival")

DomainKey = tuple[str, str]  # (site, power domain name)


def memory_fits_gpu(w: Workload, gpu: GpuType) -> bool:
    """Rule 3 for one replica alone: its memory per GPU, in whole milli-GiB, within the GPU's."""
    return memory_milli_gib(w.memory_per_gpu_gib) <= memory_milli_gib(gpu.memory_gib)


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
    rule: str  # one of WORKLOAD_RULES
    message: str
    # the numbers, where the rule has them: replicas needed, replicas that fit
    requested: float = 0.0
    available: float = 0.0
    unit: str = ""


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
    """The filtered, indexed instance: the only input of the model builder.

    The filter works on groups of alike nodes (``groups``) inside (site, GPU type)
    cells; ``options[w]`` lists the cells and groups where workload ``w`` may run
    (placeable workloads only). Per-node candidates (``by_workload``, ``candidates``)
    and per-node rejections (``rejections_of``) are expanded from them on demand, so
    that a 40,000-GPU fleet never materialises one object per (workload, node).
    """

    problem: Problem
    nodes: tuple[NodeInfo, ...]
    sites: Mapping[str, Site]
    domains: Mapping[DomainKey, PowerDomain]
    groups: tuple[NodeGroup, ...]
    cells: tuple[tuple[str, str], ...]  # (site, GPU type)
    options: Mapping[int, tuple[CellOption, ...]]  # placeable workloads only
    workload_rejections: tuple[WorkloadRejection, ...]
    latency_ms: Mapping[tuple[str, str], float]
    current: Mapping[tuple[int, int], int]  # (workload, node) -> current replicas there
    node_index: Mapping[str, int]
    wanted: tuple[int, ...] = ()  # workloads the filter looked at
    pinned: tuple[int, ...] = ()  # pinned workloads: placed as they run, no candidates
    site_only: str | None = None
    candidate_nodes: Mapping[int, int] = field(default_factory=dict)  # w -> nodes passing every node rule
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def workloads(self) -> tuple[Workload, ...]:
        return self.problem.workloads

    @property
    def by_workload(self) -> Mapping[int, tuple[Candidate, ...]]:
        got = self._cache.get("by_workload")
        if got is None:
            got = self._cache["by_workload"] = _Candidates(self)
        return got  # type: ignore[return-value]

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(c for w in sorted(self.options) for c in self.by_workload[w])

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        return tuple(r for w in self.wanted for r in self.rejections_of(w))

    def max_count(self, w: int, opt: CellOption, fit: GroupFit, caps: bool = True) -> int:
        """Replicas of ``w`` that one node of ``fit``'s group holds alone (within its blast-radius
        caps unless ``caps`` is False)."""
        wk = self.problem.workloads[w]
        most = node_most(wk) if caps else wk.max_replicas
        if opt.per_gpu > 0:
            return min(fit.host, most, opt.per_gpu * fit.powered_gpus)
        return max(min(m, most) for m in fit.level_max)

    def expand(self, w: int) -> tuple[Candidate, ...]:
        """The per-node candidates of workload ``w`` (node order)."""
        wk = self.problem.workloads[w]
        most = node_most(wk)
        out: list[Candidate] = []
        for opt in self.options.get(w, ()):
            for fit in opt.fits:
                mc = self.max_count(w, opt, fit)
                lm = tuple(min(m, most) for m in fit.level_max)
                out.extend(
                    Candidate(w, n, fit.levels, lm, opt.per_gpu, mc) for n in self.groups[fit.group].nodes
                )
        out.sort(key=lambda c: c.node)
        return tuple(out)

    def rejections_of(self, workload: int) -> list[Rejection]:
        """Every node ruled out for ``workload``, with the first rule that failed (computed on demand)."""
        key = f"rej{workload}"
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = _node_rejections(self, workload)
        return list(got)  # type: ignore[call-overload]

    def size(self) -> dict[str, int]:
        considered = sum(
            1 for info in self.nodes if self.site_only is None or info.site.name == self.site_only
        )
        cand = sum(self.candidate_nodes.get(w, 0) for w in self.options)
        rej = sum(considered - self.candidate_nodes.get(w, 0) for w in self.wanted)
        return {
            "workloads": len(self.problem.workloads),
            "placeable_workloads": len(self.options),
            "nodes": len(self.nodes),
            "groups": len(self.groups),
            "candidates": cand,
            "rejections": rej,
        }


class _Candidates(Mapping[int, tuple[Candidate, ...]]):
    """Per-node candidates of the placeable workloads, expanded when first asked for."""

    def __init__(self, p: Prepared) -> None:
        self._p = p
        self._got: dict[int, tuple[Candidate, ...]] = {}

    def __getitem__(self, w: int) -> tuple[Candidate, ...]:
        got = self._got.get(w)
        if got is None:
            if w not in self._p.options:
                raise KeyError(w)
            got = self._got[w] = self._p.expand(w)
        return got

    def __contains__(self, w: object) -> bool:
        return w in self._p.options

    def __iter__(self) -> Iterator[int]:
        return iter(self._p.options)

    def __len__(self) -> int:
        return len(self._p.options)


def node_most(w: Workload) -> int:
    """The most replicas of ``w`` one node may hold by its counts alone: ``max_replicas``, and its
    blast-radius caps (rule 16; a node lies in one power domain, so that cap bounds it too)."""
    most = w.max_replicas
    if w.max_per_node:
        most = min(most, w.max_per_node)
    if w.max_per_power_domain:
        most = min(most, w.max_per_power_domain)
    return most


def site_admits(w: Workload, site: Site, latency_ms: Mapping[tuple[str, str], float]) -> bool:
    """Rules 8 and 9 for a whole site: its backup lasts long enough and it is within the latency limit.

    The one site-level check that the filter, the heuristics, FGD, the partition and the bound share.
    """
    if site.backup_minutes + 1e-9 < w.backup_minutes:
        return False
    if w.max_latency_ms <= 0:
        return True
    return latency_ms.get((w.user_region, site.name), math.inf) <= w.max_latency_ms + 1e-9


def spread_entity(info: NodeInfo, level: SpreadLevel) -> str:
    if level is SpreadLevel.SITE:
        return info.site.name
    if level is SpreadLevel.POWER_DOMAIN:
        return f"{info.site.name}/{info.domain.name}"
    return info.node.name


def _latency(problem: Problem) -> dict[tuple[str, str], float]:
    if not any(w.max_latency_ms > 0 for w in problem.workloads):
        return {}
    from placement.core.network import latency_table  # written by another module owner

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
    if not memory_fits_gpu(w, gpu):
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
            per_gpu = min(per_gpu, memory_milli_gib(gpu.memory_gib) // max(1, memory_milli_gib(w.memory_gib)))
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


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class NodeGroup:
    """Nodes alike in every field the node rules read: one check answers for all of them.

    Alike: state, site, power domain, GPU type, gpu_count, host power and host resources.
    ``rep`` is the first node; ``cap_w`` the smaller of the domain's and the site's usable power.
    """

    index: int
    nodes: tuple[int, ...]
    rep: NodeInfo
    cell: int
    cap_w: int


@dataclass(frozen=True)
class GroupFit:
    """One group that passes every node rule for some workload shape (per node, not clamped
    by max_replicas). Whole-GPU: ``levels`` and ``level_max``. Fractional: ``powered_gpus``
    shared GPUs the caps can power on one node alone, ``host`` the host-resource bound."""

    group: int
    levels: tuple[int, ...]
    level_max: tuple[int, ...]
    powered_gpus: int
    host: int


@dataclass(frozen=True)
class CellOption:
    """The groups of one (site, GPU type) cell where a workload may run."""

    cell: int
    per_gpu: int  # fractional: replicas of the workload on one shared GPU; 0 for whole-GPU
    fits: tuple[GroupFit, ...]


def node_groups(
    nodes: Sequence[NodeInfo], domains: Mapping[DomainKey, PowerDomain]
) -> tuple[tuple[NodeGroup, ...], tuple[tuple[str, str], ...], tuple[tuple[int, ...], ...]]:
    """Groups of alike nodes, the (site, GPU type) cells and the groups of each cell."""
    by_sig: dict[tuple[object, ...], list[int]] = {}
    for info in nodes:
        n = info.node
        sig = (
            n.site,
            n.gpu_type,
            n.power_domain,
            n.state,
            n.gpu_count,
            n.host_power_w,
            n.cpu_milli,
            n.host_memory_mib,
        )
        by_sig.setdefault(sig, []).append(info.index)
    cells: dict[tuple[str, str], int] = {}
    cell_groups: list[list[int]] = []
    groups: list[NodeGroup] = []
    for members in sorted(by_sig.values()):
        rep = nodes[members[0]]
        key = (rep.site.name, rep.gpu.name)
        ci = cells.get(key)
        if ci is None:
            ci = cells[key] = len(cell_groups)
            cell_groups.append([])
        cap_w = min(domains[rep.domain_key].usable_power_w, rep.site.usable_power_w)
        cell_groups[ci].append(len(groups))
        groups.append(NodeGroup(len(groups), tuple(members), rep, ci, cap_w))
    return tuple(groups), tuple(cells), tuple(tuple(g) for g in cell_groups)


def _group_fit(g: NodeGroup, gpus: int, levels: tuple[int, ...], cpu: int, hmem: int) -> GroupFit | None:
    """Node rules 1, 4, 5, 6, 7 (one replica alone) for one group; None when the group is ruled out."""
    info = g.rep
    n = info.node
    if n.state is not NodeState.READY or gpus > n.gpu_count:
        return None
    if (n.cpu_milli > 0 and cpu > n.cpu_milli) or (n.host_memory_mib > 0 and hmem > n.host_memory_mib):
        return None
    host = 1 << 30
    if n.cpu_milli > 0 and cpu > 0:
        host = n.cpu_milli // cpu
    if n.host_memory_mib > 0 and hmem > 0:
        host = min(host, n.host_memory_mib // hmem)
    spare = g.cap_w - info.on_power_w
    if gpus == 0:
        if info.on_power_w + info.shared_gpu_delta_w > g.cap_w:
            return None
        powered = n.gpu_count
        if info.shared_gpu_delta_w > 0:
            powered = min(powered, spare // info.shared_gpu_delta_w)
        return GroupFit(g.index, (), (), powered, host)
    kept: list[int] = []
    kept_max: list[int] = []
    for li in levels:
        delta = gpus * (info.gpu.power_levels[li].power_cap_w - info.gpu.idle_power_w)
        if info.on_power_w + delta > g.cap_w:
            continue
        count = min(host, n.gpu_count // gpus)
        if delta > 0:
            count = min(count, spare // delta)
        kept.append(li)
        kept_max.append(count)
    if not kept:
        return None
    return GroupFit(g.index, tuple(kept), tuple(kept_max), 0, host)


def _workload_check(
    p: Prepared,
    wi: int,
    w: Workload,
    opts: Sequence[CellOption],
    cache: dict[tuple[object, ...], tuple[int, int, frozenset[str]]],
    nodes_memo: dict[int, int],
) -> WorkloadRejection | None:
    room = 0
    ncand = 0
    per_site: dict[str, int] = defaultdict(int)
    per_domain: dict[DomainKey, int] = defaultdict(int)  # capped workloads: room per power domain
    ents: set[str] = set()
    nodes_distinct = 0
    level = w.spread.level if w.spread is not None else None
    most = node_most(w)
    for opt in opts:
        # one cell is one site: its nodes and domains once per fits tuple, its room once per
        # (fits, per_gpu, max_replicas capped at the most one node holds)
        shape = cache.get((id(opt.fits), opt.per_gpu))
        if shape is None:
            if opt.per_gpu:
                top = max(min(fit.host, opt.per_gpu * fit.powered_gpus) for fit in opt.fits)
            else:
                top = max(max(fit.level_max) for fit in opt.fits)
            doms = frozenset(spread_entity(p.groups[f.group].rep, SpreadLevel.POWER_DOMAIN) for f in opt.fits)
            shape = cache[(id(opt.fits), opt.per_gpu)] = (
                top,
                _fit_nodes(opt.fits, p.groups, nodes_memo),
                doms,
            )
        top, k, doms = shape
        key = (id(opt.fits), opt.per_gpu, min(top, most))
        got = cache.get(key)
        if got is None:
            r = sum(len(p.groups[f.group].nodes) * p.max_count(wi, opt, f) for f in opt.fits)
            got = cache[key] = (r, k, doms)
        r, k, doms = got
        site_name = p.cells[opt.cell][0]
        room += r
        ncand += k
        per_site[site_name] += r
        if level is SpreadLevel.SITE:
            ents.add(site_name)
        elif level is SpreadLevel.POWER_DOMAIN:
            ents |= doms
        elif level is SpreadLevel.NODE:
            nodes_distinct += k
        if w.max_per_power_domain:
            for f in opt.fits:
                g = p.groups[f.group]
                per_domain[g.rep.domain_key] += len(g.nodes) * p.max_count(wi, opt, f)
    if w.max_per_power_domain:  # rule 16: a power domain holds at most max_per_power_domain
        per_site = defaultdict(int)
        for (site_name, _d), r_d in per_domain.items():
            per_site[site_name] += min(r_d, w.max_per_power_domain)
        room = sum(per_site.values())
    if room < w.min_replicas:
        free = room
        if w.capped:  # the room without the caps: is it they that keep the workload out?
            free = sum(
                len(p.groups[f.group].nodes) * p.max_count(wi, o, f, False) for o in opts for f in o.fits
            )
        if free < w.min_replicas:
            return WorkloadRejection(
                wi,
                "replicas",
                f"needs {w.min_replicas} replicas, the {ncand} candidate nodes fit at most {free} "
                "even on an empty fleet",
                w.min_replicas,
                free,
                "replicas",
            )
        caps = " and ".join(
            text
            for text in (
                f"{w.max_per_node} per node (maxPerNode)" if w.max_per_node else "",
                f"{w.max_per_power_domain} per power domain (maxPerPowerDomain)"
                if w.max_per_power_domain
                else "",
            )
            if text
        )
        return WorkloadRejection(
            wi,
            "blast_radius",
            f"needs {w.min_replicas} replicas, at most {caps}: the {ncand} candidate nodes in "
            f"{len(per_domain) or _domains_of(p, opts)} power domains fit {room} even on an empty fleet "
            f"({free} without the caps)",
            w.min_replicas,
            room,
            "replicas",
        )
    distinct = nodes_distinct if level is SpreadLevel.NODE else len(ents)
    if w.spread is not None and distinct < w.spread.min_distinct:
        lvl = w.spread.level.value.lower().replace("_", " ")
        return WorkloadRejection(
            wi,
            "spread",
            f"needs {w.spread.min_distinct} distinct {lvl}s, only {distinct} have a candidate node",
        )
    need = w.survivors_required
    if need > 0:
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


def _domains_of(p: Prepared, opts: Sequence[CellOption]) -> int:
    """How many power domains hold a candidate node of ``opts``."""
    return len({p.groups[f.group].rep.domain_key for o in opts for f in o.fits})


def _node_rejections(p: Prepared, wi: int) -> tuple[Rejection, ...]:
    """Rule by rule, node by node (alike nodes checked once): the rejections of one workload."""
    w = p.problem.workloads[wi]
    out: list[Rejection] = []
    for g in p.groups:
        if p.site_only is not None and g.rep.site.name != p.site_only:
            continue
        res = _check(wi, w, g.rep, p.latency_ms)
        if isinstance(res, Rejection):
            out.extend(replace(res, node=n) for n in g.nodes)
    out.sort(key=lambda r: r.node)
    return tuple(out)


def filter_candidates(
    problem: Problem, workloads: Sequence[int] | None = None, site: str | None = None
) -> Prepared:
    """Run the filter on the (validated) problem; optionally on some workloads or one site only.

    Rules that depend only on the site and the GPU type (latency, backup, type, memory,
    cap floor) are checked once per (workload, site, type) through small caches; the rules
    that read the node (state, GPU count, host resources, power) once per (workload
    shape, group of alike nodes). The cost grows with workloads x cells, not x nodes.
    """
    fleet = problem.fleet
    nodes = node_infos(problem)
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    groups, cells, cell_groups = node_groups(nodes, domains)
    latency_ms = _latency(problem)
    wanted = tuple(range(len(problem.workloads)) if workloads is None else workloads)
    gpus_by_name = {g.name: g for g in fleet.gpu_types}
    cells_of_type: dict[str, list[int]] = defaultdict(list)
    for ci, (s, t) in enumerate(cells):
        if site is None or s == site:
            cells_of_type[t].append(ci)
    site_cache: dict[tuple[str, float, float], frozenset[str]] = {}
    type_cache: dict[tuple[object, ...], tuple[tuple[str, tuple[int, ...]], ...]] = {}
    fit_cache: dict[tuple[object, ...], tuple[GroupFit, ...]] = {}
    options: dict[int, tuple[CellOption, ...]] = {}
    cand_nodes: dict[int, int] = {}
    node_memo: dict[int, int] = {}
    wrejs: list[WorkloadRejection] = []
    for wi in wanted:
        w = problem.workloads[wi]
        if w.pinned:
            continue  # placed as it runs (placement.core.pinned): no candidates
        skey = (w.user_region, w.max_latency_ms, w.backup_minutes)
        sites_ok = site_cache.get(skey)
        if sites_ok is None:
            sites_ok = site_cache[skey] = frozenset(
                s.name for s in fleet.sites if site_admits(w, s, latency_ms)
            )
        tkey = (w.allowed_gpu_types, w.is_fractional, w.memory_per_gpu_gib, w.min_power_cap_pct)
        types_ok = type_cache.get(tkey)
        if types_ok is None:
            types_ok = type_cache[tkey] = gpu_types_for(w, fleet.gpu_types)
        opts: list[CellOption] = []
        for tname, levels in types_ok:
            gpu = gpus_by_name[tname]
            per_gpu = 0
            if w.is_fractional:
                per_gpu = 1000 // w.gpu_milli
                if w.memory_gib > 0:
                    per_gpu = min(
                        per_gpu, memory_milli_gib(gpu.memory_gib) // max(1, memory_milli_gib(w.memory_gib))
                    )
            for ci in cells_of_type.get(tname, ()):
                if cells[ci][0] not in sites_ok:
                    continue
                fkey = (ci, w.gpus, levels, w.cpu_milli, w.host_memory_mib)
                fits = fit_cache.get(fkey)
                if fits is None:
                    found = (
                        _group_fit(groups[g], w.gpus, levels, w.cpu_milli, w.host_memory_mib)
                        for g in cell_groups[ci]
                    )
                    fits = fit_cache[fkey] = tuple(f for f in found if f is not None)
                if fits:
                    opts.append(CellOption(ci, per_gpu, fits))
        if not opts:
            continue
        opts.sort(key=lambda o: o.cell)
        cand_nodes[wi] = sum(_fit_nodes(o.fits, groups, node_memo) for o in opts)
        options[wi] = tuple(opts)
    node_index = {info.node.name: info.index for info in nodes}
    current: dict[tuple[int, int], int] = defaultdict(int)
    for wi, w in enumerate(problem.workloads):
        for cr in w.current:
            ni = node_index.get(cr.node)
            if ni is not None:
                current[(wi, ni)] += 1
    prepared_stub = Prepared(
        problem=problem,
        nodes=nodes,
        sites={s.name: s for s in fleet.sites},
        domains=domains,
        groups=groups,
        cells=cells,
        options=options,
        workload_rejections=(),
        latency_ms=latency_ms,
        current=dict(current),
        node_index=node_index,
        wanted=wanted,
        pinned=tuple(wi for wi, w in enumerate(problem.workloads) if w.pinned and w.current),
        site_only=site,
        candidate_nodes=cand_nodes,
    )
    check_cache: dict[tuple[object, ...], tuple[int, int, frozenset[str]]] = {}
    for wi in sorted(options):
        wrej = _workload_check(prepared_stub, wi, problem.workloads[wi], options[wi], check_cache, node_memo)
        if wrej is not None:
            wrejs.append(wrej)
    dropped = {r.workload for r in wrejs}
    prepared = replace(
        prepared_stub,
        options={w: o for w, o in options.items() if w not in dropped},
        workload_rejections=tuple(wrejs),
        _cache={},
    )
    log.debug("candidate filter: %s", prepared.size())
    return prepared


def _fit_nodes(fits: tuple[GroupFit, ...], groups: Sequence[NodeGroup], memo: dict[int, int]) -> int:
    """Nodes in ``fits``, memoised by tuple identity (the tuples outlive the memo: both live in one filter run)."""
    got = memo.get(id(fits))
    if got is None:
        got = memo[id(fits)] = sum(len(groups[f.group].nodes) for f in fits)
    return got


def gpu_types_for(w: Workload, gpu_types: Sequence[GpuType]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """GPU types (rules 2, 3, 6) where ``w`` may run, with its allowed power levels (whole GPU)."""
    out = []
    for gpu in gpu_types:
        if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
            continue
        if w.is_fractional and not gpu.shareable:
            continue
        if not memory_fits_gpu(w, gpu):
            continue
        levels: tuple[int, ...] = ()
        if not w.is_fractional:
            levels = tuple(allowed_levels(w, gpu))
            if not levels:
                continue
        out.append((gpu.name, levels))
    return tuple(out)
