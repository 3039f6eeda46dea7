"""Fast placement heuristics, the baselines the engine must beat (and may warm-start from).

Three node-selection policies share one placement loop:

* ``first_fit_decreasing``: the first node (site order, then rack order) that fits;
* ``best_fit``: the Kubernetes default style (``NodeResourcesFit`` with the
  ``MostAllocated`` strategy): the node whose GPUs are the most allocated after placing;
* ``fgd``: fragmentation gradient descent in the style of Weng et al., "Beware of
  Fragmentation" (USENIX ATC'23): the node (and GPU) where the expected fragmentation of
  the fleet grows least. A node's fragmentation for a task class is the GPU capacity it
  has left that the class cannot use (partly used GPUs for whole-GPU tasks, all of the
  free GPUs when fewer than the class needs are free; for a fractional task, shared GPUs
  with less free than it asks); the expectation weighs the classes by their share of the
  requested replicas that may run on the node's GPU type.

Shared loop (every hard rule of docs/ARCHITECTURE.md is checked before a replica is
placed, so every result passes ``placement.verify``):

1. Pinned workloads first, exactly on their current GPUs, uncapped.
2. The other workloads in decreasing order of ``priority * work_milli`` per replica
   (then total requested work, then name), all or nothing: replicas are added one at a
   time up to ``max_replicas``; a workload that ends with fewer than ``min_replicas``,
   too few distinct spread entities or a site whose loss leaves too few survivors is
   rolled back (its nodes, racks and sites restored).
3. For each replica: the (site, GPU type) groups the workload may use (latency,
   backup, allowed types, GPU memory, GPU count, a power level not below its floor) are
   resolved once per workload; inside a group, nodes are indexed by their *signature*
   (GPU count, free whole GPUs, and the free milli and memory of each partly used GPU),
   so a group is scored once per distinct signature, not once per node. The chosen
   signature is then resolved to a rack whose headroom (and the site's) takes the
   replica at the highest allowed power level that fits, and to a node of that rack.
   While a spread rule still lacks distinct entities, used ones are skipped; with a
   site-survival rule, sites holding fewer of the workload's replicas come first.

GPU memory is compared in whole milli-GiB (``domain.memory_milli_gib``, as the model and
the verifier do), so a heuristic plan is also a valid warm start of the model.

``plan_from(problem, placements, method)`` turns placements into a verified ``Plan``, assembled
as the engine assembles its own (``placement.assemble``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from placement.assemble import plan_of
from placement.budgets import FULL_GPU_MILLI
from placement.candidates import site_admits
from placement.domain import (
    GpuType,
    Node,
    NodeState,
    Plan,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    SpreadLevel,
    Workload,
    memory_milli_gib,
)
from placement.energy import allowed_levels
from placement.errors import PlanRejected
from placement.network import latency_table

log = logging.getLogger(__name__)

_EPS = 1e-9

# (GPU count, free whole GPUs, sorted (free milli, free milli-GiB) of each partly used GPU)
Sig = tuple[int, int, tuple[tuple[int, int], ...]]
GroupKey = tuple[str, str]  # (site, GPU type)


class _Node:
    """Mutable state of one node while a heuristic runs."""

    __slots__ = (
        "count",
        "cpu_cap",
        "cpu_used",
        "domain",
        "extra_w",
        "free",
        "gkey",
        "gmem_cap",
        "gpu",
        "host_w",
        "i",
        "mem_cap",
        "mem_used",
        "name",
        "on_w",
        "shared",
        "sig",
        "site",
    )

    def __init__(self, i: int, node: Node, gpu: GpuType) -> None:
        self.i = i
        self.name = node.name
        self.site = node.site
        self.domain = node.power_domain
        self.gpu = gpu
        self.count = node.gpu_count
        self.host_w = node.host_power_w
        self.on_w = node.host_power_w + node.gpu_count * gpu.idle_power_w
        self.gmem_cap = memory_milli_gib(gpu.memory_gib)
        self.free: list[int] = list(range(node.gpu_count))
        self.shared: dict[int, list[int]] = {}  # GPU index -> [milli used, milli-GiB used]
        self.extra_w = 0  # sum over whole-GPU replicas of gpus * (cap - idle)
        self.cpu_cap = node.cpu_milli
        self.mem_cap = node.host_memory_mib
        self.cpu_used = 0
        self.mem_used = 0
        self.gkey: GroupKey = (node.site, node.gpu_type)
        self.sig: Sig | None = None

    def draw_w(self) -> int:
        if len(self.free) == self.count:
            return 0
        return self.on_w + self.extra_w + len(self.shared) * (self.gpu.max_power_w - self.gpu.idle_power_w)

    def signature(self) -> Sig:
        partial = tuple(
            sorted((FULL_GPU_MILLI - u[0], self.gmem_cap - u[1]) for u in self.shared.values() if u[0] < 1000)
        )
        return (self.count, len(self.free), partial)

    def host_fits(self, w: Workload) -> bool:
        if self.cpu_cap > 0 and self.cpu_used + w.cpu_milli > self.cpu_cap:
            return False
        return not (self.mem_cap > 0 and self.mem_used + w.host_memory_mib > self.mem_cap)


@dataclass
class _Attempt:
    """One workload being placed: its replicas so far and what to restore on rollback."""

    nodes: dict[int, tuple[list[int], dict[int, list[int]], int, int, int]] = field(default_factory=dict)
    domain_head: dict[str, int] = field(default_factory=dict)
    site_head: dict[str, int] = field(default_factory=dict)
    placements: list[ReplicaPlacement] = field(default_factory=list)
    per_site: Counter[str] = field(default_factory=Counter)
    domains: set[str] = field(default_factory=set)
    node_names: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Choice:
    node: _Node
    cap_w: int  # per-GPU power cap (max_power_w for a fractional replica)
    gpu_index: int | None  # fractional: the shared GPU chosen (None: take a free GPU)


def _levels_desc(w: Workload, gpu: GpuType) -> tuple[int, ...]:
    """Allowed power caps of a whole-GPU replica, highest first."""
    return tuple(gpu.power_levels[i].power_cap_w for i in reversed(allowed_levels(w, gpu)))


class _Packer:
    def __init__(self, problem: Problem, policy: str) -> None:
        self.problem = problem
        self.policy = policy
        fleet = problem.fleet
        self.types = {g.name: g for g in fleet.gpu_types}
        self.site_head = {s.name: s.usable_power_w for s in fleet.sites}
        self.domain_head = {d.name: d.usable_power_w for d in fleet.power_domains}
        self.nodes: list[_Node] = []
        self.by_name: dict[str, _Node] = {}
        self.ready: list[bool] = []
        # per workload attempt: (group, signature) options that found no rack with the power
        # (headroom only shrinks within an attempt; a node entering the signature clears it)
        # and the options of each (GPU type, signature), which depend on nothing else
        self.dead: dict[tuple[GroupKey, Sig], set[int | None]] = {}
        self.option_cache: dict[tuple[str, Sig], list[tuple[float, int | None]]] = {}
        site_rank = {s.name: i for i, s in enumerate(fleet.sites)}
        max_count: dict[str, int] = defaultdict(int)
        for i, n in enumerate(fleet.nodes):
            st = _Node(i, n, self.types[n.gpu_type])
            self.nodes.append(st)
            self.by_name[n.name] = st
            self.ready.append(n.state is NodeState.READY)
            if n.state is NodeState.READY:
                max_count[n.gpu_type] = max(max_count[n.gpu_type], n.gpu_count)
        self.max_count = dict(max_count)
        # (site, type) groups in site order, then type order: the "first" of first fit
        keys = {st.gkey for st, ok in zip(self.nodes, self.ready, strict=True) if ok}
        self.group_order: list[GroupKey] = sorted(keys, key=lambda k: (site_rank.get(k[0], 0), k[1]))
        self.index: dict[GroupKey, dict[Sig, dict[str, dict[int, None]]]] = {k: {} for k in self.group_order}
        for st in self.nodes:
            self.reindex(st)
        self._latency: dict[tuple[str, str], float] | None = None
        self._site_cache: dict[tuple[str, float, float], frozenset[str]] = {}
        self._group_cache: dict[tuple[object, ...], tuple[GroupKey, ...]] = {}
        self._frag_cache: dict[tuple[str, Sig], float] = {}
        self.popularity: dict[str, list[tuple[tuple[str, int], float]]] = {}
        if policy == "fgd":
            self._popularity()

    # ------------------------------------------------------------------ index

    def reindex(self, st: _Node) -> None:
        if not self.ready[st.i]:
            return
        new = st.signature()
        old = st.sig
        if old == new:
            return
        groups = self.index[st.gkey]
        if old is not None:
            doms = groups[old]
            members = doms[st.domain]
            del members[st.i]
            if not members:
                del doms[st.domain]
                if not doms:
                    del groups[old]
        full = new[1] == 0 and not new[2]
        if full:
            st.sig = None
            return
        groups.setdefault(new, {}).setdefault(st.domain, {})[st.i] = None
        st.sig = new
        if self.dead:
            self.dead.pop((st.gkey, new), None)

    # ------------------------------------------------------------ eligibility

    def latency(self) -> dict[tuple[str, str], float]:
        if self._latency is None:
            self._latency = latency_table(self.problem.fleet)
        return self._latency

    def sites_for(self, w: Workload) -> frozenset[str]:
        key = (w.user_region if w.max_latency_ms > 0 else "", w.max_latency_ms, w.backup_minutes)
        got = self._site_cache.get(key)
        if got is None:
            lat = self.latency() if w.max_latency_ms > 0 else {}
            got = self._site_cache[key] = frozenset(
                s.name for s in self.problem.fleet.sites if site_admits(w, s, lat)
            )
        return got

    def type_ok(self, w: Workload, gpu: GpuType) -> bool:
        if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
            return False
        if w.is_fractional:
            return gpu.shareable and memory_milli_gib(w.memory_gib) <= memory_milli_gib(gpu.memory_gib)
        if self.max_count.get(gpu.name, 0) < w.gpus:
            return False
        if memory_milli_gib(w.memory_per_gpu_gib) > memory_milli_gib(gpu.memory_gib):
            return False
        return bool(allowed_levels(w, gpu))

    def groups_for(self, w: Workload) -> tuple[GroupKey, ...]:
        key = (
            w.user_region if w.max_latency_ms > 0 else "",
            w.max_latency_ms,
            w.backup_minutes,
            w.allowed_gpu_types,
            w.gpus,
            w.gpu_milli,
            memory_milli_gib(w.memory_per_gpu_gib),
            w.min_power_cap_pct,
        )
        got = self._group_cache.get(key)
        if got is None:
            sites = self.sites_for(w)
            types = {t for t, g in self.types.items() if self.type_ok(w, g)}
            got = tuple(k for k in self.group_order if k[0] in sites and k[1] in types)
            self._group_cache[key] = got
        return got

    # ------------------------------------------------------------------- FGD

    def _popularity(self) -> None:
        counts: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
        for w in self.problem.workloads:
            cls = ("f", w.gpu_milli) if w.is_fractional else ("w", w.gpus)
            for t, g in self.types.items():
                if self.type_ok(w, g):
                    counts[t][cls] += w.max_replicas
        for t, c in counts.items():
            total = sum(c.values())
            self.popularity[t] = [(cls, n / total) for cls, n in sorted(c.items())]

    def frag(self, tname: str, sig: Sig) -> float:
        key = (tname, sig)
        got = self._frag_cache.get(key)
        if got is None:
            _, free, partial = sig
            partial_free = sum(p[0] for p in partial)
            got = 0.0
            for (kind, size), weight in self.popularity.get(tname, ()):
                if kind == "f":
                    got += weight * sum(p[0] for p in partial if p[0] < size)
                else:
                    got += weight * (partial_free + (free * FULL_GPU_MILLI if free < size else 0))
            self._frag_cache[key] = got
        return got

    # ------------------------------------------------------------ placement

    def _touch(self, a: _Attempt, st: _Node) -> None:
        if st.i not in a.nodes:
            a.nodes[st.i] = (
                list(st.free),
                {k: list(v) for k, v in st.shared.items()},
                st.extra_w,
                st.cpu_used,
                st.mem_used,
            )
        a.domain_head.setdefault(st.domain, self.domain_head[st.domain])
        a.site_head.setdefault(st.site, self.site_head[st.site])

    def rollback(self, a: _Attempt) -> None:
        for i, (free, shared, extra, cpu, mem) in a.nodes.items():
            st = self.nodes[i]
            st.free, st.shared, st.extra_w, st.cpu_used, st.mem_used = free, shared, extra, cpu, mem
            self.reindex(st)
        self.domain_head.update(a.domain_head)
        self.site_head.update(a.site_head)

    def apply(
        self, a: _Attempt | None, w: Workload, st: _Node, cap_w: int, gpu_index: int | None
    ) -> ReplicaPlacement:
        if a is not None:
            self._touch(a, st)
        before = st.draw_w()
        if w.is_fractional:
            if gpu_index is None:
                gpu_index = st.free.pop(0)
                st.shared[gpu_index] = [0, 0]
            use = st.shared[gpu_index]
            use[0] += w.gpu_milli
            use[1] += memory_milli_gib(w.memory_gib)
            indices: tuple[int, ...] = (gpu_index,)
            milli = w.gpu_milli
        else:
            indices = tuple(st.free[: w.gpus])
            del st.free[: w.gpus]
            st.extra_w += w.gpus * (cap_w - st.gpu.idle_power_w)
            milli = FULL_GPU_MILLI
        self._charge(st, w, before)
        return ReplicaPlacement(
            workload=w.name,
            replica=0,
            site=st.site,
            power_domain=st.domain,
            node=st.name,
            gpu_indices=indices,
            gpu_milli=milli,
            power_cap_w=cap_w,
        )

    def _charge(self, st: _Node, w: Workload, before: int) -> None:
        """One more replica of ``w`` on ``st`` (GPUs already taken): its host resources, and the
        node's new draw against the rack and the site."""
        st.cpu_used += w.cpu_milli
        st.mem_used += w.host_memory_mib
        delta = st.draw_w() - before
        self.domain_head[st.domain] -= delta
        self.site_head[st.site] -= delta
        self.reindex(st)

    def pin(self, w: Workload) -> list[ReplicaPlacement]:
        out = []
        for k, c in enumerate(w.current):
            st = self.by_name[c.node]
            before = st.draw_w()
            if w.is_fractional:
                idx = c.gpu_indices[0]
                if idx in st.free:
                    st.free.remove(idx)
                    st.shared[idx] = [0, 0]
                use = st.shared.setdefault(idx, [0, 0])
                use[0] += w.gpu_milli
                use[1] += memory_milli_gib(w.memory_gib)
                milli = w.gpu_milli
            else:
                for idx in c.gpu_indices:
                    if idx in st.free:
                        st.free.remove(idx)
                st.extra_w += len(c.gpu_indices) * (st.gpu.max_power_w - st.gpu.idle_power_w)
                milli = FULL_GPU_MILLI
            self._charge(st, w, before)
            out.append(
                ReplicaPlacement(
                    workload=w.name,
                    replica=k,
                    site=st.site,
                    power_domain=st.domain,
                    node=st.name,
                    gpu_indices=tuple(c.gpu_indices),
                    gpu_milli=milli,
                    power_cap_w=st.gpu.max_power_w,
                )
            )
        return out

    # --------------------------------------------------------------- choice

    def _options(self, w: Workload, tname: str, sig: Sig) -> list[tuple[float, int | None]]:
        """(score, shared GPU option) for one signature that has the GPUs; lower score is better.

        The shared GPU option is the index into ``sig[2]`` (fractional, existing shared
        GPU), -1 for a free GPU, or ``None`` for a whole-GPU replica.
        """
        count, free, partial = sig
        gpu = self.types[tname]
        policy = self.policy
        out: list[tuple[float, int | None]] = []
        if w.is_fractional:
            need_gmem = memory_milli_gib(w.memory_gib)
            used_before = (count - free) * FULL_GPU_MILLI - sum(p[0] for p in partial)
            for j, (pm, pgmem) in enumerate(partial):
                if pm >= w.gpu_milli and pgmem >= need_gmem:
                    if policy == "fgd":
                        left = pm - w.gpu_milli
                        rest = partial[:j] + partial[j + 1 :]
                        after_p = tuple(sorted((*rest, (left, pgmem - need_gmem)))) if left > 0 else rest
                        score = self.frag(tname, (count, free, after_p)) - self.frag(tname, sig)
                    elif policy == "best_fit":
                        score = -((used_before + w.gpu_milli) / count) + pm * 1e-6
                    else:
                        score = 0.0
                    out.append((score, j))
                    if policy == "first_fit":
                        return out
            if free > 0 and need_gmem <= memory_milli_gib(gpu.memory_gib):
                if policy == "fgd":
                    new_p = (FULL_GPU_MILLI - w.gpu_milli, memory_milli_gib(gpu.memory_gib) - need_gmem)
                    after = (count, free - 1, tuple(sorted((*partial, new_p))))
                    score = self.frag(tname, after) - self.frag(tname, sig)
                elif policy == "best_fit":
                    score = -((used_before + w.gpu_milli) / count) + 1e-3
                else:
                    score = 1.0
                out.append((score, -1))
            return out
        if free < w.gpus:
            return out
        if policy == "fgd":
            score = self.frag(tname, (count, free - w.gpus, partial)) - self.frag(tname, sig)
        elif policy == "best_fit":
            used_after = (count - free + w.gpus) * FULL_GPU_MILLI - sum(p[0] for p in partial)
            score = -(used_after / count)
        else:
            score = 0.0
        out.append((score, None))
        return out

    def _resolve(
        self,
        w: Workload,
        a: _Attempt,
        gkey: GroupKey,
        sig: Sig,
        option: int | None,
        caps: tuple[int, ...],
        skip_domains: bool,
        skip_nodes: bool,
    ) -> _Choice | None:
        """A rack and a node of signature ``sig`` in group ``gkey`` with the power for the replica."""
        site = gkey[0]
        sh = self.site_head[site]
        doms = self.index[gkey].get(sig)
        if not doms:
            return None
        count, free, partial = sig
        off = free == count
        gpu = self.types[gkey[1]]
        idle = gpu.idle_power_w
        existing = w.is_fractional and option is not None and option >= 0
        if w.is_fractional:
            steps: tuple[tuple[int, int], ...] = (
                (gpu.max_power_w, 0 if existing else gpu.max_power_w - idle),
            )
        else:
            steps = tuple((cap, w.gpus * (cap - idle)) for cap in caps)
        least = steps[-1][1]
        for dname, members in doms.items():
            if skip_domains and dname in a.domains:
                continue
            lim = min(self.domain_head[dname], sh)
            if lim < least:
                continue
            for i in members:
                st = self.nodes[i]
                if skip_nodes and st.name in a.node_names:
                    continue
                base = st.on_w if off else 0
                cap_w = 0
                for cap, inc in steps:
                    if base + inc <= lim:
                        cap_w = cap
                        break
                if not cap_w:
                    break  # the rack cannot power it; its other nodes of this signature alike
                if not st.host_fits(w):
                    continue
                if existing:
                    want = partial[option]  # type: ignore[index]
                    for idx, use in st.shared.items():
                        if (FULL_GPU_MILLI - use[0], st.gmem_cap - use[1]) == want:
                            return _Choice(st, cap_w, idx)
                    continue
                return _Choice(st, cap_w, None)
        return None

    def choose(self, w: Workload, a: _Attempt, groups: tuple[GroupKey, ...]) -> _Choice | None:
        spread = w.spread
        distinct_phase = False
        level = None
        if spread is not None:
            level = spread.level
            have = (
                len(a.per_site)
                if level is SpreadLevel.SITE
                else len(a.domains)
                if level is SpreadLevel.POWER_DOMAIN
                else len(a.node_names)
            )
            distinct_phase = have < spread.min_distinct
        skip_sites = distinct_phase and level is SpreadLevel.SITE
        skip_domains = distinct_phase and level is SpreadLevel.POWER_DOMAIN
        skip_nodes = distinct_phase and level is SpreadLevel.NODE
        survival = w.survivors_required > 0
        first = self.policy == "first_fit" and not survival
        record_dead = not distinct_phase
        caps_by_type: dict[str, tuple[int, ...]] = {}
        cands: list[tuple[tuple[float, ...], GroupKey, Sig, int | None, tuple[int, ...]]] = []
        order = 0
        for gkey in groups:
            site = gkey[0]
            if skip_sites and site in a.per_site:
                continue
            if self.site_head[site] < 0:
                continue
            sigs = self.index[gkey]
            if not sigs:
                continue
            tname = gkey[1]
            caps = caps_by_type.get(tname)
            if caps is None:
                caps = caps_by_type[tname] = () if w.is_fractional else _levels_desc(w, self.types[tname])
            if caps and self.site_head[site] < w.gpus * (caps[-1] - self.types[tname].idle_power_w):
                continue
            for sig in list(sigs):
                okey = (tname, sig)
                options = self.option_cache.get(okey)
                if options is None:
                    options = self.option_cache[okey] = self._options(w, tname, sig)
                dead = self.dead.get((gkey, sig))
                for score, option in options:
                    if dead is not None and option in dead:
                        continue
                    if first:
                        got = self._resolve(w, a, gkey, sig, option, caps, skip_domains, skip_nodes)
                        if got is not None:
                            return got
                        if record_dead:
                            self.dead.setdefault((gkey, sig), set()).add(option)
                        continue
                    order += 1
                    key = (float(a.per_site[site]) if survival else 0.0, score, float(order))
                    cands.append((key, gkey, sig, option, caps))
        cands.sort(key=lambda c: c[0])
        for _, gkey, sig, option, caps in cands:
            got = self._resolve(w, a, gkey, sig, option, caps, skip_domains, skip_nodes)
            if got is not None:
                return got
            if record_dead:
                self.dead.setdefault((gkey, sig), set()).add(option)
        return None

    def place(self, w: Workload) -> list[ReplicaPlacement]:
        groups = self.groups_for(w)
        if not groups:
            return []
        a = _Attempt()
        self.dead = {}
        self.option_cache = {}
        for r in range(w.max_replicas):
            c = self.choose(w, a, groups)
            if c is None:
                break
            p = self.apply(a, w, c.node, c.cap_w, c.gpu_index)
            a.placements.append(
                ReplicaPlacement(
                    workload=p.workload,
                    replica=r,
                    site=p.site,
                    power_domain=p.power_domain,
                    node=p.node,
                    gpu_indices=p.gpu_indices,
                    gpu_milli=p.gpu_milli,
                    power_cap_w=p.power_cap_w,
                )
            )
            a.per_site[c.node.site] += 1
            a.domains.add(c.node.domain)
            a.node_names.add(c.node.name)
        if _acceptable(w, a):
            return a.placements
        self.rollback(a)
        return []


