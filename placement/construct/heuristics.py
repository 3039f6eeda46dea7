"""Constructive heuristics: one placement loop over the placement state, scored by a policy.

The baselines the engine must beat (and may warm-start from). One loop (``Packing``) places
workloads replica by replica on a ``placement.core.state.FleetState``; a policy
(``placement.construct.policies``) scores where the next replica goes:

* ``first_fit_decreasing``: ``FirstFit``, the first node (site order, then rack order)
  that takes it;
* ``best_fit``: ``BestFit``, the Kubernetes default style (``NodeResourcesFit`` with the
  ``MostAllocated`` strategy): the node whose GPUs are the most allocated after placing;
* ``fgd``: ``Fragmentation``, fragmentation gradient descent in the style of Weng et al.,
  "Beware of Fragmentation" (USENIX ATC'23): the node (and GPU) where the expected
  fragmentation of the fleet grows least, the task classes weighed by their share of the
  requested replicas that may run on the node's GPU type (``Measure.of_replicas``).

``placement.construct.fgd`` runs the same loop with the same policy and the paper's task mix (one
batch, online batches, a repack).

The loop (every rule is the state's rule kernel's, ``FleetState.assess`` and
``workload_short``, or the candidate filter's, so every result passes ``placement.verify``):

1. Pinned workloads first, exactly on their current GPUs, uncapped.
2. The other workloads in decreasing order of ``priority * work_milli`` per replica
   (then total requested work, then name), all or nothing: replicas are added one at a
   time up to ``max_replicas``; a workload that ends with fewer than ``min_replicas``,
   too few distinct spread entities or a site whose loss leaves too few survivors is
   taken back whole.
3. For each replica: the (site, GPU type) cells the workload may use (the filter's site
   and GPU type rules: latency, backup, allowed types, GPU memory, a power level not below
   its floor; and a node of the type with enough GPUs) are resolved once per workload;
   inside a group, nodes are indexed by their *signature* (GPU count, free whole GPUs, the
   free milli and memory of each partly used GPU, and the free host resources where the
   policy reads them), so the policy scores a group once per distinct signature, not once
   per node. The chosen signature is then resolved, rack
   by rack, to a node where the kernel places the replica (at the highest allowed power
   level that fits). While a spread rule still lacks distinct entities, used ones are
   skipped; with a site-survival rule, sites holding fewer of the workload's replicas come
   first.

``plan_from(problem, placements, method)`` turns placements into a verified ``Plan``, assembled
as the engine assembles its own (``placement.core.assemble``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from placement.construct.policies import (
    NEW_GPU,
    UNTRACKED,
    BestFit,
    FirstFit,
    Fragmentation,
    Measure,
    Option,
    Policy,
    Sig,
)
from placement.core.assemble import plan_of
from placement.core.budgets import FULL_GPU_MILLI
from placement.core.candidates import Prepared, filter_candidates, gpu_types_for, site_admits, spread_entity
from placement.core.domain import (
    NodeState,
    Plan,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    SpreadLevel,
    Workload,
    current_cap_w,
    memory_milli_gib,
)
from placement.core.errors import PlanRejected
from placement.core.state import Fit, FleetState

log = logging.getLogger(__name__)

CellKey = tuple[str, str]  # (site, GPU type)
DomainKey = tuple[str, str]  # (site, power domain)


# --------------------------------------------------------------------------- the loop


@dataclass
class _Attempt:
    """One workload being placed: the nodes of its replicas so far, by site and entity."""

    start: int  # its first row in the state's placements
    nodes: list[int] = field(default_factory=list)
    node_set: set[int] = field(default_factory=set)
    per_site: Counter[str] = field(default_factory=Counter)
    domains: set[DomainKey] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)  # of the workload's spread level


class Packing:
    """The heuristics' loop: a ``FleetState`` with its READY nodes indexed by signature.

    ``state``: go on from a state (of ``problem``'s workloads) instead of an empty fleet.
    """

    def __init__(
        self,
        problem: Problem,
        policy: Policy,
        prepared: Prepared | None = None,
        state: FleetState | None = None,
    ) -> None:
        self.problem = problem
        self.policy = policy
        if state is not None:
            self.st = state
            self.p = state.p
        else:
            self.p = prepared if prepared is not None else filter_candidates(problem, workloads=())
            self.st = FleetState(self.p)
        fleet = problem.fleet
        self.types = {g.name: g for g in fleet.gpu_types}
        self.ready = [info.node.state is NodeState.READY for info in self.p.nodes]
        self.gmem_cap = [memory_milli_gib(info.gpu.memory_gib) for info in self.p.nodes]
        self.type_gmem = {t: memory_milli_gib(g.memory_gib) for t, g in self.types.items()}
        self._need_gmem = 0  # the GPU memory of the workload being placed, milli-GiB
        max_count: dict[str, int] = defaultdict(int)
        for info, ok in zip(self.p.nodes, self.ready, strict=True):
            if ok:
                max_count[info.gpu.name] = max(max_count[info.gpu.name], info.node.gpu_count)
        self.max_count = dict(max_count)
        # (site, type) cells in site order, then type order: the "first" of first fit
        site_rank = {s.name: i for i, s in enumerate(fleet.sites)}
        keys = {
            (info.site.name, info.gpu.name) for info, ok in zip(self.p.nodes, self.ready, strict=True) if ok
        }
        self.cell_order: list[CellKey] = sorted(keys, key=lambda k: (site_rank.get(k[0], 0), k[1]))
        # per workload attempt: (group, signature) options that found no rack with the power
        # (headroom only shrinks within an attempt; a node entering the signature clears it)
        # and the options of each (GPU type, signature), which depend on nothing else
        self.dead: dict[tuple[CellKey, Sig], set[Option]] = {}
        self.option_cache: dict[tuple[str, Sig], list[tuple[tuple[float, ...], Option]]] = {}
        self._sites: dict[tuple[str, float, float], frozenset[str]] = {}
        self._types: dict[tuple[object, ...], dict[str, tuple[int, ...]]] = {}
        self._cells: dict[tuple[object, ...], tuple[CellKey, ...]] = {}
        self.workload_index = {w.name: i for i, w in enumerate(problem.workloads)}
        self._index_all()

    def _index_all(self) -> None:
        self.index: dict[CellKey, dict[Sig, dict[DomainKey, dict[int, None]]]] = {
            k: {} for k in self.cell_order
        }
        self.sig: list[Sig | None] = [None] * len(self.p.nodes)
        for n in range(len(self.p.nodes)):
            self.reindex(n)

    def set_policy(self, policy: Policy) -> None:
        """Score with ``policy`` from now on (the index is rebuilt where it reads other fields)."""
        host = policy.reads_host != self.policy.reads_host
        self.policy = policy
        self.option_cache = {}
        if host:
            self._index_all()

    def admit(self, workloads: Iterable[Workload]) -> None:
        """Make ``workloads`` known to the loop and its state, after those it knows (online use)."""
        new = [w for w in workloads if w.name not in self.workload_index]
        if not new:
            return
        base = len(self.problem.workloads)
        self.problem = replace(self.problem, workloads=self.problem.workloads + tuple(new))
        self.st.admit(self.problem)
        self.p = self.st.p
        for k, w in enumerate(new):
            self.workload_index[w.name] = base + k

    # ------------------------------------------------------------------ trying and taking back

    def mark(self) -> int:
        """Start journaling the state's changes (``FleetState.mark``)."""
        return self.st.mark()

    def undo(self, mark: int) -> None:
        """Take every change since ``mark`` back, the index kept right."""
        touched = dict.fromkeys(row[1] for _kind, _i, row in self.st.journal_since(mark))
        self.st.undo(mark)
        for n in touched:
            self.reindex(n)

    def forget(self) -> None:
        self.st.forget()

    def signatures(self) -> Iterable[tuple[str, Sig]]:
        """(GPU type, signature) of every READY node."""
        for n, info in enumerate(self.p.nodes):
            if self.ready[n]:
                yield info.gpu.name, self.signature(n)

    def placements(self) -> tuple[ReplicaPlacement, ...]:
        """The state's replicas by workload (in the order they first came), numbered in their order."""
        rows: dict[int, list[tuple[int, int, tuple[int, ...], int, int]]] = {}
        for row in self.st.placements:
            rows.setdefault(row[0], []).append(row)
        wl = self.problem.workloads
        return tuple(self._replica(wl[w], r, row) for w, lst in rows.items() for r, row in enumerate(lst))

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
        node = self.p.nodes[n].node
        if not self.policy.reads_host:
            return (node.gpu_count, self.st.node_free[n], partial, 0, 0)
        cpu = node.cpu_milli - self.st.cpu[n] if node.cpu_milli > 0 else UNTRACKED
        mem = node.host_memory_mib - self.st.hmem[n] if node.host_memory_mib > 0 else UNTRACKED
        return (node.gpu_count, self.st.node_free[n], partial, cpu, mem)

    def reindex(self, n: int) -> None:
        if not self.ready[n]:
            return
        new = self.signature(n)
        old = self.sig[n]
        if old == new:
            return
        info = self.p.nodes[n]
        ckey = (info.site.name, info.gpu.name)
        cells = self.index[ckey]
        if old is not None:
            doms = cells[old]
            members = doms[info.domain_key]
            del members[n]
            if not members:
                del doms[info.domain_key]
                if not doms:
                    del cells[old]
        if new[1] == 0 and not new[2]:  # no GPU room
            self.sig[n] = None
            return
        cells.setdefault(new, {}).setdefault(info.domain_key, {})[n] = None
        self.sig[n] = new
        if self.dead:
            self.dead.pop((ckey, new), None)

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

    def cells_for(self, w: Workload) -> tuple[CellKey, ...]:
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
        got = self._cells.get(key)
        if got is None:
            sites = self.sites_for(w)
            types = self.types_for(w)
            got = self._cells[key] = tuple(k for k in self.cell_order if k[0] in sites and k[1] in types)
        return got

    # ------------------------------------------------------------ placement

    def pin(self, w: Workload) -> list[ReplicaPlacement]:
        """A pinned workload's current replicas on their current GPUs, at their recorded caps."""
        wi = self.workload_index[w.name]
        out = []
        for k, c in enumerate(w.current):
            n = self.p.node_index[c.node]
            info = self.p.nodes[n]
            self.st.add_at(wi, n, tuple(c.gpu_indices), current_cap_w(w, c, info.gpu))
            self.reindex(n)
            out.append(self._replica(w, k, self.st.placements[-1]))
        return out

    def _replica(
        self, w: Workload, r: int, row: tuple[int, int, tuple[int, ...], int, int]
    ) -> ReplicaPlacement:
        _wi, n, idx, milli, cap = row
        info = self.p.nodes[n]
        return ReplicaPlacement(w.name, r, info.site.name, info.domain.name, info.node.name, idx, milli, cap)

    def _options(self, w: Workload, tname: str, sig: Sig) -> list[tuple[tuple[float, ...], Option]]:
        """(score, option) for one signature that has the GPUs; the least score is best."""
        count, free, partial, cpu, mem = sig
        policy = self.policy
        if policy.reads_host:
            cpu = cpu if cpu == UNTRACKED else cpu - w.cpu_milli
            mem = mem if mem == UNTRACKED else mem - w.host_memory_mib
        out: list[tuple[tuple[float, ...], Option]] = []
        if w.is_fractional:
            need_gmem = self._need_gmem
            for j, (pm, pgmem) in enumerate(partial):
                if pm >= w.gpu_milli and pgmem >= need_gmem:
                    left = pm - w.gpu_milli
                    rest = partial[:j] + partial[j + 1 :]
                    after_p = tuple(sorted((*rest, (left, pgmem - need_gmem)))) if left > 0 else rest
                    out.append((policy.score(tname, sig, (count, free, after_p, cpu, mem), j, pm), j))
                    if policy.first_fit:
                        return out
            gmem = self.type_gmem[tname]
            if free > 0 and need_gmem <= gmem:
                new_p = (FULL_GPU_MILLI - w.gpu_milli, gmem - need_gmem)
                after = (count, free - 1, tuple(sorted((*partial, new_p))), cpu, mem)
                out.append((policy.score(tname, sig, after, NEW_GPU, 0), NEW_GPU))
            return out
        if free >= w.gpus:
            out.append((policy.score(tname, sig, (count, free - w.gpus, partial, cpu, mem), None, 0), None))
        return out

    def _resolve(
        self,
        wi: int,
        a: _Attempt,
        ckey: CellKey,
        sig: Sig,
        option: Option,
        levels: tuple[int, ...],
        skip_domains: bool,
        skip_nodes: bool,
    ) -> Fit | None:
        """A rack and a node of signature ``sig`` in cell ``ckey`` where the kernel places the replica."""
        doms = self.index[ckey].get(sig)
        if not doms:
            return None
        st = self.st
        w = self.problem.workloads[wi]
        gpu = self.types[ckey[1]]
        site_room = st.site_headroom_w(ckey[0])
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

    def choose(self, wi: int, a: _Attempt, cells: tuple[CellKey, ...]) -> Fit | None:
        w = self.problem.workloads[wi]
        st = self.st
        spread = w.spread
        level = spread.level if spread is not None else None
        # while the spread lacks distinct entities, the replicas go to new ones
        distinct_phase = spread is not None and len(a.entities) < spread.min_distinct
        skip_sites = distinct_phase and level is SpreadLevel.SITE
        skip_domains = distinct_phase and level is SpreadLevel.POWER_DOMAIN
        skip_nodes = distinct_phase and level is SpreadLevel.NODE
        survival = w.survivors_required > 0
        first = self.policy.first_fit and not survival
        record_dead = not distinct_phase
        types = self.types_for(w)
        frac, gpus, milli = w.is_fractional, w.gpus, w.gpu_milli
        host, cpu, mem = self.policy.reads_host, w.cpu_milli, w.host_memory_mib
        cands: list[tuple[tuple[float, ...], CellKey, Sig, Option, tuple[int, ...]]] = []
        order = 0
        for ckey in cells:
            site = ckey[0]
            if skip_sites and site in a.per_site:
                continue
            site_room = st.site_headroom_w(site)
            if site_room < 0:
                continue
            sigs = self.index[ckey]
            if not sigs:
                continue
            tname = ckey[1]
            levels = types[tname]
            gpu = self.types[tname]
            if levels and site_room < w.gpus * (gpu.power_levels[levels[0]].power_cap_w - gpu.idle_power_w):
                continue
            for sig in list(sigs):
                # signatures without the GPUs (or, where they carry them, the host resources) for
                # one more replica offer nothing: skipped unscored
                if frac:
                    if sig[1] == 0 and sig[2][-1][0] < milli:  # (partial: ascending; not empty here)
                        continue
                elif sig[1] < gpus:
                    continue
                if host and (sig[3] < cpu or sig[4] < mem):
                    continue
                okey = (tname, sig)
                options = self.option_cache.get(okey)
                if options is None:
                    options = self.option_cache[okey] = self._options(w, tname, sig)
                dead = self.dead.get((ckey, sig))
                for score, option in options:
                    if dead is not None and option in dead:
                        continue
                    if first:
                        got = self._resolve(wi, a, ckey, sig, option, levels, skip_domains, skip_nodes)
                        if got is not None:
                            return got
                        if record_dead:
                            self.dead.setdefault((ckey, sig), set()).add(option)
                        continue
                    order += 1
                    key = (float(a.per_site[site]) if survival else 0.0, *score, float(order))
                    cands.append((key, ckey, sig, option, levels))
        cands.sort(key=lambda c: c[0])
        for _, ckey, sig, option, levels in cands:
            got = self._resolve(wi, a, ckey, sig, option, levels, skip_domains, skip_nodes)
            if got is not None:
                return got
            if record_dead:
                self.dead.setdefault((ckey, sig), set()).add(option)
        return None

    def place(self, w: Workload) -> list[ReplicaPlacement]:
        """All or nothing: up to ``max_replicas`` replicas of ``w``, kept when the kernel's workload rules hold."""
        cells = self.cells_for(w)
        if not cells:
            return []
        wi = self.workload_index[w.name]
        st = self.st
        a = _Attempt(len(st.placements))
        self._need_gmem = memory_milli_gib(w.memory_gib)
        self.dead = {}
        self.option_cache = {}
        for _ in range(w.max_replicas):
            fit = self.choose(wi, a, cells)
            if fit is None:
                break
            st.add(wi, fit)
            self.reindex(fit.node)
            info = self.p.nodes[fit.node]
            a.nodes.append(fit.node)
            a.node_set.add(fit.node)
            a.per_site[info.site.name] += 1
            a.domains.add(info.domain_key)
            if w.spread is not None:
                a.entities.add(spread_entity(info, w.spread.level))
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


def run(
    problem: Problem, policy: Callable[[Packing], Policy], prepared: Prepared | None = None
) -> tuple[ReplicaPlacement, ...]:
    """The placements of ``policy(packing)`` (pinned workloads first, then ``workload_order``)."""
    t0 = time.perf_counter()
    packing = Packing(problem, FirstFit(), prepared)
    packing.set_policy(policy(packing))
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
        packing.policy.name,
        placed,
        len(problem.workloads),
        len(out),
        time.perf_counter() - t0,
    )
    return tuple(out)


