"""Constructive heuristics: one placement loop over the placement state, with three scoring policies.

The baselines the engine must beat (and may warm-start from). One loop (``Packing``) places
the workloads replica by replica on a ``placement.state.FleetState``; a *policy* scores
where the next replica goes:

* ``FirstFit`` (``first_fit_decreasing``): the first node (site order, then rack order)
  that takes it;
* ``BestFit`` (``best_fit``): the Kubernetes default style (``NodeResourcesFit`` with the
  ``MostAllocated`` strategy): the node whose GPUs are the most allocated after placing;
* ``Fragmentation`` (``fgd``): fragmentation gradient descent in the style of Weng et al.,
  "Beware of Fragmentation" (USENIX ATC'23): the node (and GPU) where the expected
  fragmentation of the fleet grows least. A node's fragmentation for a task class is the
  GPU capacity it has left that the class cannot use (partly used GPUs for whole-GPU
  tasks, all of the free GPUs when fewer than the class needs are free; for a fractional
  task, shared GPUs with less free than it asks); the expectation weighs the classes by
  their share of the requested replicas that may run on the node's GPU type.

The loop (every rule is the state's rule kernel's, ``FleetState.assess`` and
``workload_short``, or the candidate filter's, so every result passes ``placement.verify``):

1. Pinned workloads first, exactly on their current GPUs, uncapped.
2. The other workloads in decreasing order of ``priority * work_milli`` per replica
   (then total requested work, then name), all or nothing: replicas are added one at a
   time up to ``max_replicas``; a workload that ends with fewer than ``min_replicas``,
   too few distinct spread entities or a site whose loss leaves too few survivors is
   taken back whole.
3. For each replica: the (site, GPU type) groups the workload may use (the filter's site
   and GPU type rules: latency, backup, allowed types, GPU memory, a power level not below
   its floor; and a node of the type with enough GPUs) are resolved once per workload;
   inside a group, nodes are indexed by their *signature* (GPU count, free whole GPUs, and
   the free milli and memory of each partly used GPU), so the policy scores a group once
   per distinct signature, not once per node. The chosen signature is then resolved, rack
   by rack, to a node where the kernel places the replica (at the highest allowed power
   level that fits). While a spread rule still lacks distinct entities, used ones are
   skipped; with a site-survival rule, sites holding fewer of the workload's replicas come
   first.

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
from placement.candidates import Prepared, filter_candidates, gpu_types_for, site_admits
from placement.domain import (
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
from placement.errors import PlanRejected
from placement.state import NEW_GPU, Fit, FleetState

log = logging.getLogger(__name__)

# (GPU count, free whole GPUs, sorted (free milli, free milli-GiB) of each partly used GPU)
Sig = tuple[int, int, tuple[tuple[int, int], ...]]
GroupKey = tuple[str, str]  # (site, GPU type)
DomainKey = tuple[str, str]  # (site, power domain)
# where on a signature a replica goes: an index into sig[2] (a partly used GPU), NEW_GPU (a
# fractional replica on a free GPU) or None (a whole-GPU replica on free GPUs)
Option = int | None


# --------------------------------------------------------------------------- policies


class Policy:
    """How a heuristic scores where one more replica goes; lower is better.

    ``score(tname, before, after, option, free_milli)``: the replica moves a node of GPU
    type ``tname`` from signature ``before`` to ``after`` through ``option``
    (``free_milli``: what the partly used GPU had free, for a shared option). With
    ``first_fit`` the loop takes the first option that resolves, in fleet order, and looks
    at one partly used GPU per signature at most.
    """

    name = ""
    first_fit = False

    def prepare(self, packing: Packing) -> None:
        """Read what the policy needs of the problem before the first replica."""

    def score(self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int) -> float:
        raise NotImplementedError


class FirstFit(Policy):
    name = "first_fit"
    first_fit = True

    def score(self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int) -> float:
        return 1.0 if option == NEW_GPU else 0.0


class BestFit(Policy):
    """The node whose GPUs are the most allocated afterwards; among shared GPUs the one with
    the least left, then a partly used GPU before a free one."""

    name = "best_fit"

    def score(self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int) -> float:
        count, free, partial = after
        used_after = (count - free) * FULL_GPU_MILLI - sum(p[0] for p in partial)
        if option is None:
            return -(used_after / count)
        return -(used_after / count) + (1e-3 if option == NEW_GPU else free_milli * 1e-6)


class Fragmentation(Policy):
    """FGD's measure: the expected GPU capacity left that the task classes cannot use."""

    name = "fgd"

    def __init__(self) -> None:
        self.popularity: dict[str, list[tuple[tuple[str, int], float]]] = {}
        self._cache: dict[tuple[str, Sig], float] = {}

    def prepare(self, packing: Packing) -> None:
        counts: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
        for w in packing.problem.workloads:
            cls = ("f", w.gpu_milli) if w.is_fractional else ("w", w.gpus)
            for t in packing.types_for(w):
                counts[t][cls] += w.max_replicas
        for t, c in counts.items():
            total = sum(c.values())
            self.popularity[t] = [(cls, n / total) for cls, n in sorted(c.items())]

    def frag(self, tname: str, sig: Sig) -> float:
        key = (tname, sig)
        got = self._cache.get(key)
        if got is None:
            _, free, partial = sig
            partial_free = sum(p[0] for p in partial)
            got = 0.0
            for (kind, size), weight in self.popularity.get(tname, ()):
                if kind == "f":
                    got += weight * sum(p[0] for p in partial if p[0] < size)
                else:
                    got += weight * (partial_free + (free * FULL_GPU_MILLI if free < size else 0))
            self._cache[key] = got
        return got

    def score(self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int) -> float:
        return self.frag(tname, after) - self.frag(tname, before)