def _acceptable(w: Workload, a: _Attempt) -> bool:
    r = len(a.placements)
    if r < w.min_replicas or r == 0:
        return False
    if w.spread is not None:
        level = w.spread.level
        have = (
            len(a.per_site)
            if level is SpreadLevel.SITE
            else len(a.domains)
            if level is SpreadLevel.POWER_DOMAIN
            else len(a.node_names)
        )
        if have < w.spread.min_distinct:
            return False
    need = w.survivors_required
    return not (need > 0 and (r < need or any(r - n < need for n in a.per_site.values())))


def workload_order(problem: Problem) -> list[Workload]:
    """Decreasing ``priority * work_milli`` per replica, then total requested work, then name."""
    return sorted(
        problem.workloads,
        key=lambda w: (-w.priority * w.work_milli, -w.max_replicas * w.work_milli, w.name),
    )


def _run(problem: Problem, policy: str) -> tuple[ReplicaPlacement, ...]:
    t0 = time.perf_counter()
    packer = _Packer(problem, policy)
    out: list[ReplicaPlacement] = []
    for w in problem.workloads:
        if w.pinned:
            out.extend(packer.pin(w))
    placed = 0
    for w in workload_order(problem):
        if w.pinned:
            continue
        got = packer.place(w)
        if got:
            placed += 1
            out.extend(got)
    log.info(
        "%s: %d of %d workloads, %d replicas in %.2f s",
        policy,
        placed,
        len(problem.workloads),
        len(out),
        time.perf_counter() - t0,
    )
    return tuple(out)


