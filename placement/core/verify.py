"""The independent plan verifier: every hard rule, the budgets and the objective, from the plan alone.

``verify(problem, plan)`` never calls a solver and never trusts a number the plan
carries: it recomputes power from the placements (``budgets.compute_budgets``), the
objective (``objective.evaluate``) and latency (``network.latency_table``) and lists
every breach, each as a ``Violation(rule, subject, message)`` with its numbers in
plain language. ``check`` raises ``PlanRejected`` when there is any.

Rules (docs/ARCHITECTURE.md, "Rules of a valid plan"), and the subject each names:

==============  =====================================================  ===================
rule            what                                                   subject
==============  =====================================================  ===================
node_state      1: replicas only on READY nodes                        ``workload[i]``
gpu_type        2: allowed type; fractional needs a shareable type     ``workload[i]``
gpu_memory      3: memory per GPU; fractional memory per shared GPU    ``workload[i]`` /
                in whole milli-GiB (``domain.memory_milli_gib``)       ``node/gpuK``
gpu_count       4: ``gpus`` distinct in-range indices, GPU used by     ``workload[i]`` /
                at most one whole replica                              ``node/gpuK``
gpu_share       4: shares <= 1000 milli, whole or shared never both,   ``workload[i]`` /
                ``gpu_milli`` consistent with the workload kind        ``node/gpuK``
host_resources  5: tracked CPU and host memory                         node
power_cap       6: a level not below the floor; fractional uncapped    ``workload[i]``
domain_power    7: power domain IT draw <= usable                      power domain
site_power      7: site IT draw <= usable                              site
latency         8: shortest path region -> site <= limit               ``workload[i]``
backup          9: site backup minutes >= workload's                   ``workload[i]``
replicas        10: min <= r <= max; replica indices unique, >= 0      workload
spread          11: distinct sites / domains / nodes                   workload
site_survival   12: r - r_s >= survivors_required for every site       workload
reference       workload, node, site, power domain exist and agree     ``workload[i]`` / node
budget          the plan's budgets equal the recomputed ones           ``gpus[node/K].field``
                (floats to 1e-6 relative)                              ``nodes[n].field``, ...
objective       the plan's objective equals the recomputed one         tier name
unplaced        unplaced lists exactly the workloads with no replica   workload
disruption      moves of running replicas (current, not pinned) off    ``options.maxMoves``,
                nodes the input does not force them off (not READY,   site, power domain,
                a static rule, a power domain or site the current     workload
                placement overdraws, a node or power domain over a
                lowered blast-radius cap, every node of a workload
                scaled past what runs or whose current replicas break
                its spread or site survival) within the budgets
preemption      a running workload none of whose replicas is forced   workload
                is left out only where a workload of higher priority
                gained a replica on one of its nodes or power domains
blast_radius    16: at most ``max_per_node`` replicas of a workload    node /
                on a node, ``max_per_power_domain`` in a power domain  ``site/power domain``
==============  =====================================================  ===================

Placements naming an unknown workload or node are reported under ``reference`` and
skipped by the other per-replica checks. Everything is a single pass over dicts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from placement.core.budgets import FULL_GPU_MILLI, compute_budgets
from placement.core.domain import (
    GpuType,
    Node,
    NodeState,
    Plan,
    PowerBudgets,
    Problem,
    ReplicaPlacement,
    SpreadLevel,
    Workload,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels
from placement.core.errors import PlanRejected
from placement.core.network import latency_table
from placement.core.objective import evaluate

log = logging.getLogger(__name__)

RULES = (
    "node_state",
    "gpu_type",
    "gpu_memory",
    "gpu_count",
    "gpu_share",
    "host_resources",
    "power_cap",
    "domain_power",
    "site_power",
    "latency",
    "backup",
    "replicas",
    "spread",
    "site_survival",
    "reference",
    "budget",
    "objective",
    "unplaced",
    "pinned",
    "disruption",
    "preemption",
    "blast_radius",
)

_EPS = 1e-9
_BUDGET_REL_TOL = 1e-6
_BUDGET_ABS_TOL = 1e-9


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.message}"


@dataclass
class _GpuOccupancy:
    whole: list[str] = field(default_factory=list)  # replica subjects holding it whole
    shared: list[str] = field(default_factory=list)  # fractional replica subjects on it
    shared_milli: int = 0
    shared_memory_milli_gib: int = 0  # rule 3 reads memory in whole milli-GiB (domain.memory_milli_gib)


@dataclass
class _WorkloadStats:
    replicas: int = 0
    per_site: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    domains: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    indices: dict[int, int] = field(default_factory=lambda: defaultdict(int))


def _count_rules(w: Workload, st: _WorkloadStats) -> list[tuple[str, str]]:
    """Rules 10-12 for a workload with the replicas ``st`` counts: (rule, message) per breach."""
    out: list[tuple[str, str]] = []
    r = st.replicas
    # 10. replicas
    if r < w.min_replicas:
        out.append(
            ("replicas", f"{w.name} has {r} replicas, at least {w.min_replicas} (or none) are required")
        )
    if r > w.max_replicas:
        out.append(("replicas", f"{w.name} has {r} replicas, at most {w.max_replicas} allowed"))
    # 11. spread
    if w.spread is not None:
        level = w.spread.level
        distinct = (
            len(st.per_site)
            if level is SpreadLevel.SITE
            else len(st.domains)
            if level is SpreadLevel.POWER_DOMAIN
            else len(st.nodes)
        )
        if distinct < w.spread.min_distinct:
            noun = {SpreadLevel.SITE: "sites", SpreadLevel.POWER_DOMAIN: "power domains"}.get(level, "nodes")
            out.append(
                (
                    "spread",
                    f"{w.name} uses {distinct} distinct {noun}, at least {w.spread.min_distinct} required",
                )
            )
    # 12. site-loss survival
    need = w.survivors_required
    if need > 0:
        for site_name, r_s in sorted(st.per_site.items()):
            if r - r_s < need:
                out.append(
                    (
                        "site_survival",
                        f"losing site {site_name} leaves {r - r_s} of {r} replicas of {w.name}, "
                        f"{need} required ({w.survive_site_loss_pct}% of {w.min_replicas})",
                    )
                )
        if r < need:
            out.append(
                ("site_survival", f"{w.name} has {r} replicas, {need} must survive the loss of any site")
            )
    return out


def _subject(p: ReplicaPlacement) -> str:
    return f"{p.workload}[{p.replica}]"


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Verifier:
    def __init__(self, problem: Problem, plan: Plan) -> None:
        self.problem = problem
        self.plan = plan
        fleet = problem.fleet
        self.workloads = {w.name: w for w in problem.workloads}
        self.nodes = {n.name: n for n in fleet.nodes}
        self.sites = {s.name: s for s in fleet.sites}
        self.domains = {d.name: d for d in fleet.power_domains}
        self.gpu_types = {g.name: g for g in fleet.gpu_types}
        self.out: list[Violation] = []
        self.gpus: dict[tuple[str, int], _GpuOccupancy] = {}
        self.host_cpu: dict[str, int] = defaultdict(int)
        self.host_mem: dict[str, int] = defaultdict(int)
        self.stats: dict[str, _WorkloadStats] = {}
        self._allowed_caps: dict[tuple[str, str], frozenset[int]] = {}
        self._latency: dict[tuple[str, str], float] | None = None

    def add(self, rule: str, subject: str, message: str) -> None:
        self.out.append(Violation(rule, subject, message))

    # ------------------------------------------------------------------ helpers

    def latency(self) -> dict[tuple[str, str], float]:
        if self._latency is None:
            self._latency = latency_table(self.problem.fleet)
        return self._latency

    def allowed_caps(self, w: Workload, gpu: GpuType) -> frozenset[int]:
        key = (w.name, gpu.name)
        caps = self._allowed_caps.get(key)
        if caps is None:
            caps = frozenset(gpu.power_levels[i].power_cap_w for i in allowed_levels(w, gpu))
            self._allowed_caps[key] = caps
        return caps

    # ------------------------------------------------------------ per placement

    def placement(self, p: ReplicaPlacement) -> None:
        subj = _subject(p)
        w = self.workloads.get(p.workload)
        if w is None:
            self.add("reference", subj, f"workload {p.workload} does not exist")
            return
        st = self.stats.get(w.name)
        if st is None:
            st = self.stats[w.name] = _WorkloadStats()
        st.replicas += 1
        st.indices[p.replica] += 1
        if p.replica < 0:
            self.add("replicas", w.name, f"replica index {p.replica} of {w.name} is negative")

        node = self.nodes.get(p.node)
        if node is None:
            self.add("reference", subj, f"replica {p.replica} of {w.name}: node {p.node} does not exist")
            return
        st.per_site[node.site] += 1
        st.domains.add(node.power_domain)
        st.nodes.add(node.name)
        where = f"replica {p.replica} of {w.name} on node {node.name}"
        if p.site != node.site:
            self.add("reference", subj, f"{where}: plan says site {p.site}, the node is in site {node.site}")
        if p.power_domain != node.power_domain:
            self.add(
                "reference",
                subj,
                f"{where}: plan says power domain {p.power_domain}, "
                f"the node is in power domain {node.power_domain}",
            )

        if node.site not in self.sites:
            self.add("reference", subj, f"{where}: the node's site {node.site} does not exist")
        pd = self.domains.get(node.power_domain)
        if pd is None:
            self.add(
                "reference", subj, f"{where}: the node's power domain {node.power_domain} does not exist"
            )
        elif pd.site != node.site:
            self.add(
                "reference",
                subj,
                f"{where}: the node's power domain {pd.name} is in site {pd.site}, the node in site {node.site}",
            )

        # 1. node state
        if node.state is not NodeState.READY:
            self.add(
                "node_state", subj, f"{where}: node is {node.state.value}, only READY nodes take replicas"
            )

        # 5. host resources (summed, checked per node afterwards)
        self.host_cpu[node.name] += w.cpu_milli
        self.host_mem[node.name] += w.host_memory_mib

        site = self.sites.get(node.site)
        if site is not None:
            # 8. latency
            if w.max_latency_ms > 0:
                lat = self.latency().get((w.user_region, site.name))
                if lat is None:
                    self.add(
                        "latency",
                        subj,
                        f"{where}: no network path from {w.user_region} to site {site.name}, "
                        f"limit {w.max_latency_ms:.1f} ms",
                    )
                elif lat > w.max_latency_ms + _EPS:
                    self.add(
                        "latency",
                        subj,
                        f"{where}: latency from {w.user_region} to site {site.name} is {lat:.1f} ms, "
                        f"limit {w.max_latency_ms:.1f} ms",
                    )
            # 9. backup
            if site.backup_minutes + _EPS < w.backup_minutes:
                self.add(
                    "backup",
                    subj,
                    f"{where}: site {site.name} rides through {_fmt(site.backup_minutes)} min, "
                    f"the workload needs {_fmt(w.backup_minutes)} min",
                )

        gpu = self.gpu_types.get(node.gpu_type)
        if gpu is None:
            self.add("reference", subj, f"{where}: the node's GPU type {node.gpu_type} does not exist")
            return

        # 2. GPU type
        if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
            allowed = ", ".join(w.allowed_gpu_types)
            self.add("gpu_type", subj, f"{where}: GPU type {gpu.name} is not allowed (allowed: {allowed})")
        if w.is_fractional and not gpu.shareable:
            self.add(
                "gpu_type",
                subj,
                f"{where}: fractional replica on GPU type {gpu.name}, which is not shareable",
            )

        if w.is_fractional:
            self._fractional(p, w, node, gpu, subj, where)
        else:
            self._whole(p, w, node, gpu, subj, where)

    def _indices_in_range(self, p: ReplicaPlacement, node: Node, subj: str, where: str) -> list[int]:
        good: list[int] = []
        seen: set[int] = set()
        for idx in p.gpu_indices:
            if not 0 <= idx < node.gpu_count:
                self.add(
                    "gpu_count",
                    subj,
                    f"{where}: GPU index {idx} is outside 0..{node.gpu_count - 1}",
                )
            elif idx in seen:
                self.add("gpu_count", subj, f"{where}: GPU index {idx} is listed twice")
            else:
                seen.add(idx)
                good.append(idx)
        return good

    def _whole(
        self, p: ReplicaPlacement, w: Workload, node: Node, gpu: GpuType, subj: str, where: str
    ) -> None:
        # 4. count and indices
        if len(p.gpu_indices) != w.gpus:
            self.add(
                "gpu_count", subj, f"{where}: holds {len(p.gpu_indices)} GPUs, the workload needs {w.gpus}"
            )
        if p.gpu_milli != FULL_GPU_MILLI:
            self.add(
                "gpu_share",
                subj,
                f"{where}: a whole-GPU replica holds {FULL_GPU_MILLI} milli of each GPU, the plan says {p.gpu_milli}",
            )
        for idx in self._indices_in_range(p, node, subj, where):
            occ = self.gpus.get((node.name, idx))
            if occ is None:
                occ = self.gpus[(node.name, idx)] = _GpuOccupancy()
            occ.whole.append(subj)
        # 3. memory per GPU
        per_gpu = w.memory_per_gpu_gib
        if memory_milli_gib(per_gpu) > memory_milli_gib(gpu.memory_gib):
            self.add(
                "gpu_memory",
                subj,
                f"{where}: needs {_fmt(per_gpu)} GiB per GPU, a {gpu.name} has {_fmt(gpu.memory_gib)} GiB",
            )
        # 6. power cap
        caps = self.allowed_caps(w, gpu)
        if p.power_cap_w not in caps:
            levels = [lv.power_cap_w for lv in gpu.power_levels]
            if p.power_cap_w not in levels:
                why = f"is not one of the {gpu.name} levels {levels}"
            else:
                floor_w = w.min_power_cap_pct * gpu.max_power_w / 100.0
                why = (
                    f"is below the workload's floor of {_fmt(floor_w)} W "
                    f"({w.min_power_cap_pct}% of {gpu.max_power_w} W)"
                )
            self.add("power_cap", subj, f"{where}: power cap {p.power_cap_w} W {why}")

    def _fractional(
        self, p: ReplicaPlacement, w: Workload, node: Node, gpu: GpuType, subj: str, where: str
    ) -> None:
        if len(p.gpu_indices) != 1:
            self.add(
                "gpu_count",
                subj,
                f"{where}: a fractional replica holds exactly 1 GPU, the plan lists {len(p.gpu_indices)}",
            )
        if p.gpu_milli != w.gpu_milli:
            self.add(
                "gpu_share",
                subj,
                f"{where}: holds {p.gpu_milli} milli, the workload asks for {w.gpu_milli} milli",
            )
        for idx in self._indices_in_range(p, node, subj, where):
            occ = self.gpus.get((node.name, idx))
            if occ is None:
                occ = self.gpus[(node.name, idx)] = _GpuOccupancy()
            occ.shared.append(subj)
            occ.shared_milli += w.gpu_milli
            occ.shared_memory_milli_gib += memory_milli_gib(w.memory_gib)
        # 6. a shared GPU runs uncapped
        if p.power_cap_w != gpu.max_power_w:
            self.add(
                "power_cap",
                subj,
                f"{where}: a fractional replica's GPU runs uncapped at {gpu.max_power_w} W, "
                f"the plan says {p.power_cap_w} W",
            )

    # --------------------------------------------------------------- aggregates

    def gpu_rules(self) -> None:
        for (node_name, idx), occ in self.gpus.items():
            subj = f"{node_name}/gpu{idx}"
            what = f"GPU {idx} of node {node_name}"
            if len(occ.whole) > 1:
                self.add(
                    "gpu_count",
                    subj,
                    f"{what} is held by {len(occ.whole)} whole-GPU replicas ({', '.join(occ.whole)}), at most 1",
                )
            if occ.whole and occ.shared:
                self.add(
                    "gpu_share",
                    subj,
                    f"{what} is both whole-used ({', '.join(occ.whole)}) and shared ({', '.join(occ.shared)})",
                )
            if occ.shared_milli > FULL_GPU_MILLI:
                self.add(
                    "gpu_share",
                    subj,
                    f"{what} is shared by {', '.join(occ.shared)} for {occ.shared_milli} milli, "
                    f"at most {FULL_GPU_MILLI} ({occ.shared_milli - FULL_GPU_MILLI} over)",
                )
            if occ.shared:
                gpu = self.gpu_types[self.nodes[node_name].gpu_type]
                if occ.shared_memory_milli_gib > memory_milli_gib(gpu.memory_gib):
                    self.add(
                        "gpu_memory",
                        subj,
                        f"{what}: its fractional replicas ({', '.join(occ.shared)}) need "
                        f"{_fmt(occ.shared_memory_milli_gib / 1000)} GiB, a {gpu.name} has "
                        f"{_fmt(gpu.memory_gib)} GiB (in whole milli-GiB, rounded to the nearest)",
                    )

    def host_rules(self) -> None:
        for name, cpu in self.host_cpu.items():
            node = self.nodes[name]
            if node.cpu_milli > 0 and cpu > node.cpu_milli:
                self.add(
                    "host_resources",
                    name,
                    f"node {name}: replicas request {cpu} CPU milli, the node has {node.cpu_milli} "
                    f"({cpu - node.cpu_milli} over)",
                )
            mem = self.host_mem[name]
            if node.host_memory_mib > 0 and mem > node.host_memory_mib:
                self.add(
                    "host_resources",
                    name,
                    f"node {name}: replicas request {mem} MiB of host memory, the node has "
                    f"{node.host_memory_mib} MiB ({mem - node.host_memory_mib} over)",
                )

    def power_rules(self, budgets: PowerBudgets) -> None:
        domain_w: dict[str, int] = defaultdict(int)
        site_w: dict[str, int] = defaultdict(int)
        for nb in budgets.nodes:
            domain_w[nb.power_domain] += nb.it_w
            site_w[nb.site] += nb.it_w
        for name in sorted(self.domains):
            pd = self.domains[name]
            it_w, cap_w = domain_w.get(name, 0), pd.usable_power_w
            if it_w > cap_w:
                self.add(
                    "domain_power",
                    name,
                    f"power domain {name} in site {pd.site} draws {it_w} W, usable cap {cap_w} W "
                    f"({it_w - cap_w} W over)",
                )
        for name in sorted(self.sites):
            it_w, cap_w = site_w.get(name, 0), self.sites[name].usable_power_w
            if it_w > cap_w:
                self.add(
                    "site_power",
                    name,
                    f"site {name} draws {it_w} W, usable cap {cap_w} W ({it_w - cap_w} W over)",
                )

    def workload_rules(self) -> None:
        for w in self.problem.workloads:
            st = self.stats.get(w.name)
            if st is None:
                continue
            for idx, count in sorted(st.indices.items()):
                if count > 1:
                    self.add("replicas", w.name, f"replica index {idx} of {w.name} is used {count} times")
            for rule, message in _count_rules(w, st):
                self.add(rule, w.name, message)

    def unplaced_rules(self) -> None:
        listed: dict[str, int] = defaultdict(int)
        for u in self.plan.unplaced:
            listed[u.workload] += 1
        for name, count in sorted(listed.items()):
            if name not in self.workloads:
                self.add("unplaced", name, f"unplaced lists {name}, which is not a workload of the problem")
            elif name in self.stats:
                self.add(
                    "unplaced",
                    name,
                    f"{name} is listed as unplaced but has {self.stats[name].replicas} replicas",
                )
            if count > 1:
                self.add("unplaced", name, f"{name} is listed as unplaced {count} times")
        for w in self.problem.workloads:
            if w.name not in self.stats and w.name not in listed:
                self.add("unplaced", w.name, f"{w.name} has no replica and is missing from unplaced")

    def budget_rules(self, expected: PowerBudgets) -> None:
        got = self.plan.budgets
        if got == expected:
            return
        _compare_entries(
            self, "gpus", got.gpus, expected.gpus, lambda g: (g.node, g.index), lambda k: f"{k[0]}/{k[1]}"
        )
        _compare_entries(self, "nodes", got.nodes, expected.nodes, lambda n: n.node, str)
        _compare_entries(
            self, "power_domains", got.power_domains, expected.power_domains, lambda b: b.name, str
        )
        _compare_entries(self, "sites", got.sites, expected.sites, lambda b: b.name, str)
        for name in ("energy_cost_per_h", "carbon_kg_per_h"):
            a, b = getattr(got, name), getattr(expected, name)
            if not _same(a, b):
                self.add("budget", name, f"{name} is {a!r} in the plan, recomputed {b!r}")

    def objective_rules(self) -> None:
        expected = evaluate(self.problem, self.plan.placements)
        got = self.plan.objective
        for f in dataclasses.fields(expected):
            a, b = getattr(got, f.name), getattr(expected, f.name)
            if a != b:
                self.add("objective", f.name, f"objective tier {f.name} is {a} in the plan, recomputed {b}")

    def pinned_rules(self) -> None:
        """A pinned workload's replicas are exactly its current ones: same node, same GPUs, and the
        recorded cap (the board maximum where none is recorded)."""
        pinned = {w.name: w for w in self.problem.workloads if w.pinned}
        if not pinned:
            return
        have: dict[str, list[tuple[str, tuple[int, ...]]]] = {name: [] for name in pinned}
        for p in self.plan.placements:
            w = pinned.get(p.workload)
            if w is None:
                continue
            have[w.name].append((p.node, tuple(sorted(p.gpu_indices))))
            node = self.nodes.get(p.node)
            gpu = self.gpu_types.get(node.gpu_type) if node is not None else None
            recorded = {(c.node, tuple(sorted(c.gpu_indices))): c.power_cap_w for c in w.current}
            cap = recorded.get((p.node, tuple(sorted(p.gpu_indices))))
            if gpu is None or cap is None:
                continue  # not a current replica: reported below
            runs_at = gpu.max_power_w if w.is_fractional or cap == 0 else cap
            if p.power_cap_w != runs_at:
                self.add(
                    "pinned",
                    f"{w.name}[{p.replica}]",
                    f"pinned replica {p.replica} of {w.name} is capped at {p.power_cap_w} W; "
                    f"it runs at {runs_at} W today",
                )
        for name, w in pinned.items():
            want = sorted((c.node, tuple(sorted(c.gpu_indices))) for c in w.current)
            got = sorted(have[name])
            if got != want:
                missing = [f"{n}{list(g)}" for n, g in want if (n, g) not in got]
                extra = [f"{n}{list(g)}" for n, g in got if (n, g) not in want]
                detail = (
                    "; ".join(
                        part
                        for part in (
                            f"missing {', '.join(missing)}" if missing else "",
                            f"not current {', '.join(extra)}" if extra else "",
                        )
                        if part
                    )
                    or f"{len(got)} replicas for {len(want)} current ones"
                )
                self.add("pinned", name, f"{name} is pinned to its {len(want)} current replicas: {detail}")

    def _forced(self) -> dict[str, set[str]]:
        """Per running workload, the nodes the input forces its current replicas off (see RULES)."""
        wls = self.problem.workloads
        node_w: dict[str, int] = defaultdict(int)
        out: dict[str, set[str]] = defaultdict(set)
        valid: list[tuple[Workload, Node]] = []
        for w in wls:
            for c in w.current:
                node = self.nodes.get(c.node)
                gpu = self.gpu_types.get(node.gpu_type) if node is not None else None
                site = self.sites.get(node.site) if node is not None else None
                if node is None or gpu is None or site is None or not self._may_run(w, node, gpu, site):
                    if not w.pinned:
                        out[w.name].add(c.node)
                    continue
                cap = gpu.max_power_w if w.is_fractional or not c.power_cap_w else c.power_cap_w
                if node.name not in node_w:
                    node_w[node.name] = node.host_power_w + node.gpu_count * gpu.idle_power_w
                node_w[node.name] += len(c.gpu_indices) * (
                    cap - gpu.idle_power_w
                )  # shared: counted per tenant
                valid.append((w, node))
        dom_w: dict[str, int] = defaultdict(int)
        site_w: dict[str, int] = defaultdict(int)
        for name, watts in node_w.items():
            dom_w[self.nodes[name].power_domain] += watts
            site_w[self.nodes[name].site] += watts
        for w, node in valid:
            pd = self.domains.get(node.power_domain)
            over = (pd is not None and dom_w[pd.name] > pd.usable_power_w) or site_w[node.site] > self.sites[
                node.site
            ].usable_power_w
            if over and not w.pinned:
                out[w.name].add(node.name)
        for w in wls:  # scaled up past what runs: the change re-places it whole (Workload.protected)
            if w.current and not w.pinned and len(w.current) < w.min_replicas:
                out[w.name].update(c.node for c in w.current)
            elif (
                w.current
                and not w.pinned
                and any(rule in ("spread", "site_survival") for rule, _m in self._current_breaches(w))
            ):  # where they run, its replicas break the spread or survival the input now asks
                out[w.name].update(c.node for c in w.current if c.node in self.nodes)
        # 16: a lowered cap forces the current replicas off a node over max_per_node, and off every
        # node of a power domain over max_per_power_domain (which of them go is the plan's choice)
        mine: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for w, node in valid:
            if w.capped and not w.pinned:
                mine[w.name][node.name] += 1
        for name, here in mine.items():
            w = self.workloads[name]
            per_domain: dict[tuple[str, str], int] = defaultdict(int)
            for node_name, count in here.items():
                node = self.nodes[node_name]
                per_domain[(node.site, node.power_domain)] += count
                if w.max_per_node and count > w.max_per_node:
                    out[name].add(node_name)
            for node_name in here:
                node = self.nodes[node_name]
                if (
                    w.max_per_power_domain
                    and per_domain[(node.site, node.power_domain)] > w.max_per_power_domain
                ):
                    out[name].add(node_name)
        return out

    def blast_rules(self) -> None:
        """16: a workload's replicas per node and per power domain within its caps (0: no limit)."""
        capped = {w.name: w for w in self.problem.workloads if w.capped}
        if not capped:
            return
        on_node: dict[tuple[str, str], int] = defaultdict(int)
        in_domain: dict[tuple[str, str, str], int] = defaultdict(int)
        for p in self.plan.placements:
            node = self.nodes.get(p.node)
            if p.workload not in capped or node is None:
                continue  # an unknown node is a reference violation
            on_node[(p.workload, node.name)] += 1
            in_domain[(p.workload, node.site, node.power_domain)] += 1
        for (name, node_name), count in sorted(on_node.items()):
            cap = capped[name].max_per_node
            if cap and count > cap:
                self.add(
                    "blast_radius",
                    node_name,
                    f"{name} has {count} replicas on node {node_name}, max_per_node {cap}",
                )
        for (name, site_name, domain), count in sorted(in_domain.items()):
            cap = capped[name].max_per_power_domain
            if cap and count > cap:
                self.add(
                    "blast_radius",
                    f"{site_name}/{domain}",
                    f"{name} has {count} replicas in power domain {site_name}/{domain}, "
                    f"max_per_power_domain {cap}",
                )

    def _may_run(self, w: Workload, node: Node, gpu: GpuType, site: Any) -> bool:
        """The static rules for one replica of ``w`` on ``node`` (1, 2, 3, 6, 8, 9)."""
        if node.state is not NodeState.READY:
            return False
        if (w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types) or (
            w.is_fractional and not gpu.shareable
        ):
            return False
        if memory_milli_gib(w.memory_per_gpu_gib) > memory_milli_gib(gpu.memory_gib):
            return False
        if not w.is_fractional and not self.allowed_caps(w, gpu):
            return False
        if w.max_latency_ms > 0:
            lat = self.latency().get((w.user_region, site.name))
            if lat is None or lat > w.max_latency_ms + _EPS:
                return False
        return bool(site.backup_minutes + _EPS >= w.backup_minutes)

    def replan_rules(self) -> None:
        """The disruption budgets and upward-only preemption, against each workload's current replicas."""
        running = [w for w in self.problem.workloads if w.current and not w.pinned]
        if not running:
            return
        opts = self.problem.options
        forced = self._forced()
        planned: dict[tuple[str, str], int] = defaultdict(int)
        for p in self.plan.placements:
            planned[(p.workload, p.node)] += 1
        total = 0
        per_site: dict[str, int] = defaultdict(int)
        per_domain: dict[str, int] = defaultdict(int)
        for w in running:
            here: dict[str, int] = defaultdict(int)
            for c in w.current:
                here[c.node] += 1
            mine = 0
            for name, cur in here.items():
                if name in forced.get(w.name, ()):
                    continue
                moved = max(0, cur - planned[(w.name, name)])
                mine += moved
                per_site[self.nodes[name].site] += moved
                per_domain[self.nodes[name].power_domain] += moved
            total += mine
            limit = w.max_unavailable
            if limit is not None and mine > limit:
                self.add(
                    "disruption",
                    w.name,
                    f"{w.name} has {mine} of its {len(w.current)} current replicas moved beyond the forced "
                    f"ones, max unavailable {limit}",
                )
        if opts.max_moves is not None and total > opts.max_moves:
            self.add(
                "disruption",
                "options.maxMoves",
                f"{total} replicas moved beyond the forced ones, at most {opts.max_moves}",
            )
        for what, counts, limit in (
            ("site", per_site, opts.max_moves_per_site),
            ("power domain", per_domain, opts.max_moves_per_power_domain),
        ):
            if limit is None:
                continue
            for name, moved in sorted(counts.items()):
                if moved > limit:
                    self.add("disruption", name, f"{moved} replicas moved in {what} {name}, at most {limit}")
        for w in running:
            if w.name in self.stats or forced.get(w.name) or not w.protected(opts) or not self._keepable(w):
                continue
            if self._evictor(w, planned) is None:
                self.add(
                    "preemption",
                    w.name,
                    f"{w.name} (priority {w.priority}) runs today and is left out, but no workload of higher "
                    "priority gained a replica on its nodes or power domains",
                )

    def _keepable(self, w: Workload) -> bool:
        """Its current replicas meet its own rules 10-12 (counts, spread, site survival) where they
        run: else no plan can keep it as it is, and leaving it out is the input's doing."""
        return not self._current_breaches(w)

    def _current_breaches(self, w: Workload) -> list[tuple[str, str]]:
        return current_breaches(w, self.nodes)

    def _evictor(self, w: Workload, planned: dict[tuple[str, str], int]) -> str | None:
        nodes = {c.node for c in w.current if c.node in self.nodes}
        domains = {self.nodes[n].power_domain for n in nodes}
        for (name, node_name), count in sorted(planned.items()):
            v = self.workloads.get(name)
            node = self.nodes.get(node_name)
            if v is None or node is None or v.priority <= w.priority:
                continue
            if node_name not in nodes and node.power_domain not in domains:
                continue
            if count > sum(1 for c in v.current if c.node == node_name):
                return name
        return None

    def run(self) -> list[Violation]:
        for p in self.plan.placements:
            self.placement(p)
        self.gpu_rules()
        self.host_rules()
        expected = compute_budgets(self.problem, self.plan.placements)
        self.power_rules(expected)
        self.workload_rules()
        self.pinned_rules()
        self.replan_rules()
        self.blast_rules()
        self.unplaced_rules()
        self.budget_rules(expected)
        self.objective_rules()
        return self.out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return math.isclose(a, b, rel_tol=_BUDGET_REL_TOL, abs_tol=_BUDGET_ABS_TOL)
    return a == b


