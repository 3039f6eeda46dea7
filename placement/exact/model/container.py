"""The variable container: owns the decision variables and answers questions about them.

The container creates every variable of the formulation (see ``placement.exact.model``) from
the prepared data, once; the constraint families then only ask it for terms
(``replicas_on(w, n)``, ``node_power_terms(n)``) and add constraints. ``extract``
turns a value vector back into counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from placement.core.candidates import Candidate, Prepared, spread_entity
from placement.core.domain import current_cap_w, memory_milli_gib
from placement.core.energy import replica_work
from placement.core.objective import throughput_pct, top_throughput_pct
from placement.exact.model.ir import Direction, IntegerProgram

Terms = dict[int, int]


@dataclass(frozen=True)
class ObjectiveTerms:
    """A family's share of one objective tier."""

    tier: str  # placed_work, energy, moves, fragmentation
    direction: Direction
    terms: Terms
    constant: int = 0


@dataclass(frozen=True)
class Counts:
    """A solution in count form, before GPU indices are chosen."""

    whole: dict[tuple[int, int, int], int]  # (workload, node, level) -> replicas
    shared: dict[tuple[int, int], dict[int, int]]  # (node, slot) -> {workload: replicas}
    placed: frozenset[int]
    # (node, GPU index) -> {workload: replicas} beside the pinned fractional replicas on that GPU
    beside_pinned: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)


def add_terms(into: Terms, terms: Terms, factor: int = 1) -> Terms:
    for i, c in terms.items():
        into[i] = into.get(i, 0) + c * factor
    return into