def first_fit_decreasing(problem: Problem) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the first node, in site and rack order, that takes it."""
    return _run(problem, "first_fit")


def best_fit(problem: Problem) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the node whose GPUs are the most allocated afterwards (Kubernetes MostAllocated)."""
    return _run(problem, "best_fit")


def fgd(problem: Problem) -> tuple[ReplicaPlacement, ...]:
    """Each replica where the expected GPU fragmentation of the fleet grows least (FGD, ATC'23)."""
    return _run(problem, "fgd")


HEURISTICS: dict[str, Callable[[Problem], tuple[ReplicaPlacement, ...]]] = {
    "first_fit_decreasing": first_fit_decreasing,
    "best_fit": best_fit,
    "fgd": fgd,
}


# --------------------------------------------------------------------------- plans


def plan_from(
    problem: Problem,
    placements: Iterable[ReplicaPlacement],
    method: str,
    wall_s: float = 0.0,
    checked: bool = True,
    explain_until: float | None = None,
) -> Plan:
    """A verified ``Plan`` from placements, assembled as the engine assembles its own
    (``placement.assemble``): budgets, objective, the reasons for unplaced work, a SolveInfo.

    Raises ``PlanRejected`` when the placements break a hard rule (unless ``checked`` is
    False: then the caller verifies, as the benchmark does in another process). Unplaced
    work is explained most valuable first until ``explain_until`` (monotonic seconds; None:
    all of it), as the engine explains within its time limit.
    """
    info = SolveInfo(
        status=SolveStatus.FEASIBLE,
        backend=f"heuristic:{method}",
        seed=problem.options.seed,
        wall_s=wall_s,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    plan, bad = plan_of(problem, placements, info, explain_until)
    if checked and bad:
        raise PlanRejected(bad)
    return plan


def eligible_groups(problem: Problem) -> dict[str, tuple[GroupKey, ...]]:
    """Per workload, the (site, GPU type) groups of READY nodes its static rules allow.

    Static rules: latency, backup, allowed types, shareable for fractional work, GPU memory
    (whole milli-GiB), a node of the type with enough GPUs, a power level not below the floor.
    Power headroom and host resources are left to the placement.
    """
    packer = _Packer(problem, "first_fit")
    return {w.name: packer.groups_for(w) for w in problem.workloads}