# --------------------------------------------------------------------------- the loop


@dataclass
class _Attempt:
    """One workload being placed: the nodes of its replicas so far, by site and entity."""

    start: int  # its first row in the state's placements
    nodes: list[int] = field(default_factory=list)
    node_set: set[int] = field(default_factory=set)
    per_site: Counter[str] = field(default_factory=Counter)
    domains: set[DomainKey] = field(default_factory=set)


class Packing:
    """The heuristics' loop: a ``FleetState`` with its READY nodes indexed by signature."""

    def __init__(self, problem: Problem, policy: Policy, prepared: Prepared | None = None) -> None:
        self.problem = problem
        self.policy = policy
        self.p = prepared if prepared is not None else filter_candidates(problem, workloads=())
        self.st = FleetState(self.p)
        fleet = problem.fleet
        self.types = {g.name: g for g in fleet.gpu_types}
        self.ready = [info.node.state is NodeState.READY for info in self.p.nodes]
        self.gmem_cap = [memory_milli_gib(info.gpu.memory_gib) for info in self.p.nodes]
        max_count: dict[str, int] = defaultdict(int)
        for info, ok in zip(self.p.nodes, self.ready, strict=True):
            if ok:
                max_count[info.gpu.name] = max(max_count[info.gpu.name], info.node.gpu_count)
        self.max_count = dict(max_count)
        # (site, type) groups in site order, then type order: the "first" of first fit
        site_rank = {s.name: i for i, s in enumerate(fleet.sites)}
        keys = {
            (info.site.name, info.gpu.name) for info, ok in zip(self.p.nodes, self.ready, strict=True) if ok
        }
        self.group_order: list[GroupKey] = sorted(keys, key=lambda k: (site_rank.get(k[0], 0), k[1]))
        self.index: dict[GroupKey, dict[Sig, dict[DomainKey, dict[int, None]]]] = {
            k: {} for k in self.group_order
        }
        # per workload attempt: (group, signature) options that found no rack with the power
        # (headroom only shrinks within an attempt; a node entering the signature clears it)
        # and the options of each (GPU type, signature), which depend on nothing else
        self.dead: dict[tuple[GroupKey, Sig], set[Option]] = {}
        self.option_cache: dict[tuple[str, Sig], list[tuple[float, Option]]] = {}
        self.sig: list[Sig | None] = [None] * len(self.p.nodes)
        for n in range(len(self.p.nodes)):
            self.reindex(n)
        self._sites: dict[tuple[str, float, float], frozenset[str]] = {}
        self._types: dict[tuple[object, ...], dict[str, tuple[int, ...]]] = {}
        self._groups: dict[tuple[object, ...], tuple[GroupKey, ...]] = {}
        self.workload_index = {w.name: i for i, w in enumerate(problem.workloads)}
        policy.prepare(self)

    # ------------------------------------------------------------------ index

    def signature(self, n: int) -> Sig:
        cap = self.gmem_cap[n]
        partial = tuple(
            sorted(
                (FULL_GPU_MILLI - sh.milli, cap - sh.mem_milli_gib)
                for sh in self.st.shared[n].values()
                if sh.milli < FULL_GPU_MILLI
            )
        )
        return (self.p.nodes[n].node.gpu_count, self.st.node_free[n], partial)

    def reindex(self, n: int) -> None:
        if not self.ready[n]:
            return
        new = self.signature(n)
        old = self.sig[n]
        if old == new:
            return
        info = self.p.nodes[n]
        gkey = (info.site.name, info.gpu.name)
        groups = self.index[gkey]
        if old is not None:
            doms = groups[old]
            members = doms[info.domain_key]
            del members[n]
            if not members:
                del doms[info.domain_key]
                if not doms:
                    del groups[old]
        if new[1] == 0 and not new[2]:  # full
            self.sig[n] = None
            return
        groups.setdefault(new, {}).setdefault(info.domain_key, {})[n] = None
        self.sig[n] = new
        if self.dead:
            self.dead.pop((gkey, new), None)

    # ------------------------------------------------------------ eligibility (the filter's rules)

    def sites_for(self, w: Workload) -> frozenset[str]:
        key = (w.user_region if w.max_latency_ms > 0 else "", w.max_latency_ms, w.backup_minutes)
        got = self._sites.get(key)
        if got is None:
            lat = self.p.latency_ms
            got = self._sites[key] = frozenset(
                s.name for s in self.problem.fleet.sites if site_admits(w, s, lat)
            )
        return got

    def types_for(self, w: Workload) -> dict[str, tuple[int, ...]]:
        """The GPU types ``w`` may run on, with its allowed levels (ascending; empty for a share),
        of which some READY node has the GPUs for one replica."""
        key = (w.allowed_gpu_types, w.is_fractional, w.memory_per_gpu_gib, w.min_power_cap_pct, w.gpus)
        got = self._types.get(key)
        if got is None:
            got = self._types[key] = {
                t: levels
                for t, levels in gpu_types_for(w, self.problem.fleet.gpu_types)
                if w.is_fractional or self.max_count.get(t, 0) >= w.gpus
            }
        return got

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
        got = self._groups.get(key)
        if got is None:
            sites = self.sites_for(w)
            types = self.types_for(w)
            got = self._groups[key] = tuple(k for k in self.group_order if k[0] in sites and k[1] in types)
        return got

    # ------------------------------------------------------------ placement

    def pin(self, w: Workload) -> list[ReplicaPlacement]:
        """A pinned workload's current replicas, uncapped, on their current GPUs."""
        wi = self.workload_index[w.name]
        out = []
        for k, c in enumerate(w.current):
            n = self.p.node_index[c.node]
            info = self.p.nodes[n]
            self.st.add_at(wi, n, tuple(c.gpu_indices), info.gpu.max_power_w)
            self.reindex(n)
            out.append(self._replica(w, k, self.st.placements[-1]))
        return out

    def _replica(
        self, w: Workload, r: int, row: tuple[int, int, tuple[int, ...], int, int]
    ) -> ReplicaPlacement:
        _wi, n, idx, milli, cap = row
        info = self.p.nodes[n]
        return ReplicaPlacement(w.name, r, info.site.name, info.domain.name, info.node.name, idx, milli, cap)

    def _options(self, w: Workload, tname: str, sig: Sig) -> list[tuple[float, Option]]:
        """(score, option) for one signature that has the GPUs; lower score is better."""
        count, free, partial = sig
        policy = self.policy
        out: list[tuple[float, Option]] = []
        if w.is_fractional:
            need_gmem = memory_milli_gib(w.memory_gib)
            for j, (pm, pgmem) in enumerate(partial):
                if pm >= w.gpu_milli and pgmem >= need_gmem:
                    left = pm - w.gpu_milli
                    rest = partial[:j] + partial[j + 1 :]
                    after_p = tuple(sorted((*rest, (left, pgmem - need_gmem)))) if left > 0 else rest
                    out.append((policy.score(tname, sig, (count, free, after_p), j, pm), j))
                    if policy.first_fit:
                        return out
            gmem = memory_milli_gib(self.types[tname].memory_gib)
            if free > 0 and need_gmem <= gmem:
                new_p = (FULL_GPU_MILLI - w.gpu_milli, gmem - need_gmem)
                after = (count, free - 1, tuple(sorted((*partial, new_p))))
                out.append((policy.score(tname, sig, after, NEW_GPU, 0), NEW_GPU))
            return out
        if free >= w.gpus:
            out.append((policy.score(tname, sig, (count, free - w.gpus, partial), None, 0), None))
        return out

    def _resolve(
        self,
        wi: int,
        a: _Attempt,
        gkey: GroupKey,
        sig: Sig,
        option: Option,
        levels: tuple[int, ...],
        skip_domains: bool,
        skip_nodes: bool,
    ) -> Fit | None:
        """A rack and a node of signature ``sig`` in group ``gkey`` where the kernel places the replica."""
        doms = self.index[gkey].get(sig)
        if not doms:
            return None
        st = self.st
        w = self.problem.workloads[wi]
        gpu = self.types[gkey[1]]
        site_room = st.site_headroom_w(gkey[0])
        # the least the replica adds, the node's power aside: racks with less are skipped
        if w.is_fractional:
            least = 0 if option is not None and option >= 0 else gpu.max_power_w - gpu.idle_power_w
        else:
            least = w.gpus * (gpu.power_levels[levels[0]].power_cap_w - gpu.idle_power_w)
        frac = w.is_fractional
        want = sig[2][option] if frac and option is not None and option >= 0 else None
        check = st.check
        for dkey, members in doms.items():
            if skip_domains and dkey in a.domains:
                continue
            if min(st.domain_usable_w[dkey] - st.domain_w[dkey], site_room) < least:
                continue
            for n in members:
                if skip_nodes and n in a.node_set:
                    continue
                j: int | None = NEW_GPU if frac else None
                if want is not None:  # the partly used GPU the option names
                    cap = self.gmem_cap[n]
                    j = next(
                        k
                        for k, sh in st.shared[n].items()
                        if (FULL_GPU_MILLI - sh.milli, cap - sh.mem_milli_gib) == want
                    )
                got = check(wi, n, levels, j)
                if type(got) is Fit:
                    return got
                if got in ("domain_power", "site_power"):
                    break  # the rack cannot power it; its other nodes of this signature alike
        return None

    def choose(self, wi: int, a: _Attempt, groups: tuple[GroupKey, ...]) -> Fit | None:
        w = self.problem.workloads[wi]
        st = self.st
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
                else len(a.node_set)
            )
            distinct_phase = have < spread.min_distinct
        skip_sites = distinct_phase and level is SpreadLevel.SITE
        skip_domains = distinct_phase and level is SpreadLevel.POWER_DOMAIN
        skip_nodes = distinct_phase and level is SpreadLevel.NODE
        survival = w.survivors_required > 0
        first = self.policy.first_fit and not survival
        record_dead = not distinct_phase
        types = self.types_for(w)
        cands: list[tuple[tuple[float, ...], GroupKey, Sig, Option, tuple[int, ...]]] = []
        order = 0
        for gkey in groups:
            site = gkey[0]
            if skip_sites and site in a.per_site:
                continue
            site_room = st.site_headroom_w(site)
            if site_room < 0:
                continue
            sigs = self.index[gkey]
            if not sigs:
                continue
            tname = gkey[1]
            levels = types[tname]
            gpu = self.types[tname]
            if levels and site_room < w.gpus * (gpu.power_levels[levels[0]].power_cap_w - gpu.idle_power_w):
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
                        got = self._resolve(wi, a, gkey, sig, option, levels, skip_domains, skip_nodes)
                        if got is not None:
                            return got
                        if record_dead:
                            self.dead.setdefault((gkey, sig), set()).add(option)
                        continue
                    order += 1
                    key = (float(a.per_site[site]) if survival else 0.0, score, float(order))
                    cands.append((key, gkey, sig, option, levels))
        cands.sort(key=lambda c: c[0])
        for _, gkey, sig, option, levels in cands:
            got = self._resolve(wi, a, gkey, sig, option, levels, skip_domains, skip_nodes)
            if got is not None:
                return got
            if record_dead:
                self.dead.setdefault((gkey, sig), set()).add(option)
        return None

    def place(self, w: Workload) -> list[ReplicaPlacement]:
        """All or nothing: up to ``max_replicas`` replicas of ``w``, kept when the kernel's workload rules hold."""
        groups = self.groups_for(w)
        if not groups:
            return []
        wi = self.workload_index[w.name]
        st = self.st
        a = _Attempt(len(st.placements))
        self.dead = {}
        self.option_cache = {}
        for _ in range(w.max_replicas):
            fit = self.choose(wi, a, groups)
            if fit is None:
                break
            st.add(wi, fit)
            self.reindex(fit.node)
            info = self.p.nodes[fit.node]
            a.nodes.append(fit.node)
            a.node_set.add(fit.node)
            a.per_site[info.site.name] += 1
            a.domains.add(info.domain_key)
        if a.nodes and st.workload_short(wi, a.nodes) is None:
            return [self._replica(w, r, row) for r, row in enumerate(st.placements[a.start :])]
        st.pop(len(a.nodes))
        for n in dict.fromkeys(a.nodes):  # in the order they were first used
            self.reindex(n)
        return []