def first_fit_decreasing(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the first node, in site and rack order, that takes it."""
    return run(problem, lambda _packing: FirstFit(), prepared)


def best_fit(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica on the node whose GPUs are the most allocated afterwards (Kubernetes MostAllocated)."""
    return run(problem, lambda _packing: BestFit(), prepared)


def fgd(problem: Problem, prepared: Prepared | None = None) -> tuple[ReplicaPlacement, ...]:
    """Each replica where the expected GPU fragmentation of the fleet grows least (FGD, ATC'23), the
    task mix being the requested replicas by GPUs or share (``Measure.of_replicas``)."""
    return run(
        problem,
        lambda packing: Fragmentation(Measure.of_replicas(problem.workloads, packing.types_for)),
        prepared,
    )


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
    (``placement.core.assemble``): budgets, objective, the reasons for unplaced work, a SolveInfo.

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


def eligible_cells(problem: Problem) -> dict[str, tuple[CellKey, ...]]:
    """Per workload, the (site, GPU type) cells of READY nodes its static rules allow.

    Static rules: latency, backup, allowed types, shareable for fractional work, GPU memory
    (whole milli-GiB), a node of the type with enough GPUs, a power level not below the floor.
    Power headroom and host resources are left to the placement.
    """
    packing = Packing(problem, FirstFit())
    return {w.name: packing.cells_for(w) for w in problem.workloads}
