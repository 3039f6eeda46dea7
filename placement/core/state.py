"""The placement state and the rule kernel: what a plan uses, and whether one more replica fits.

Every method that builds or changes a plan (the greedy and its LP-guided rounding, the
heuristics' policies and FGD, the polish, the explanations) keeps the plan in a
``FleetState`` and asks it the rules; none keeps its own copy of them.

* The per-replica rules, in ``FleetState.assess`` (and ``fit_at``, ``fit``, which answer
  with the place only): rule 16, the blast radius, no more than ``max_per_node`` replicas of
  the workload on the node and ``max_per_power_domain`` in its power domain; rule 4, free GPUs for a whole-GPU replica, a shared GPU with
  ``gpu_milli`` left or a free GPU for a fractional one; rule 3, the memory left on that
  shared GPU; rule 5, the node's host CPU and memory left; rule 7, the power domain's
  and the site's headroom for the draw the replica adds (its GPUs above idle at the
  highest allowed level that fits, plus the node's on-power when the node is off).
  ``assess`` returns where the replica goes (``Fit``) or the first rule that binds, in
  that order, with its numbers (``Short``). ``level_fits`` is rule 7 for a replica
  moved to another power level, ``host_after`` rule 5 for replicas traded on a node.
* The per-workload rules, in ``workload_short``: rule 10 (none, or ``min_replicas`` to
  ``max_replicas`` replicas), rule 11 (spread over ``min_distinct`` entities), rule 12
  (site-loss survivors), rule 16 (the blast radius over the workload's nodes as a whole, for
  moves and trades that change them without ``assess``); ``rules_hold`` is the same without
  rule 10, for moves.
* The static rules (1 node state, 2 GPU type, 3 memory per GPU, 6 power levels, 8 latency,
  9 backup, and one replica alone within the caps) are the candidate filter's
  (``placement.core.candidates``), checked before a method starts; its ``Prepared`` says
  which (workload, node group, levels) a method may try.

The independent verifier (``placement.verify``) recomputes every rule from the plan
alone: the kernel and the verifier are the two places where the rules are written.

Changes (``add``, ``add_at``, ``remove``, ``pop``, ``set_level``) keep every counter
right (free GPUs per node, node group and cell; draw per node, power domain and site; the
rows on each node, ``rows_at``, and each workload's replicas per node, ``nodes_of``);
between ``mark()`` and ``undo(mark)`` they are journaled, so a method may try a change
and take it back whatever it was. ``from_placements`` reads a finished plan;
``to_placements`` numbers its replicas.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from placement.core.candidates import Candidate, Prepared, spread_entity
from placement.core.domain import (
    MILLI_GIB_PER_GIB,
    GpuType,
    Problem,
    ReplicaPlacement,
    Workload,
    memory_milli_gib,
)

log = logging.getLogger(__name__)

FULL_MILLI = 1000


@dataclass(frozen=True)
class Fit:
    """Where one more replica of a workload would go, and what it adds."""

    node: int
    level: int  # power level index; -1 for a fractional replica
    gpu_indices: tuple[int, ...]
    extra_w: int  # added IT draw


@dataclass
class _Shared:
    milli: int = 0
    mem_milli_gib: int = 0
    tenants: Counter[int] = field(default_factory=Counter)


class Short(NamedTuple):
    """The first rule that keeps one more replica of a workload off a node, with its numbers."""

    rule: str  # one of REPLICA_RULES
    node: int
    requested: float
    available: float
    unit: str


# the per-replica rules ``assess`` checks, in its order
REPLICA_RULES = (
    "blast_radius",
    "gpu_count",
    "gpu_share",
    "gpu_memory",
    "host_resources",
    "domain_power",
    "site_power",
)

NEW_GPU = -1  # ``assess``'s ``gpu`` for a fractional replica on a free GPU, the first

Row = tuple[int, int, tuple[int, ...], int, int]  # workload, node, GPU indices, thousandths, cap (W)


def level_at(gpu: GpuType, cap_w: int) -> int:
    """The index of ``gpu``'s power level whose cap is ``cap_w`` (ValueError where none is)."""
    for i, lv in enumerate(gpu.power_levels):
        if lv.power_cap_w == cap_w:
            return i
    raise ValueError(f"{gpu.name} has no power level of {cap_w} W")