def workload_order(problem: Problem) -> list[Workload]:
    """Decreasing ``priority * work_milli`` per replica, then total requested work, then name."""
    return sorted(
        problem.workloads,
        key=lambda w: (-w.priority * w.work_milli, -w.max_replicas * w.work_milli, w.name),
    )


def run(problem: Problem, policy: Policy, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """The placements of ``policy`` (pinned workloads first, then ``workload_order``)."""
    t0 = time.perf_counter()
    packing = Packing(problem, policy, prepared)
    out: list[ReplicaPlacement] = []
    for w in problem.workloads:
        if w.pinned:
            out.extend(packing.pin(w))
    placed = 0
    for w in workload_order(problem):
        if w.pinned:
            continue
        got = packing.place(w)
        if got:
            placed += 1
            out.extend(got)
    log.info(
        "%s: %d of %d workloads, %d replicas in %.2f s",
        policy.name,
        placed,
        len(problem.workloads),
        len(out),
        time.perf_counter() - t0,
    )
    return tuple(out)


def first_fit_decreasing(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the first node, in site and rack order, that takes it."""
    return run(problem, FirstFit(), prepared)


def best_fit(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the node whose GPUs are the most allocated afterwards (Kubernetes MostAllocated)."""
    return run(problem, BestFit(), prepared)


def fgd(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica where the expected GPU fragmentation of the fleet grows least (FGD, ATC'23)."""
    return run(problem, Fragmentation(), prepared)


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
    packing = Packing(problem, FirstFit())
    return {w.name: packing.groups_for(w) for w in problem.workloads}