def _compare_entries(
    v: _Verifier,
    group: str,
    got: Sequence[Any],
    expected: Sequence[Any],
    key: Callable[[Any], Hashable],
    label: Callable[[Any], str],
) -> None:
    """Match entries by key; report missing, extra and duplicate entries and every differing field."""
    want = {key(e): e for e in expected}
    have: dict[Hashable, Any] = {}
    for e in got:
        k = key(e)
        if k in have:
            v.add(
                "budget",
                f"{group}[{label(k)}]",
                f"{group} entry {label(k)} appears more than once in the plan",
            )
        have[k] = e
    for k, e in want.items():
        h = have.get(k)
        if h is None:
            v.add(
                "budget",
                f"{group}[{label(k)}]",
                f"{group} entry {label(k)} is missing from the plan's budgets",
            )
            continue
        if h == e:
            continue
        for f in dataclasses.fields(e):
            a, b = getattr(h, f.name), getattr(e, f.name)
            if not _same(a, b):
                v.add(
                    "budget",
                    f"{group}[{label(k)}].{f.name}",
                    f"{group} entry {label(k)}: {f.name} is {a!r} in the plan, recomputed {b!r}",
                )
    for k in have:
        if k not in want:
            v.add(
                "budget", f"{group}[{label(k)}]", f"{group} entry {label(k)} in the plan is not in the fleet"
            )


def current_breaches(w: Workload, nodes: Mapping[str, Node]) -> list[tuple[str, str]]:
    """Rules 10-12 that ``w``'s current replicas break where they run (on known ``nodes``, by name):
    (rule, message) per breach. A workload whose current replicas break its spread or site
    survival is re-placed as the input forces (``Plan.displaced`` says so with these)."""
    st = _WorkloadStats()
    for c in w.current:
        node = nodes.get(c.node)
        if node is not None:
            st.replicas += 1
            st.per_site[node.site] += 1
            st.domains.add(node.power_domain)
            st.nodes.add(node.name)
    return _count_rules(w, st)


def verify(problem: Problem, plan: Plan) -> list[Violation]:
    """Every violation of the hard rules, the budgets, the objective and the unplaced list; [] when valid."""
    violations = _Verifier(problem, plan).run()
    if violations:
        log.debug("plan has %d violations", len(violations))
    return violations


def check(problem: Problem, plan: Plan) -> None:
    """Raise ``PlanRejected`` with every violation when the plan breaks any rule."""
    violations = verify(problem, plan)
    if violations:
        raise PlanRejected(list(violations))