class FleetState:
    """Usage of every node, power domain and site while a plan is built replica by replica."""

    def __init__(self, prepared: Prepared) -> None:
        self.p = prepared
        n = len(prepared.nodes)
        self.whole: list[dict[int, int]] = [dict() for _ in range(n)]  # gpu index -> workload
        self.shared: list[dict[int, _Shared]] = [dict() for _ in range(n)]
        self.cpu = [0] * n
        self.hmem = [0] * n
        self.replicas = [0] * n
        self.gpu_w = [0] * n  # sum of (cap - idle) over held GPUs
        self.domain_usable_w = {k: d.usable_power_w for k, d in prepared.domains.items()}
        self.site_usable_w = {k: s.usable_power_w for k, s in prepared.sites.items()}
        self.domain_w: dict[tuple[str, str], int] = defaultdict(int)
        self.site_w: dict[str, int] = defaultdict(int)
        self.placements: list[Row] = []
        # free GPUs (neither whole-used nor shared) per node, group and cell, for quick "no room" answers
        self.releases: Counter[str] = Counter()  # pops so far per site: usage there shrank
        self.node_free = [info.node.gpu_count for info in prepared.nodes]
        self.group_of = [0] * n
        self.group_free = [0] * len(prepared.groups)
        self.group_shared = [0] * len(prepared.groups)
        self.cell_free = [0] * len(prepared.cells)
        self.cell_shared = [0] * len(prepared.cells)
        for g in prepared.groups:
            for m in g.nodes:
                self.group_of[m] = g.index
                self.group_free[g.index] += self.node_free[m]
                self.cell_free[g.cell] += self.node_free[m]
        self._journal: list[tuple[str, int, Row]] | None = None  # between mark() and forget()
        self._workloads = prepared.problem.workloads
        self._nodes = prepared.nodes
        self._mem_of = [memory_milli_gib(wk.memory_gib) for wk in self._workloads]
        self._cap_mem = [memory_milli_gib(info.gpu.memory_gib) for info in prepared.nodes]
        # rule 16: replicas per (workload, node) and (workload, power domain), kept for capped workloads only
        self._capped = [wk.capped for wk in self._workloads]
        self.on_node: Counter[tuple[int, int]] = Counter()
        self.in_domain: Counter[tuple[int, tuple[str, str]]] = Counter()
        # the placements by node (a multiset of rows) and by workload (replicas per node), for
        # methods that look at one node or one workload without a pass over every placement
        self.rows_at: list[Counter[Row]] = [Counter() for _ in range(n)]
        self.nodes_of: list[Counter[int]] = [Counter() for _ in self._workloads]

    def admit(self, problem: Problem) -> None:
        """Take ``problem`` as the state's own: the same fleet, the workloads known so far first,
        new ones after (an online placer adds the workloads of each batch as they arrive)."""
        known = len(self._workloads)
        if problem.workloads[:known] != self._workloads:
            raise ValueError("admit: the known workloads must come first, unchanged")
        self.p = replace(self.p, problem=problem, _cache={})
        self._workloads = problem.workloads
        self._mem_of.extend(memory_milli_gib(w.memory_gib) for w in problem.workloads[known:])
        self._capped.extend(w.capped for w in problem.workloads[known:])
        self.nodes_of.extend(Counter() for _ in problem.workloads[known:])

    # ----------------------------------------------------------------- questions
    def node_w(self, n: int) -> int:
        return (self.p.nodes[n].on_power_w + self.gpu_w[n]) if self.replicas[n] else 0

    def free_gpus(self, n: int) -> list[int]:
        used = self.whole[n].keys() | self.shared[n].keys()
        return [j for j in range(self.p.nodes[n].node.gpu_count) if j not in used]

    def headroom_w(self, n: int) -> int:
        """The watts node ``n``'s power domain and site both still have (rule 7)."""
        info = self.p.nodes[n]
        return min(
            self.domain_usable_w[info.domain_key] - self.domain_w[info.domain_key],
            self.site_usable_w[info.site.name] - self.site_w[info.site.name],
        )

    def domain_headroom_w(self, n: int) -> int:
        key = self.p.nodes[n].domain_key
        return self.domain_usable_w[key] - self.domain_w[key]

    def site_headroom_w(self, site: str) -> int:
        return self.site_usable_w[site] - self.site_w[site]

    # ----------------------------------------------------------------- the per-replica rules
    def fit(self, cand: Candidate, preferred: tuple[int, ...] = ()) -> Fit | None:
        """Where one more replica of ``cand.workload`` fits on ``cand.node`` (best level), or None."""
        return self.fit_at(cand.workload, cand.node, cand.levels, cand.per_gpu, preferred)

    def fit_at(
        self, w: int, n: int, levels: tuple[int, ...], per_gpu: int, preferred: tuple[int, ...] = ()
    ) -> Fit | None:
        """``fit`` without a Candidate: ``levels`` allowed (whole GPU) or ``per_gpu`` > 0 (fractional)."""
        got = self.check(w, n, levels, None, preferred)
        return got if type(got) is Fit else None

    def assess(
        self, w: int, n: int, levels: tuple[int, ...], preferred: tuple[int, ...] = (), gpu: int | None = None
    ) -> Fit | Short:
        """Where one more replica of ``w`` goes on node ``n``, or the first rule that keeps it off.

        The rules in ``REPLICA_RULES`` order (module docstring). A whole-GPU replica takes
        ``preferred`` where those GPUs are free, else the first free ones, at the highest of
        ``levels`` (allowed power-level indices, ascending) whose draw fits; when none fits,
        the power rule is reported at the lowest. A fractional replica takes GPU ``gpu``
        where given (a shared one with room, a free one, or ``NEW_GPU``: a free one, the
        first), else a shared GPU already holding ``w``, then any shared GPU with room, then
        ``preferred[0]`` or the first free GPU. The static rules are the filter's: the
        caller tries only what ``Prepared`` allows.
        """
        return self.check(w, n, levels, gpu, preferred, True)  # type: ignore[return-value]

    def check(
        self,
        w: int,
        n: int,
        levels: tuple[int, ...],
        gpu: int | None = None,
        preferred: tuple[int, ...] = (),
        detail: bool = False,
    ) -> Fit | str | Short:
        """``assess`` answering with the rule's name only (``detail`` False), where the numbers
        are not needed: the loops that try many nodes build no ``Short`` for each miss."""
        wk = self._workloads[w]
        info = self._nodes[n]
        if self._capped[w]:
            over = self._blast(wk, w, n, detail)
            if over is not None:
                return over
        node = info.node
        j = -1  # fractional: the GPU, -1 while none is found
        new_gpu = False
        frac = wk.gpus == 0
        if not frac:
            if self.node_free[n] < wk.gpus:
                return Short("gpu_count", n, wk.gpus, self.node_free[n], "GPUs") if detail else "gpu_count"
        else:
            mem = self._mem_of[w]
            cap_mem = self._cap_mem[n]
            shared = self.shared[n]
            if gpu == NEW_GPU:
                if self.node_free[n] == 0:
                    return Short("gpu_share", n, wk.gpu_milli, 0, "milli-GPU") if detail else "gpu_share"
                new_gpu = True
            elif gpu is not None:
                sh = shared.get(gpu)
                if sh is None and gpu not in self.whole[n] and 0 <= gpu < node.gpu_count:
                    j, new_gpu = gpu, True
                elif sh is None:
                    return Short("gpu_share", n, wk.gpu_milli, 0, "milli-GPU") if detail else "gpu_share"
                elif sh.milli + wk.gpu_milli > FULL_MILLI:
                    left = FULL_MILLI - sh.milli
                    return Short("gpu_share", n, wk.gpu_milli, left, "milli-GPU") if detail else "gpu_share"
                elif sh.mem_milli_gib + mem > cap_mem:
                    if not detail:
                        return "gpu_memory"
                    left = cap_mem - sh.mem_milli_gib
                    return Short("gpu_memory", n, mem / MILLI_GIB_PER_GIB, left / MILLI_GIB_PER_GIB, "GiB")
                else:
                    j = gpu
            else:
                # a shared GPU already holding this workload, then any shared GPU, then a new one
                if shared:
                    for k, sh in sorted(shared.items(), key=lambda kv: (-kv[1].tenants[w], kv[0])):
                        if sh.milli + wk.gpu_milli <= FULL_MILLI and sh.mem_milli_gib + mem <= cap_mem:
                            j = k
                            break
                if j < 0:
                    if self.node_free[n] == 0:
                        if not detail:
                            return "gpu_share"  # (or gpu_memory: the reason's numbers tell which)
                        milli_ok = [sh for sh in shared.values() if sh.milli + wk.gpu_milli <= FULL_MILLI]
                        if milli_ok:  # memory in GiB, exact to the milli-GiB every rule compares
                            most = max(cap_mem - sh.mem_milli_gib for sh in milli_ok)
                            return Short(
                                "gpu_memory", n, mem / MILLI_GIB_PER_GIB, most / MILLI_GIB_PER_GIB, "GiB"
                            )
                        left = max((FULL_MILLI - sh.milli for sh in shared.values()), default=0)
                        return Short("gpu_share", n, wk.gpu_milli, left, "milli-GPU")
                    new_gpu = True
        if node.cpu_milli > 0 and self.cpu[n] + wk.cpu_milli > node.cpu_milli:
            if not detail:
                return "host_resources"
            return Short("host_resources", n, wk.cpu_milli, node.cpu_milli - self.cpu[n], "mCPU")
        if node.host_memory_mib > 0 and self.hmem[n] + wk.host_memory_mib > node.host_memory_mib:
            if not detail:
                return "host_resources"
            return Short("host_resources", n, wk.host_memory_mib, node.host_memory_mib - self.hmem[n], "MiB")
        on_w = 0 if self.replicas[n] else info.on_power_w
        dkey, site = info.domain_key, info.site.name
        dom_room = self.domain_usable_w[dkey] - self.domain_w[dkey]
        site_room = self.site_usable_w[site] - self.site_w[site]
        room = dom_room if dom_room < site_room else site_room
        if frac:
            need = on_w + (info.shared_gpu_delta_w if new_gpu else 0)
            if need <= room:
                if j < 0:  # a free GPU: the preferred one, else the first
                    free = self.free_gpus(n)
                    j = preferred[0] if preferred and preferred[0] in free else free[0]
                return Fit(n, -1, (j,), need)
        else:
            idle = info.gpu.idle_power_w
            for li in reversed(levels):
                delta = wk.gpus * (info.gpu.power_levels[li].power_cap_w - idle)
                if on_w + delta <= room:
                    free = self.free_gpus(n)
                    idx = (
                        tuple(preferred)
                        if preferred and set(preferred) <= set(free)
                        else tuple(free[: wk.gpus])
                    )
                    return Fit(n, li, idx, on_w + delta)
            need = on_w + (wk.gpus * (info.gpu.power_levels[levels[0]].power_cap_w - idle) if levels else 0)
        if need > dom_room:
            return Short("domain_power", n, need, dom_room, "W") if detail else "domain_power"
        return Short("site_power", n, need, site_room, "W") if detail else "site_power"

    def _blast(self, wk: Workload, w: int, n: int, detail: bool) -> Short | str | None:
        """Rule 16 for one more replica of ``w`` on node ``n``: ``max_per_node`` on the node,
        ``max_per_power_domain`` in its power domain (0: no limit); None where both hold."""
        here = self.on_node[(w, n)]
        if wk.max_per_node and here >= wk.max_per_node:
            return (
                Short("blast_radius", n, here + 1, wk.max_per_node, "replicas") if detail else "blast_radius"
            )
        if wk.max_per_power_domain:
            there = self.in_domain[(w, self._nodes[n].domain_key)]
            if there >= wk.max_per_power_domain:
                if not detail:
                    return "blast_radius"
                return Short("blast_radius", n, there + 1, wk.max_per_power_domain, "replicas")
        return None

    def level_fits(self, i: int, level: int) -> bool:
        """Rule 7 for whole-GPU placement ``i`` at power level ``level`` instead of its own."""
        _w, n, idx, _milli, cap = self.placements[i]
        return self.headroom_w(n) >= len(idx) * (self.p.nodes[n].gpu.power_levels[level].power_cap_w - cap)

    def host_after(
        self, n: int, leaving: list[Workload], coming: list[Workload], added: dict[int, tuple[int, int]]
    ) -> tuple[int, int] | None:
        """Rule 5 for a trade on node ``n``: the host CPU and memory it gains (beyond this state)
        with ``coming`` in place of ``leaving`` after the trades so far (``added``); None where
        they do not fit."""
        node = self.p.nodes[n].node
        cpu0, mem0 = added.get(n, (0, 0))
        cpu = cpu0 + sum(x.cpu_milli for x in coming) - sum(x.cpu_milli for x in leaving)
        mem = mem0 + sum(x.host_memory_mib for x in coming) - sum(x.host_memory_mib for x in leaving)
        if node.cpu_milli > 0 and self.cpu[n] + cpu > node.cpu_milli:
            return None
        if node.host_memory_mib > 0 and self.hmem[n] + mem > node.host_memory_mib:
            return None
        return cpu, mem

    def within_power(self, n: int) -> bool:
        """Rule 7 as it stands: node ``n``'s power domain and site draw at most their usable power."""
        return self.headroom_w(n) >= 0

    # ----------------------------------------------------------------- the per-workload rules
    def workload_short(self, w: int, nodes: Sequence[int]) -> str | None:
        """``workload_short`` for workload ``w`` with a replica on each of ``nodes``."""
        return workload_short(self.p, self.p.problem.workloads[w], nodes)

    # ----------------------------------------------------------------- changes
    def add(self, w: int, fit: Fit) -> None:
        """One more replica of ``w`` where ``fit`` says (``assess`` checked it)."""
        info = self.p.nodes[fit.node]
        if fit.level >= 0:
            row = (w, fit.node, fit.gpu_indices, FULL_MILLI, info.gpu.power_levels[fit.level].power_cap_w)
        else:
            row = (w, fit.node, fit.gpu_indices, self.p.problem.workloads[w].gpu_milli, info.gpu.max_power_w)
        self._push(row)
        if self._journal is not None:
            self._journal.append(("add", 0, row))

    def add_at(self, w: int, n: int, gpu_indices: tuple[int, ...], cap_w: int) -> None:
        """Add a replica of ``w`` on node ``n``'s GPUs ``gpu_indices`` at cap ``cap_w`` as given
        (a shared GPU for a fractional workload); the caller has checked that it fits."""
        if self.p.problem.workloads[w].is_fractional:
            self.add(w, Fit(n, -1, gpu_indices, 0))
        else:
            self.add(w, Fit(n, level_at(self.p.nodes[n].gpu, cap_w), gpu_indices, 0))

    def set_level(self, i: int, level: int) -> None:
        """Put whole-GPU placement ``i`` at power level ``level`` (``level_fits`` checked it)."""
        old = self.placements[i]
        self._relevel(i, self.p.nodes[old[1]].gpu.power_levels[level].power_cap_w)
        if self._journal is not None:
            self._journal.append(("level", i, old))

    def remove(self, i: int) -> None:
        """Take placement ``i`` back; the last placement takes its index."""
        row = self.placements[i]
        self._swap(i, len(self.placements) - 1)
        self._drop_last()
        if self._journal is not None:
            self._journal.append(("remove", i, row))

    def pop(self, count: int) -> None:
        """Undo the last ``count`` additions."""
        for _ in range(count):
            row = self._drop_last()
            if self._journal is not None:
                self._journal.append(("remove", len(self.placements), row))

    def mark(self) -> int:
        """Start (or go on) journaling changes; ``undo`` with the returned mark takes them back."""
        if self._journal is None:
            self._journal = []
        return len(self._journal)

    def undo(self, mark: int) -> None:
        """Take back every change since ``mark`` (the placements in their order again)."""
        journal = self._journal
        assert journal is not None, "undo without mark"
        while len(journal) > mark:
            kind, i, row = journal.pop()
            if kind == "add":
                self._drop_last()
            elif kind == "remove":
                self._push(row)
                self._swap(i, len(self.placements) - 1)
            else:
                self._relevel(i, row[4])

    def journal_since(self, mark: int) -> list[tuple[str, int, Row]]:
        """The changes since ``mark``: (kind, placement index, row; a level change's row as it was)."""
        return list(self._journal[mark:]) if self._journal is not None else []

    def forget(self) -> None:
        """Keep the changes made since the first ``mark`` and stop journaling."""
        self._journal = None

    # ----------------------------------------------------------------- bookkeeping
    def _push(self, row: Row) -> None:
        w, n, idx, milli, cap = row
        info = self.p.nodes[n]
        wk = self.p.problem.workloads[w]
        before = self.node_w(n)
        if not wk.is_fractional:
            for j in idx:
                self.whole[n][j] = w
            self._take(n, len(idx), 0)
            self.gpu_w[n] += wk.gpus * (cap - info.gpu.idle_power_w)
        else:
            j = idx[0]
            sh = self.shared[n].get(j)
            if sh is None:
                sh = self.shared[n][j] = _Shared()
                self._take(n, 1, 1)
                self.gpu_w[n] += info.shared_gpu_delta_w
            sh.milli += milli
            sh.mem_milli_gib += memory_milli_gib(wk.memory_gib)
            sh.tenants[w] += 1
        self.cpu[n] += wk.cpu_milli
        self.hmem[n] += wk.host_memory_mib
        self.replicas[n] += 1
        if self._capped[w]:
            self.on_node[(w, n)] += 1
            self.in_domain[(w, info.domain_key)] += 1
        self.placements.append(row)
        self.rows_at[n][row] += 1
        self.nodes_of[w][n] += 1
        self._repower(n, before)

    def _drop_last(self) -> Row:
        row = self.placements.pop()
        w, n, idx, milli, cap = row
        self.releases[self.p.nodes[n].site.name] += 1
        info = self.p.nodes[n]
        wk = self.p.problem.workloads[w]
        before = self.node_w(n)
        if not wk.is_fractional:
            for j in idx:
                del self.whole[n][j]
            self._take(n, -len(idx), 0)
            self.gpu_w[n] -= wk.gpus * (cap - info.gpu.idle_power_w)
        else:
            sh = self.shared[n][idx[0]]
            sh.milli -= milli
            sh.mem_milli_gib -= memory_milli_gib(wk.memory_gib)
            sh.tenants[w] -= 1
            if sh.milli == 0 and sum(sh.tenants.values()) == 0:
                del self.shared[n][idx[0]]
                self._take(n, -1, -1)
                self.gpu_w[n] -= info.shared_gpu_delta_w
        self.cpu[n] -= wk.cpu_milli
        self.hmem[n] -= wk.host_memory_mib
        self.replicas[n] -= 1
        if self._capped[w]:
            self.on_node[(w, n)] -= 1
            self.in_domain[(w, info.domain_key)] -= 1
        _less(self.rows_at[n], row)
        _less(self.nodes_of[w], n)
        self._repower(n, before)
        return row

    def _relevel(self, i: int, new_cap: int) -> None:
        w, n, idx, milli, cap = self.placements[i]
        before = self.node_w(n)
        self.gpu_w[n] += len(idx) * (new_cap - cap)
        self.placements[i] = (w, n, idx, milli, new_cap)
        _less(self.rows_at[n], (w, n, idx, milli, cap))
        self.rows_at[n][self.placements[i]] += 1
        self._repower(n, before)

    def _swap(self, i: int, k: int) -> None:
        if i != k:
            self.placements[i], self.placements[k] = self.placements[k], self.placements[i]

    def _take(self, n: int, gpus: int, shared: int) -> None:
        g = self.group_of[n]
        c = self.p.groups[g].cell
        self.node_free[n] -= gpus
        self.group_free[g] -= gpus
        self.cell_free[c] -= gpus
        self.group_shared[g] += shared
        self.cell_shared[c] += shared

    def _repower(self, n: int, before: int) -> None:
        delta = self.node_w(n) - before
        info = self.p.nodes[n]
        self.domain_w[info.domain_key] += delta
        self.site_w[info.site.name] += delta

    def to_placements(self) -> tuple[ReplicaPlacement, ...]:
        return number_rows(self.p, list(self.placements))

    @classmethod
    def from_placements(cls, prepared: Prepared, placements: Iterable[ReplicaPlacement]) -> FleetState:
        """The usage of a finished plan; placements must name known nodes."""
        st = cls(prepared)
        wi = {w.name: i for i, w in enumerate(prepared.problem.workloads)}
        for pl in placements:
            st.add_at(wi[pl.workload], prepared.node_index[pl.node], pl.gpu_indices, pl.power_cap_w)
        return st