@dataclass
class Container:
    prepared: Prepared
    program: IntegerProgram = field(default_factory=IntegerProgram)
    y: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (w, n, level)
    u: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (w, n, slot)
    v: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (w, n, GPU index a pinned share holds)
    s: dict[tuple[int, int], int] = field(default_factory=dict)  # (n, slot)
    o: dict[int, int] = field(default_factory=dict)  # n
    z: dict[int, int] = field(default_factory=dict)  # w
    a: dict[tuple[int, str], int] = field(default_factory=dict)  # (w, entity)
    k: dict[tuple[int, int], int] = field(default_factory=dict)  # (w, n)
    # derived indexes
    cands_on: dict[int, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
    slots: dict[int, int] = field(default_factory=dict)  # node -> shared slots modelled
    _on: dict[tuple[int, int], Terms] = field(default_factory=dict)
    # pinned replicas (placement.core.pinned): constants, no variables
    pinned_used: dict[int, set[int]] = field(default_factory=dict)  # node -> GPU indices they hold
    pinned_gpu_w: dict[int, int] = field(default_factory=dict)  # node -> their GPU watts above idle
    pinned_shared: dict[int, int] = field(default_factory=dict)  # node -> shared GPUs they hold
    # node -> {GPU index: (milli, milli-GiB)} that pinned fractional replicas use of a GPU they share
    pinned_share_use: dict[int, dict[int, tuple[int, int]]] = field(default_factory=dict)
    pinned_cpu: dict[int, int] = field(default_factory=dict)
    pinned_hmem: dict[int, int] = field(default_factory=dict)
    pinned_work: int = 0
    pinned_current: int = 0

    @classmethod
    def create(cls, prepared: Prepared) -> Container:
        c = cls(prepared)
        c._make_variables()
        return c

    # ------------------------------------------------------------------ variables
    def _pinned(self) -> None:
        p = self.prepared
        wl = p.problem.workloads
        for w in p.pinned:
            wk = wl[w]
            for cr in wk.current:
                n = p.node_index[cr.node]
                gpu = p.nodes[n].gpu
                used = self.pinned_used.setdefault(n, set())
                cap = current_cap_w(wk, cr, gpu)
                for j in cr.gpu_indices:
                    if j not in used:
                        self.pinned_gpu_w[n] = self.pinned_gpu_w.get(n, 0) + cap - gpu.idle_power_w
                        if wk.is_fractional:
                            self.pinned_shared[n] = self.pinned_shared.get(n, 0) + 1
                    used.add(j)
                    if wk.is_fractional:
                        got = self.pinned_share_use.setdefault(n, {}).get(j, (0, 0))
                        self.pinned_share_use[n][j] = (
                            got[0] + wk.gpu_milli,
                            got[1] + memory_milli_gib(wk.memory_gib),
                        )
                self.pinned_cpu[n] = self.pinned_cpu.get(n, 0) + wk.cpu_milli
                self.pinned_hmem[n] = self.pinned_hmem.get(n, 0) + wk.host_memory_mib
                pct = top_throughput_pct(gpu) if wk.is_fractional else throughput_pct(gpu, cap)
                self.pinned_work += replica_work(wk, pct)
                self.pinned_current += 1

    def free_gpu_count(self, n: int) -> int:
        """GPUs of node ``n`` that pinned replicas leave to the model."""
        return self.prepared.nodes[n].node.gpu_count - len(self.pinned_used.get(n, ()))

    def beside_pinned_max(self, c: Candidate) -> list[tuple[int, int]]:
        """(GPU index, most replicas) of fractional candidate ``c`` on the GPUs of its node that
        pinned fractional replicas share, where their milli and memory leave room for one."""
        wk = self.prepared.problem.workloads[c.workload]
        cap = memory_milli_gib(self.prepared.nodes[c.node].gpu.memory_gib)
        need = memory_milli_gib(wk.memory_gib)
        out = []
        for j, (milli, mem) in sorted(self.pinned_share_use.get(c.node, {}).items()):
            most = min((1000 - milli) // wk.gpu_milli, c.max_count)
            if need > 0:
                most = min(most, (cap - mem) // need)
            if most > 0:
                out.append((j, most))
        return out

    def pinned_draw_w(self, n: int) -> int:
        """Constant IT draw the pinned replicas add on node ``n`` beyond its model terms."""
        if n not in self.pinned_used:
            return 0
        extra = self.pinned_gpu_w.get(n, 0)
        return extra if n in self.cands_on else self.prepared.nodes[n].on_power_w + extra

    def _make_variables(self) -> None:
        p = self.prepared
        ip = self.program
        wl = p.problem.workloads
        self._pinned()
        for wi, cands in sorted(p.by_workload.items()):
            self.z[wi] = ip.new_bool(f"z[{wl[wi].name}]")
            for c in cands:
                self.cands_on[c.node].append(c)
        # shared slots: as many as the fractional candidates on the node could fill
        for n, on_n in sorted(self.cands_on.items()):
            frac = [c for c in on_n if c.per_gpu > 0]
            if frac:
                info = p.nodes[n]
                need = sum(-(-c.max_count // c.per_gpu) for c in frac)
                slots = min(self.free_gpu_count(n), need)
                if info.shared_gpu_delta_w > 0:  # shared GPUs the node's caps can power at all
                    cap_w = min(p.domains[info.domain_key].usable_power_w, info.site.usable_power_w)
                    spare = cap_w - info.on_power_w - self.pinned_gpu_w.get(n, 0)
                    slots = min(slots, spare // info.shared_gpu_delta_w)
                self.slots[n] = max(0, slots)
        for n, on_n in sorted(self.cands_on.items()):
            name = p.nodes[n].node.name
            on_lb = 1 if n in self.pinned_used else 0  # a node holding pinned replicas stays on
            self.o[n] = ip.new_var(f"o[{name}]", on_lb, 1)
            for j in range(self.slots.get(n, 0)):
                self.s[(n, j)] = ip.new_bool(f"s[{name},{j}]")
            for c in on_n:
                w = wl[c.workload]
                terms: Terms = {}
                if c.per_gpu == 0:
                    for li, ub in zip(c.levels, c.level_max, strict=True):
                        v = ip.new_var(f"y[{w.name},{name},{li}]", 0, ub)
                        self.y[(c.workload, n, li)] = v
                        terms[v] = 1
                else:
                    for j in range(self.slots[n]):
                        ub = min(c.per_gpu, c.max_count)
                        v = ip.new_var(f"u[{w.name},{name},{j}]", 0, ub)
                        self.u[(c.workload, n, j)] = v
                        terms[v] = 1
                    for j, ub in self.beside_pinned_max(c):
                        v = ip.new_var(f"v[{w.name},{name},{j}]", 0, ub)
                        self.v[(c.workload, n, j)] = v
                        terms[v] = 1
                self._on[(c.workload, n)] = terms
                cur = p.current.get((c.workload, n), 0)
                if cur > 0:
                    self.k[(c.workload, n)] = ip.new_var(f"k[{w.name},{name}]", 0, min(cur, c.max_count))
        for wi, cands in sorted(p.by_workload.items()):
            sp = wl[wi].spread
            if sp is None:
                continue
            for e in sorted({spread_entity(p.nodes[c.node], sp.level) for c in cands}):
                self.a[(wi, e)] = ip.new_bool(f"a[{wl[wi].name},{e}]")

    # ------------------------------------------------------------------ questions
    def candidate_nodes(self) -> list[int]:
        return sorted(self.cands_on)

    def replicas_on(self, w: int, n: int) -> Terms:
        """Terms of the replica count of workload ``w`` on node ``n`` (empty if not a candidate)."""
        return dict(self._on.get((w, n), {}))

    def replicas_of(self, w: int, nodes: list[int] | None = None) -> Terms:
        out: Terms = {}
        for c in self.prepared.by_workload.get(w, ()):
            if nodes is None or c.node in nodes:
                add_terms(out, self._on[(w, c.node)])
        return out

    def replicas_in(self, w: int, pred: object) -> Terms:
        """Replica count of ``w`` over the candidate nodes for which ``pred(node_info)`` holds."""
        out: Terms = {}
        for c in self.prepared.by_workload.get(w, ()):
            if pred(self.prepared.nodes[c.node]):  # type: ignore[operator]
                add_terms(out, self._on[(w, c.node)])
        return out

    def gpu_terms(self, n: int) -> Terms:
        """Whole GPUs held on node ``n`` plus shared GPUs in use (left side of C4)."""
        wl = self.prepared.problem.workloads
        out: Terms = {}
        for c in self.cands_on.get(n, ()):
            if c.per_gpu == 0:
                for li in c.levels:
                    out[self.y[(c.workload, n, li)]] = wl[c.workload].gpus
        for j in range(self.slots.get(n, 0)):
            out[self.s[(n, j)]] = 1
        return out

    def node_power_terms(self, n: int) -> Terms:
        """IT draw of node ``n`` in watts (rule 7) as linear terms; 0 when the node is off."""
        info = self.prepared.nodes[n]
        gpu = info.gpu
        wl = self.prepared.problem.workloads
        out: Terms = {self.o[n]: info.on_power_w}
        for c in self.cands_on.get(n, ()):
            if c.per_gpu == 0:
                for li in c.levels:
                    delta = wl[c.workload].gpus * (gpu.power_levels[li].power_cap_w - gpu.idle_power_w)
                    if delta:
                        out[self.y[(c.workload, n, li)]] = delta
        if info.shared_gpu_delta_w:
            for j in range(self.slots.get(n, 0)):
                out[self.s[(n, j)]] = info.shared_gpu_delta_w
        return out

    def shared_slot_terms(self, n: int, j: int) -> list[tuple[int, int]]:
        """(workload, u variable) pairs on shared slot ``j`` of node ``n``."""
        return [(c.workload, self.u[(c.workload, n, j)]) for c in self.cands_on.get(n, ()) if c.per_gpu > 0]

    def beside_pinned_terms(self, n: int, j: int) -> list[tuple[int, int]]:
        """(workload, v variable) pairs on GPU ``j`` of node ``n``, which pinned fractional replicas share."""
        return [
            (c.workload, self.v[(c.workload, n, j)])
            for c in self.cands_on.get(n, ())
            if (c.workload, n, j) in self.v
        ]

    # ------------------------------------------------------------------ solution
    def tighten(self, values: list[int]) -> list[int]:
        """Raise every k[w, n] to min(its bound, replicas there): the plan stays, moves become exact."""
        out = list(values)
        for (w, n), kv in self.k.items():
            on = sum(out[v] for v in self._on[(w, n)])
            out[kv] = min(self.program.upper[kv], on)
        return out

    def extract(self, values: list[int]) -> Counts:
        whole = {key: values[v] for key, v in self.y.items() if values[v] > 0}
        shared: dict[tuple[int, int], dict[int, int]] = {}
        for (w, n, j), v in self.u.items():
            if values[v] > 0:
                shared.setdefault((n, j), {})[w] = values[v]
        beside: dict[tuple[int, int], dict[int, int]] = {}
        for (w, n, j), v in self.v.items():
            if values[v] > 0:
                beside.setdefault((n, j), {})[w] = values[v]
        placed = frozenset(w for w, v in self.z.items() if values[v] > 0)
        return Counts(whole, shared, placed, beside)
