"""The running state of a fleet while a plan is built or changed, replica by replica.

``FleetState``: GPUs, host resources and power in use per node, power domain and site,
with "does one more replica fit" questions (``fit``, ``fit_at``) and changes that keep
every counter right (``add``, ``remove``, ``pop``, ``set_level``). ``from_placements``
reads a finished plan into it; ``to_placements`` numbers its replicas.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from placement.candidates import Candidate, Prepared
from placement.domain import GpuType, ReplicaPlacement, memory_milli_gib

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
        self.placements: list[tuple[int, int, tuple[int, ...], int, int]] = []  # w, n, idx, milli, cap
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

    # ----------------------------------------------------------------- questions
    def node_w(self, n: int) -> int:
        return (self.p.nodes[n].on_power_w + self.gpu_w[n]) if self.replicas[n] else 0

    def free_gpus(self, n: int) -> list[int]:
        used = self.whole[n].keys() | self.shared[n].keys()
        return [j for j in range(self.p.nodes[n].node.gpu_count) if j not in used]

    def headroom_w(self, n: int) -> int:
        info = self.p.nodes[n]
        return min(
            self.domain_usable_w[info.domain_key] - self.domain_w[info.domain_key],
            self.site_usable_w[info.site.name] - self.site_w[info.site.name],
        )

    def site_headroom_w(self, site: str) -> int:
        return self.site_usable_w[site] - self.site_w[site]

    def _host_ok(self, w: int, n: int) -> bool:
        wl = self.p.problem.workloads[w]
        node = self.p.nodes[n].node
        if node.cpu_milli > 0 and self.cpu[n] + wl.cpu_milli > node.cpu_milli:
            return False
        return not (node.host_memory_mib > 0 and self.hmem[n] + wl.host_memory_mib > node.host_memory_mib)

    def fit(self, cand: Candidate, preferred: tuple[int, ...] = ()) -> Fit | None:
        """Where one more replica of ``cand.workload`` fits on ``cand.node`` (best level), or None."""
        return self.fit_at(cand.workload, cand.node, cand.levels, cand.per_gpu, preferred)

    def fit_at(
        self, w: int, n: int, levels: tuple[int, ...], per_gpu: int, preferred: tuple[int, ...] = ()
    ) -> Fit | None:
        """``fit`` without a Candidate: ``levels`` allowed (whole GPU) or ``per_gpu`` > 0 (fractional)."""
        wl = self.p.problem.workloads[w]
        if per_gpu == 0 and self.node_free[n] < wl.gpus:
            return None
        if not self._host_ok(w, n):
            return None
        info = self.p.nodes[n]
        on_w = 0 if self.replicas[n] else info.on_power_w
        room = self.headroom_w(n)
        if per_gpu == 0:
            free = self.free_gpus(n)
            idx = tuple(preferred) if preferred and set(preferred) <= set(free) else tuple(free[: wl.gpus])
            for li in reversed(levels):
                delta = wl.gpus * (info.gpu.power_levels[li].power_cap_w - info.gpu.idle_power_w)
                if on_w + delta <= room:
                    return Fit(n, li, idx, on_w + delta)
            return None
        mem = memory_milli_gib(wl.memory_gib)
        cap_mem = memory_milli_gib(info.gpu.memory_gib)
        # a shared GPU already holding this workload, then any shared GPU, then a new one
        order = sorted(self.shared[n].items(), key=lambda kv: (-kv[1].tenants[w], kv[0]))
        for j, sh in order:
            if sh.milli + wl.gpu_milli <= FULL_MILLI and sh.mem_milli_gib + mem <= cap_mem:
                if on_w <= room:
                    return Fit(n, -1, (j,), on_w)
                return None
        if self.node_free[n] == 0:
            return None
        free = self.free_gpus(n)
        j = preferred[0] if preferred and preferred[0] in free else free[0]
        extra = on_w + info.shared_gpu_delta_w
        return Fit(n, -1, (j,), extra) if extra <= room else None

    # ----------------------------------------------------------------- changes
    def add(self, w: int, fit: Fit) -> None:
        n = fit.node
        info = self.p.nodes[n]
        wl = self.p.problem.workloads[w]
        before = self.node_w(n)
        if fit.level >= 0:
            cap = info.gpu.power_levels[fit.level].power_cap_w
            for j in fit.gpu_indices:
                self.whole[n][j] = w
            self._take(n, len(fit.gpu_indices), 0)
            self.gpu_w[n] += wl.gpus * (cap - info.gpu.idle_power_w)
            self.placements.append((w, n, fit.gpu_indices, FULL_MILLI, cap))
        else:
            j = fit.gpu_indices[0]
            sh = self.shared[n].get(j)
            if sh is None:
                sh = self.shared[n][j] = _Shared()
                self._take(n, 1, 1)
                self.gpu_w[n] += info.shared_gpu_delta_w
            sh.milli += wl.gpu_milli
            sh.mem_milli_gib += memory_milli_gib(wl.memory_gib)
            sh.tenants[w] += 1
            self.placements.append((w, n, fit.gpu_indices, wl.gpu_milli, info.gpu.max_power_w))
        self.cpu[n] += wl.cpu_milli
        self.hmem[n] += wl.host_memory_mib
        self.replicas[n] += 1
        self._repower(n, before)

    def add_at(self, w: int, n: int, gpu_indices: tuple[int, ...], cap_w: int) -> None:
        """Add a replica of ``w`` on node ``n``'s GPUs ``gpu_indices`` at cap ``cap_w`` as given
        (a shared GPU for a fractional workload); the caller has checked that it fits."""
        if self.p.problem.workloads[w].is_fractional:
            self.add(w, Fit(n, -1, gpu_indices, 0))
        else:
            self.add(w, Fit(n, level_at(self.p.nodes[n].gpu, cap_w), gpu_indices, 0))

    def set_level(self, i: int, level: int) -> None:
        """Put whole-GPU placement ``i`` at power level ``level`` (the caller checks the headroom)."""
        w, n, idx, milli, cap = self.placements[i]
        new = self.p.nodes[n].gpu.power_levels[level].power_cap_w
        before = self.node_w(n)
        self.gpu_w[n] += len(idx) * (new - cap)
        self.placements[i] = (w, n, idx, milli, new)
        self._repower(n, before)

    def remove(self, i: int) -> None:
        """Take placement ``i`` back; the last placement takes its index."""
        last = len(self.placements) - 1
        if i != last:
            self.placements[i], self.placements[last] = self.placements[last], self.placements[i]
        self.pop(1)

    def pop(self, count: int) -> None:
        """Undo the last ``count`` additions."""
        for _ in range(count):
            w, n, idx, milli, _cap = self.placements.pop()
            self.releases[self.p.nodes[n].site.name] += 1
            info = self.p.nodes[n]
            wl = self.p.problem.workloads[w]
            before = self.node_w(n)
            if milli == FULL_MILLI and not wl.is_fractional:
                level_cap = _cap
                for j in idx:
                    del self.whole[n][j]
                self._take(n, -len(idx), 0)
                self.gpu_w[n] -= wl.gpus * (level_cap - info.gpu.idle_power_w)
            else:
                sh = self.shared[n][idx[0]]
                sh.milli -= wl.gpu_milli
                sh.mem_milli_gib -= memory_milli_gib(wl.memory_gib)
                sh.tenants[w] -= 1
                if sh.milli == 0 and sum(sh.tenants.values()) == 0:
                    del self.shared[n][idx[0]]
                    self._take(n, -1, -1)
                    self.gpu_w[n] -= info.shared_gpu_delta_w
            self.cpu[n] -= wl.cpu_milli
            self.hmem[n] -= wl.host_memory_mib
            self.replicas[n] -= 1
            self._repower(n, before)

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
        return number_rows(self.p, [(w, n, idx, milli, cap) for w, n, idx, milli, cap in self.placements])

    @classmethod
    def from_placements(cls, prepared: Prepared, placements: Iterable[ReplicaPlacement]) -> FleetState:
        """The usage of a finished plan (for explanations); placements must name known nodes."""
        st = cls(prepared)
        wi = {w.name: i for i, w in enumerate(prepared.problem.workloads)}
        for pl in placements:
            st.add_at(wi[pl.workload], prepared.node_index[pl.node], pl.gpu_indices, pl.power_cap_w)
        return st


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