def _less(counter: Counter[Any], key: Any) -> None:
    """One fewer ``key`` in ``counter``; a count of zero is no key (the counters' keys are what is there)."""
    left = counter[key] - 1
    if left:
        counter[key] = left
    else:
        del counter[key]


def rules_hold(p: Prepared, wk: Workload, nodes: Sequence[int]) -> bool:
    """Rules 11 and 12 for workload ``wk`` with a replica on each of ``nodes`` (spread, site survival)."""
    return workload_short(p, wk, nodes, counts=False) is None


def workload_short(p: Prepared, wk: Workload, nodes: Sequence[int], counts: bool = True) -> str | None:
    """The first per-workload rule that ``wk`` with a replica on each of ``nodes`` breaks, or None.

    ``replicas`` (rule 10: none at all, or ``min_replicas`` to ``max_replicas``; only with
    ``counts``), ``spread`` (rule 11: at least ``min_distinct`` distinct entities of the
    level), ``site_survival`` (rule 12: at least ``survivors_required`` replicas outside
    any one site) or ``blast_radius`` (rule 16: at most ``max_per_node`` on a node and
    ``max_per_power_domain`` in a power domain). A workload with no replica breaks none.
    """
    r = len(nodes)
    if r == 0:
        return None
    if counts and not wk.min_replicas <= r <= wk.max_replicas:
        return "replicas"
    spread = wk.spread
    if (
        spread is not None
        and len({spread_entity(p.nodes[n], spread.level) for n in nodes}) < spread.min_distinct
    ):
        return "spread"
    need = wk.survivors_required
    if need > 0:
        per_site = Counter(p.nodes[n].site.name for n in nodes)
        if r - max(per_site.values()) < need:
            return "site_survival"
    if wk.capped and blast_short(p, wk, Counter(nodes)):
        return "blast_radius"
    return None


def blast_short(p: Prepared, wk: Workload, per_node: Counter[int]) -> list[tuple[str, int, int]]:
    """Rule 16 for ``wk`` with ``per_node[n]`` replicas on node ``n``: every node and power domain
    over its cap, as (entity, replicas, cap), the entity a node name or "site/power domain"."""
    out: list[tuple[str, int, int]] = []
    if wk.max_per_node:
        out += [
            (p.nodes[n].node.name, k, wk.max_per_node)
            for n, k in sorted(per_node.items())
            if k > wk.max_per_node
        ]
    if wk.max_per_power_domain:
        per_domain: Counter[tuple[str, str]] = Counter()
        for n, k in per_node.items():
            per_domain[p.nodes[n].domain_key] += k
        out += [
            (f"{s}/{d}", k, wk.max_per_power_domain)
            for (s, d), k in sorted(per_domain.items())
            if k > wk.max_per_power_domain
        ]
    return out


def number_rows(
    p: Prepared, rows: list[tuple[int, int, tuple[int, ...], int, int]]
) -> tuple[ReplicaPlacement, ...]:
    """Replica numbers per workload in (node, GPU) order; output sorted by workload, replica."""
    rows = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    seen: Counter[int] = Counter()
    out = []
    for w, n, idx, milli, cap in rows:
        info = p.nodes[n]
        out.append(
            ReplicaPlacement(
                workload=p.problem.workloads[w].name,
                replica=seen[w],
                site=info.site.name,
                power_domain=info.domain.name,
                node=info.node.name,
                gpu_indices=tuple(idx),
                gpu_milli=milli,
                power_cap_w=cap,
            )
        )
        seen[w] += 1
    return tuple(out)


# ----------------------------------------------------------------- moves against the current placement

# the rules of a re-plan (issue 15), beside the per-replica and per-workload ones: a plan moves at most
# the disruption budgets allow (forced moves aside) and leaves a running workload out only for work of
# higher priority; the verifier (``placement.core.verify``, rules ``disruption`` and ``preemption``)
# recomputes both from the plan alone
DISRUPTION_RULES = (
    "max_moves",
    "max_moves_per_site",
    "max_moves_per_power_domain",
    "max_unavailable",
    "preemption",
)


def forced_nodes(p: Prepared) -> dict[int, frozenset[int]]:
    """Per running workload (current replicas, not pinned), the nodes its current replicas are forced
    off, the input alone deciding: a node not READY, or where a static rule now fails (not a candidate
    of the filter); every node of a power domain or site that the current placement, each replica
    at its recorded cap, overdraws (which of them must go is the plan's choice); every current node
    of a workload scaled up past what runs (fewer current replicas than ``min_replicas``: the change
    re-places it whole) or whose current replicas, where they run, break its spread or site survival
    (rules 11-12; a scale-up raises the survivors needed); and, for rule 16, a node holding more of its current replicas than
    ``max_per_node`` and every node of a power domain holding more than ``max_per_power_domain``
    (``blast_forced``). Moves off these nodes are outside the disruption budgets."""
    wl = p.problem.workloads
    cand = {w: {f.group for o in opts for f in o.fits} for w, opts in p.options.items()}
    st = FleetState(p)
    static: dict[int, set[int]] = {}
    for w, wk in enumerate(wl):
        if not wk.current or (not wk.pinned and w not in p.wanted):
            continue
        for cr in wk.current:
            n = p.node_index.get(cr.node)
            if n is None:
                continue
            if not wk.pinned and st.group_of[n] not in cand.get(w, ()):
                static.setdefault(w, set()).add(n)
                continue
            info = p.nodes[n]
            cap = info.gpu.max_power_w if wk.is_fractional or not cr.power_cap_w else cr.power_cap_w
            st._push((w, n, tuple(cr.gpu_indices), wk.gpu_milli if wk.is_fractional else FULL_MILLI, cap))
    over = {n for n in range(len(p.nodes)) if st.replicas[n] and not st.within_power(n)}
    over_domains = {p.nodes[n].domain_key for n in over}
    over_sites = {p.nodes[n].site.name for n in over if st.site_headroom_w(p.nodes[n].site.name) < 0}
    out: dict[int, frozenset[int]] = {}
    for w, wk in enumerate(wl):
        if not wk.running:
            continue
        got = set(static.get(w, ()))
        runs_on = [p.node_index[cr.node] for cr in wk.current if cr.node in p.node_index]
        if len(wk.current) < wk.min_replicas:  # scaled up past what runs: re-placed whole, forced
            got.update(runs_on)
        elif workload_short(p, wk, runs_on, counts=False) in ("spread", "site_survival"):
            got.update(runs_on)  # where they run they break the spread or survival the input now asks
        for cr in wk.current:
            n = p.node_index.get(cr.node)
            if n is not None and (
                p.nodes[n].domain_key in over_domains or p.nodes[n].site.name in over_sites
            ):
                got.add(n)
        if wk.capped:
            mine = Counter(p.node_index[cr.node] for cr in wk.current if cr.node in p.node_index)
            got |= blast_forced(p, wk, Counter({n: k for n, k in mine.items() if n not in static.get(w, ())}))
        if got:
            out[w] = frozenset(got)
    return out


def blast_forced(p: Prepared, wk: Workload, current: Counter[int]) -> set[int]:
    """The nodes of ``current`` (node -> current replicas of ``wk`` there, on nodes no static rule
    forces it off) that rule 16 forces it off: a node over ``max_per_node``, every node of a power
    domain over ``max_per_power_domain`` (which of them go is the plan's choice)."""
    got = {n for n, k in current.items() if wk.max_per_node and k > wk.max_per_node}
    if wk.max_per_power_domain:
        per_domain: Counter[tuple[str, str]] = Counter()
        for n, k in current.items():
            per_domain[p.nodes[n].domain_key] += k
        got |= {n for n in current if per_domain[p.nodes[n].domain_key] > wk.max_per_power_domain}
    return got


def disruption_short(
    p: Prepared, rows: Iterable[Row], forced: dict[int, frozenset[int]] | None = None
) -> str | None:
    """The first re-plan rule (``DISRUPTION_RULES``) the plan of ``rows`` breaks, or None.

    Moves are counted per (workload, node): current replicas there beyond the planned ones, off the
    nodes ``forced_nodes`` names. ``preemption``: a running workload none of whose current replicas
    is forced and whose current replicas meet its own rules where they run, left out of the plan
    while no workload of higher priority gained a replica on one of its current nodes or in one of
    their power domains.
    """
    wl = p.problem.workloads
    opts = p.problem.options
    forced = forced_nodes(p) if forced is None else forced
    planned: Counter[tuple[int, int]] = Counter((row[0], row[1]) for row in rows)
    placed = {w for w, _n in planned}
    mine: Counter[int] = Counter()
    per_site: Counter[str] = Counter()
    per_domain: Counter[tuple[str, str]] = Counter()
    for (w, n), cur in p.current.items():
        moved = cur - planned[(w, n)]
        if moved <= 0 or not wl[w].running or n in forced.get(w, ()):
            continue
        mine[w] += moved
        per_site[p.nodes[n].site.name] += moved
        per_domain[p.nodes[n].domain_key] += moved
    for w, moved in mine.items():
        limit = wl[w].max_unavailable
        if limit is not None and moved > limit:
            return "max_unavailable"
    if opts.max_moves is not None and sum(mine.values()) > opts.max_moves:
        return "max_moves"
    if opts.max_moves_per_site is not None and max(per_site.values(), default=0) > opts.max_moves_per_site:
        return "max_moves_per_site"
    if (
        opts.max_moves_per_power_domain is not None
        and max(per_domain.values(), default=0) > opts.max_moves_per_power_domain
    ):
        return "max_moves_per_power_domain"
    gained = [(v, n) for (v, n), count in planned.items() if count > p.current.get((v, n), 0)]
    for w, wk in enumerate(wl):
        if wk.protected(opts) and w not in placed and w not in forced and evictor(p, w, gained) is None:
            runs_on = [p.node_index[cr.node] for cr in wk.current if cr.node in p.node_index]
            if (
                workload_short(p, wk, runs_on) is None
            ):  # it could stay as it runs: only higher priority evicts
                return "preemption"
    return None


def evictor(p: Prepared, w: int, gained: Iterable[tuple[int, int]]) -> int | None:
    """A workload of higher priority than ``w`` that gained a replica (beyond its current ones) on a
    node of ``w``'s current replicas or in one of their power domains, or None; the highest first.
    ``gained``: the plan's (workload, node) pairs with more replicas than run there today."""
    wl = p.problem.workloads
    nodes = {p.node_index[cr.node] for cr in wl[w].current if cr.node in p.node_index}
    domains = {p.nodes[n].domain_key for n in nodes}
    best: int | None = None
    for v, n in gained:
        if wl[v].priority <= wl[w].priority or (n not in nodes and p.nodes[n].domain_key not in domains):
            continue
        if best is None or wl[v].priority > wl[best].priority:
            best = v
    return best
